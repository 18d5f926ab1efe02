"""Every setting lives here; local/test/production override a few values."""

import ipaddress
import ssl
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from portal import embedded

from .env import env_bool, env_int, env_list, env_str, parse_keys

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var"))).resolve()

# Importing settings reads the environment and, for development, files under var/; it never starts
# a server nor writes a file (the launcher and the test harness do that: portal/embedded.py).
_HINT = ("run `make run` (it starts the embedded servers and generates the development secrets "
         "under var/), or set {name}")


def _from_var(name: str, filename: str) -> str:
    """A development secret that the launcher or the test harness generated under var/."""
    path = VAR_DIR / filename
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ImproperlyConfigured(f"{name} is not set and {path} does not exist: "
                                   + _HINT.format(name=name))


def _server_url(name: str) -> str:
    """From the environment, else the embedded server that the launcher recorded as running."""
    url = env_str(name, "") or embedded.recorded_urls(VAR_DIR).get(name, "")
    if not url:
        raise ImproperlyConfigured(f"{name} is not set and no embedded server is recorded as running "
                                   f"in {VAR_DIR / embedded.RECORD}: " + _HINT.format(name=name))
    return url


# --- core -------------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "") or _from_var("DJANGO_SECRET_KEY",
                                                            embedded.SECRET_KEY_FILE)

PORTAL_BASE_DOMAIN = env_str("PORTAL_BASE_DOMAIN", "localhost").lower()
PORT = env_int("PORT", 8000)
# The port users type in the address bar; empty for 80/443 behind a proxy.
PORTAL_PUBLIC_PORT = env_str("PORTAL_PUBLIC_PORT", str(PORT))
PORTAL_SCHEME = env_str("PORTAL_SCHEME", "http")
ALLOWED_HOSTS = [PORTAL_BASE_DOMAIN, f".{PORTAL_BASE_DOMAIN}", "127.0.0.1"]

# --- servers: DATABASE_URL / REDIS_URL, or the running embedded ones recorded under var/ ---------
DATABASE_URL = _server_url("DATABASE_URL")
REDIS_URL = _server_url("REDIS_URL")

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
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
]
TENANT_APPS = [
    "guardian",
    "mlcore",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# `SET search_path` once per schema switch, not before every statement: a request's queries
# otherwise each cost two round trips (django-tenants forgets the path on close, rollback and
# savepoint rollback, and set_tenant() sets it again for every request).
TENANT_LIMIT_SET_CALLS = True
PUBLIC_SCHEMA_URLCONF = "portal.urls_public"
ROOT_URLCONF = "portal.urls_tenants"
# New tenants are cloned from an empty, fully migrated template schema (see tenants.services).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
# How long a worker process trusts its cached host -> tenant lookup.
PORTAL_TENANT_CACHE_SECONDS = env_int("PORTAL_TENANT_CACHE_SECONDS", 30)

MIDDLEWARE = [
    "tenants.web.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tenants.web.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.web.middleware.TenantRoutingMiddleware",
    # Sessions, their user and flash messages serve pages and session-authenticated API calls;
    # bearer-token API calls (the online prediction hot path) skip them. CSRF stays for all.
    "tenants.web.middleware.PageSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "tenants.web.middleware.PageAuthenticationMiddleware",
    "tenants.web.middleware.AuditAccessMiddleware",
    "tenants.web.middleware.TenantAccessMiddleware",
    "tenants.web.middleware.PageMessageMiddleware",
    "tenants.web.middleware.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out login attempt into the lockout page (tenants.views.accounts.locked_out).
    "axes.middleware.AxesMiddleware",
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
                "tenants.web.context_processors.workspace",
            ],
        },
    },
]
WSGI_APPLICATION = "portal.wsgi.application"

# --- users and authentication -----------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses any login attempt of a locked-out (e-mail, IP) pair before the password is checked.
    "axes.backends.AxesStandaloneBackend",
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
LOGIN_REDIRECT_URL = "/"
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600
# guardian: no anonymous user row, permissions only for real members.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# Sessions live in the public schema; the cookie is host-only (no SESSION_COOKIE_DOMAIN) and each
# session is bound to the tenant it was opened on (tenants.web.middleware.TenantAccessMiddleware).
SESSION_COOKIE_NAME = "portal_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("PORTAL_SESSION_SECONDS", 12 * 3600)
CSRF_COOKIE_NAME = "portal_csrftoken"

# Lockout (django-axes): repeated failures for one e-mail from one IP address lock that pair out for a
# while. Keyed on the pair, so one person's mistakes never lock out everyone behind the same address,
# and an attacker cannot lock a victim out from elsewhere. Tenant sign-in and the operator console alike.
AXES_FAILURE_LIMIT = env_int("PORTAL_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PORTAL_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "tenants.forms.lockout_username"
AXES_CLIENT_IP_CALLABLE = "tenants.auditing.audit.client_ip"
AXES_LOCKOUT_CALLABLE = "tenants.views.accounts.locked_out"
AXES_RESET_ON_SUCCESS = True
# Attempts during a lockout neither extend it nor reach the password check.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the audit trail
AXES_VERBOSE = False
AXES_HTTP_RESPONSE_CODE = 429

# Two-factor sign-in (django-otp, TOTP): optional per user; a tenant may require it of its admins.
OTP_TOTP_ISSUER = env_str("PORTAL_OTP_ISSUER", "ML Portal")

# Response headers on every environment; production.py adds HTTPS, HSTS and secure cookies.
# The Content-Security-Policy comes from tenants.web.middleware.ContentSecurityPolicyMiddleware.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Ed25519 key that signs audit-export manifests, retention checkpoints and prediction receipts:
# base64 of the raw 32-byte private key. Unset in development: generated once under var/.
PORTAL_SIGNING_KEY = env_str("PORTAL_SIGNING_KEY", "")

# Behind a load balancer every request comes from the balancer's address: with this on, the client's
# address is the first X-Forwarded-For entry (audit trail, sign-in lockouts). Only when the balancer
# sets that header itself, replacing any the client sent (README, "Scaling out").
PORTAL_TRUST_X_FORWARDED_FOR = env_bool("PORTAL_TRUST_X_FORWARDED_FOR", False)

# --- Redis: cache, broker, counters -----------------------------------------------------------
# TLS: give a rediss:// REDIS_URL; the server certificate is always verified, against the CA bundle
# in REDIS_SSL_CA_CERTS when set (else the system's). Cache, auth epochs, counters and broker alike.
REDIS_SSL_CA_CERTS = env_str("REDIS_SSL_CA_CERTS", "")
REDIS_TLS_OPTIONS: dict = {}
if REDIS_URL.startswith("rediss://"):
    REDIS_TLS_OPTIONS = {"ssl_cert_reqs": "required"}
    if REDIS_SSL_CA_CERTS:
        REDIS_TLS_OPTIONS["ssl_ca_certs"] = REDIS_SSL_CA_CERTS
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": env_str("PORTAL_CACHE_PREFIX", "portal"),
        "TIMEOUT": 300,
        "OPTIONS": dict(REDIS_TLS_OPTIONS),
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
# Queue names get this prefix (tests and the launcher drill give every run its own queues on a
# shared broker); the launcher's workers listen on the prefixed names.
PORTAL_QUEUE_PREFIX = env_str("PORTAL_QUEUE_PREFIX", "")
CELERY_TASK_DEFAULT_QUEUE = f"{PORTAL_QUEUE_PREFIX}default"
CELERY_TIMEZONE = "UTC"
if CELERY_BROKER_URL.startswith("rediss://"):
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if REDIS_SSL_CA_CERTS:
        CELERY_BROKER_USE_SSL["ssl_ca_certs"] = REDIS_SSL_CA_CERTS
# A running job whose worker sent no heartbeat for this long is retried or failed by the reaper.
PORTAL_JOB_STALE_SECONDS = env_int("PORTAL_JOB_STALE_SECONDS", 45)
# Beat runs in the public schema; each task fans out per tenant itself.
CELERY_BEAT_SCHEDULE = {
    # Every tenant's audit chain, daily; the operator page (/ops/audit/) shows the last result.
    "audit-verify-chains": {"task": "tenants.audit_verify_chains", "schedule": crontab(hour=3, minute=17)},
    # A signed checkpoint of every chain head that moved, kept outside the database (witness files).
    "audit-witness-heads": {"task": "tenants.audit_witness_heads", "schedule": crontab(minute="*/10")},
    # Buffered access-log entries (PendingAuditEvent) -> their chains, in batches. A run that
    # waited longer than 5 s is dropped: the next one moves the same entries (no backlog of runs).
    "audit-flush-pending": {"task": "tenants.audit_flush_pending", "schedule": 1.0,
                            "options": {"expires": 5.0}},
    # Online-prediction counters (Redis) -> prediction.online entries, well within 10 s.
    "audit-flush-online": {"task": "tenants.audit_flush_online", "schedule": 5.0},
    # API calls and predicted rows counted in Redis -> UsageDaily.
    "usage-sync": {"task": "tenants.usage_sync", "schedule": 60.0},
    # The last use of each API token, noted in Redis by every request, -> ApiToken.last_used_at.
    "tokens-last-used-flush": {"task": "tenants.tokens_last_used_flush", "schedule": 60.0},
    # Jobs whose worker vanished are retried or failed within a minute (sooner when the stale
    # period is shorter: at most half of it passes between its end and the reaper's next look).
    "jobs-reap-stale": {"task": "mlcore.reap_stale_jobs",
                        "schedule": max(1.0, min(15.0, PORTAL_JOB_STALE_SECONDS / 2))},
    # Uploads whose web process died (no lease renewal): reservations given back, files deleted.
    "uploads-reap-leases": {"task": "mlcore.reap_upload_leases", "schedule": 15.0},
    # Every tenant's storage and counts recomputed from its rows (+ live uploads); drift corrected.
    "usage-reconcile": {"task": "mlcore.reconcile_usage", "schedule": 300.0},
    # Encrypted .part files of writers that were killed mid-write.
    "storage-sweep-partial": {"task": "mlcore.sweep_partial_files", "schedule": 3600.0},
    # Idempotency-Key answers past their 24 hours.
    "idempotency-purge": {"task": "tenants.idempotency_purge", "schedule": 3600.0},
    # A safety net for lost wake-up messages: wake a worker for every queue with waiting jobs.
    "jobs-kick": {"task": "mlcore.kick_queues", "schedule": 10.0},
    # Schedules due this minute start their jobs; SKIP LOCKED keeps two beats from firing one twice.
    "schedules-fire-due": {"task": "mlcore.fire_due_schedules", "schedule": crontab()},
    # Webhook deliveries whose next attempt is due (first sends lost with the broker, and retries).
    "webhooks-send-due": {"task": "tenants.webhooks_send_due", "schedule": 5.0},
    # Yesterday's sampled inputs of every production version compared with its training data.
    "monitoring-daily": {"task": "mlcore.monitoring_daily", "schedule": crontab(hour=0, minute=35)},
}
# Loaded models each web process keeps for online predictions (count and total artifact bytes).
PORTAL_MODEL_CACHE_ENTRIES = env_int("PORTAL_MODEL_CACHE_ENTRIES", 16)
PORTAL_MODEL_CACHE_BYTES = env_int("PORTAL_MODEL_CACHE_BYTES", 512 * 1024 * 1024)
# How often each web process pushes its online-prediction counts to Redis.
PORTAL_ONLINE_FLUSH_SECONDS = float(env_str("PORTAL_ONLINE_FLUSH_SECONDS", "1.0"))
# Monitoring: rows of a production version's inputs sampled per day (0: no sampling), how often a
# web process stores what it sampled, and the population stability index that counts as drift.
PORTAL_MONITORING_SAMPLE_ROWS = env_int("PORTAL_MONITORING_SAMPLE_ROWS", 2000)
PORTAL_MONITORING_FLUSH_SECONDS = float(env_str("PORTAL_MONITORING_FLUSH_SECONDS", "60"))
PORTAL_DRIFT_PSI_THRESHOLD = float(env_str("PORTAL_DRIFT_PSI_THRESHOLD", "0.2"))
# "fork": every job in its own child process with hard limits (always, outside unit tests).
PORTAL_JOB_ISOLATION = env_str("PORTAL_JOB_ISOLATION", "fork")
# Jobs that ran at least this long e-mail their owner when they succeed or fail (unless the
# owner turned it off at /account/notifications/).
PORTAL_JOB_NOTIFY_AFTER_SECONDS = env_int("PORTAL_JOB_NOTIFY_AFTER_SECONDS", 60)

# --- webhooks (tenants/webhooks/) ---------------------------------------------------------------
# Deliveries run on their own queue (PORTAL_QUEUE_PREFIX + "webhooks") and worker: a slow
# receiver never holds a job worker.
# Seconds to wait for a receiver's answer (connect and read each).
PORTAL_WEBHOOK_TIMEOUT_SECONDS = float(env_str("PORTAL_WEBHOOK_TIMEOUT_SECONDS", "10"))
# Waits before each retry; after the last one the delivery is marked failed. The default makes ten
# attempts over about 24 h (5 s, 30 s, 2 min, 10 min, 1 h, 3 h, 6 h, 6 h, 8 h).
try:
    PORTAL_WEBHOOK_RETRY_SECONDS = [int(v) for v in env_list(
        "PORTAL_WEBHOOK_RETRY_SECONDS", ["5", "30", "120", "600", "3600", "10800", "21600", "21600", "28800"])]
except ValueError:
    raise ImproperlyConfigured("PORTAL_WEBHOOK_RETRY_SECONDS must be whole seconds, comma-separated")
# SSRF: receivers on loopback, private, link-local, multicast or reserved addresses are refused
# (at registration and again at each delivery) unless allowed here: all of them, or some networks.
PORTAL_WEBHOOK_ALLOW_PRIVATE = env_bool("PORTAL_WEBHOOK_ALLOW_PRIVATE", False)
PORTAL_WEBHOOK_ALLOWED_NETWORKS = env_list("PORTAL_WEBHOOK_ALLOWED_NETWORKS", [])
for _network in PORTAL_WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"PORTAL_WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a network "
                                   "(e.g. 127.0.0.0/8,10.1.2.0/24)")
if any(s < 0 for s in PORTAL_WEBHOOK_RETRY_SECONDS):
    raise ImproperlyConfigured("PORTAL_WEBHOOK_RETRY_SECONDS must be seconds >= 0, comma-separated")

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Safe by default: a view that forgets to pick a base class still needs a logged-in member.
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.accounts.authentication.PortalAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.accounts.permissions.IsTenantMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "tenants.web.pagination.PortalPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "tenants.web.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "tenants.web.openapi.PortalAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ML Portal API",
    "DESCRIPTION": "Multi-tenant machine-learning platform, REST API v1",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Operations grouped by resource (datasets, jobs, models...) rather than all under "v1".
    "SCHEMA_PATH_PREFIX": r"/api/v1/",
    # Request bodies get their own components, so uploads show as binary files.
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from our own static files (drf-spectacular-sidecar): no CDN, and the CSP holds.
    "SWAGGER_UI_DIST": "SIDECAR",
    # No deep links: Swagger UI puts them inside each operation's expand button, a link nested in
    # a button that keyboards and screen readers cannot reach (axe-core: nested-interactive).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # `check --deploy` is for deployment security; schema-quality warnings of the API docs are not
    # (see them with `manage.py spectacular --validate --file /dev/null`).
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
    # Request bodies are JSON (docs/api.md); the upload says multipart itself. The form parsers
    # stay for callers that used them, undocumented.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tenants.web.openapi.state_rules",  # oneOf/anyOf between fields (component_rules)
    ],
}

# --- static files and storage -----------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"  # created by `collectstatic`, or embedded.prepare_var
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Encrypted tenant files; every name starts with the tenant's schema.
PORTAL_STORAGE_DIR = Path(env_str("PORTAL_STORAGE_DIR", str(VAR_DIR / "storage"))).resolve()
# Signed checkpoints of the audit chain heads (tenants/auditing/witness.py): append-only files that
# the database cannot rewrite. Empty: <PORTAL_STORAGE_DIR>/_audit-witness. Back them up off-host.
PORTAL_AUDIT_WITNESS_DIR = env_str("PORTAL_AUDIT_WITNESS_DIR", "")
FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload streams to a temporary file
PORTAL_MAX_UPLOAD_BYTES = env_int("PORTAL_MAX_UPLOAD_BYTES", 2 * 1024**3)
# An upload's quota reservation lives this long unless its web process renews it (every third of
# it); the reservation of a process that died is given back at most this + 15 s later.
PORTAL_UPLOAD_LEASE_SECONDS = env_int("PORTAL_UPLOAD_LEASE_SECONDS", 30)
# Idempotency-Key: how long a first answer is replayed to retries, and how long a retry waits for
# a request with the same key that is still running before it is answered 409.
PORTAL_IDEMPOTENCY_HOURS = env_int("PORTAL_IDEMPOTENCY_HOURS", 24)
PORTAL_IDEMPOTENCY_WAIT_SECONDS = float(env_str("PORTAL_IDEMPOTENCY_WAIT_SECONDS", "5"))
# Platform master keys that wrap each tenant's data key: base64 of 32 random bytes, comma-separated,
# newest first. New keys are wrapped under the first; the others stay to unwrap what `rotate_keys`
# has not re-wrapped yet. Data under a lost master key is gone: back them up (README).
# Parsed and checked here, once, for every process: tenants/crypto/keys.py takes the list as it is.
PORTAL_MASTER_KEYS = (
    parse_keys(env_str("PORTAL_MASTER_KEYS", ""), source="PORTAL_MASTER_KEYS")
    or parse_keys(_from_var("PORTAL_MASTER_KEYS", embedded.MASTER_KEYS_FILE),
                  source=str(VAR_DIR / embedded.MASTER_KEYS_FILE))
)
if not PORTAL_MASTER_KEYS:
    raise ImproperlyConfigured("PORTAL_MASTER_KEYS holds no key: at least one master key is needed.")
# Uploaded files are only ever stored encrypted: views that accept one install the encrypting
# handler (mlcore.storage.install_encrypting_upload); anywhere else files are dropped unread,
# never spilled to a plaintext temporary file.
FILE_UPLOAD_HANDLERS = ["mlcore.storage.uploads.DiscardUnencryptedUploads"]
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
        "axes": {"level": "WARNING"},
    },
}
