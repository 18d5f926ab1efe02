"""The bare contender of bench/predict.py: DRF and one view, nothing else (no database, no
middleware, no authentication). Served by the same gunicorn command as the platform."""

SECRET_KEY = "bench-only-not-secret"  # noqa: S105 - signs nothing: no sessions, no cookies
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bare.views"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
DATABASES: dict = {}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
