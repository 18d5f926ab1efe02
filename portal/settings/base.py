"""Every setting lives here; local/test/production override a few values."""

import os
import secrets
from pathlib import Path

import dj_database_url

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var"))).resolve()


def _secret_from_var(name: str, make) -> str:
    """A secret generated once and kept under var/ (development only)."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


# --- core -------------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "") or _secret_from_var(
    "secret_key", lambda: secrets.token_urlsafe(50)
)

PORTAL_BASE_DOMAIN = env_str("PORTAL_BASE_DOMAIN", "localhost").lower()
PORT = env_int("PORT", 8000)
# The port users type in the address bar; empty for 80/443 behind a proxy.
PORTAL_PUBLIC_PORT = env_str("PORTAL_PUBLIC_PORT", str(PORT))
PORTAL_SCHEME = env_str("PORTAL_SCHEME", "http")
ALLOWED_HOSTS = [PORTAL_BASE_DOMAIN, f".{PORTAL_BASE_DOMAIN}", "127.0.0.1"]

# --- servers: DATABASE_URL / REDIS_URL, or the embedded ones under var/ -------------------------
_database_url = env_str("DATABASE_URL", "")
_redis_url = env_str("REDIS_URL", "")
if not _database_url or not _redis_url:
    from portal import embedded

    _urls = embedded.ensure(VAR_DIR)
    _database_url = _database_url or _urls["DATABASE_URL"]
    _redis_url = _redis_url or _urls["REDIS_URL"]
DATABASE_URL = _database_url
REDIS_URL = _redis_url

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        engine="django_tenants.postgresql_backend",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if env_str("DATABASE_SSLMODE", ""):
    DATABASES["default"].setdefault("OPTIONS", {})["sslmode"] = env_str("DATABASE_SSLMODE", "")
if env_str("DATABASE_SSLROOTCERT", ""):
    DATABASES["default"].setdefault("OPTIONS", {})["sslrootcert"] = env_str("DATABASE_SSLROOTCERT", "")
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- tenancy ----------------------------------------------------------------------------------
# tenants comes first so its create_tenant / delete_tenant commands replace django-tenants' own.
SHARED_APPS = [
    "tenants",
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "rest_framework",
    "drf_spectacular",
]
TENANT_APPS = [
    "guardian",
    "mlcore",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "portal.urls_public"
ROOT_URLCONF = "portal.urls_tenants"
# New tenants are cloned from an empty, fully migrated template schema (see tenants.services).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
# How long a worker process trusts its cached host -> tenant lookup.
PORTAL_TENANT_CACHE_SECONDS = env_int("PORTAL_TENANT_CACHE_SECONDS", 30)

MIDDLEWARE = [
    "tenants.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.TenantRoutingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.AuditAccessMiddleware",
    "tenants.middleware.TenantAccessMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.workspace",
            ],
        },
    },
]
WSGI_APPLICATION = "portal.wsgi.application"

# --- users and authentication -----------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600
# guardian: no anonymous user row, permissions only for real members.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# Sessions live in the public schema; the cookie is host-only (no SESSION_COOKIE_DOMAIN) and each
# session is bound to the tenant it was opened on (tenants.middleware.TenantAccessMiddleware).
SESSION_COOKIE_NAME = "portal_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("PORTAL_SESSION_SECONDS", 12 * 3600)
CSRF_COOKIE_NAME = "portal_csrftoken"

# --- Redis: cache, broker, counters -----------------------------------------------------------
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": env_str("PORTAL_CACHE_PREFIX", "portal"),
        "TIMEOUT": 300,
    }
}


def _broker_url(url: str) -> str:
    # redis-py speaks unix://path; kombu wants redis+socket://path
    if url.startswith("unix://"):
        path, _, query = url[len("unix://"):].partition("?")
        db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("db", "0")
        return f"redis+socket://{path}?virtual_host={db}"
    return url


CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or _broker_url(REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TIMEZONE = "UTC"

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Safe by default: a view that forgets to pick a base class still needs a logged-in member.
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.PortalAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsTenantMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "tenants.pagination.PortalPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "tenants.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ML Portal API",
    "DESCRIPTION": "Multi-tenant machine-learning platform, REST API v1",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- static files and storage -----------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Encrypted tenant files; every name starts with the tenant's schema.
PORTAL_STORAGE_DIR = Path(env_str("PORTAL_STORAGE_DIR", str(VAR_DIR / "storage"))).resolve()
FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload streams to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- e-mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"ML Portal <no-reply@{PORTAL_BASE_DOMAIN}>")

# --- i18n -------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- platform ---------------------------------------------------------------------------------
PORTAL_RESERVED_SLUGS = frozenset(
    env_list(
        "PORTAL_RESERVED_SLUGS",
        [
            "www", "admin", "api", "public", "static", "media", "mail", "smtp", "ftp", "app",
            "apps", "portal", "console", "operator", "ops", "status", "health", "healthz",
            "readyz", "login", "logout", "auth", "account", "accounts", "help", "support",
            "docs", "blog", "assets", "cdn", "root", "system", "tenant", "tenants", "template",
            "default", "localhost", "test", "dashboard", "billing", "security",
        ],
    )
)
PORTAL_DEFAULT_PLAN = env_str("PORTAL_DEFAULT_PLAN", "team")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_tenants": {"level": "WARNING"},
    },
}
