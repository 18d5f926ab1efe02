"""The bare contender of bench/load.py's audited-list comparison: DRF and one list view over a
tenant's dataset rows, nothing else (no tenant routing, no middleware, no authentication, no
audit). The tenant's schema is fixed on the connection (BARE_LIST_SCHEMA); served by the same
gunicorn command as the platform."""

import os

import dj_database_url

SECRET_KEY = "bench-only-not-secret"  # noqa: S105 - signs nothing: no sessions, no cookies
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bare_list.views"
INSTALLED_APPS = ["rest_framework", "bare_list"]
MIDDLEWARE: list[str] = []
_schema = os.environ["BARE_LIST_SCHEMA"]
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
DATABASES["default"]["OPTIONS"] = {"options": f"-c search_path={_schema},public"}
USE_TZ = True
TIME_ZONE = "UTC"  # as the platform: the same timestamps in the answers
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
