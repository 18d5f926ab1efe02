"""Deployments: HTTPS only, secure cookies, servers and secrets from the environment."""

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_required, env_str

# Checked before base is read: base falls back to what the development launcher keeps under var/
# (the embedded servers it recorded, generated secrets); a deployment that forgot a variable must
# refuse to start rather than write to a development database.
env_required("DATABASE_URL", "e.g. postgres://user:password@db:5432/portal")
env_required("REDIS_URL", "e.g. redis://redis:6379/0 or rediss://…")
if len(env_str("DJANGO_SECRET_KEY", "").strip()) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (50+ random characters) in production")
# Never the development key under var/: a deployment's master keys are backed up by its operators.
env_required("PORTAL_MASTER_KEYS", "comma-separated base64 32-byte keys, newest first; keep a "
             "backup of every key, data encrypted under a lost key cannot be recovered")

from .base import *  # noqa: E402, F403

DEBUG = False

# The key that signs audit manifests, checkpoints and receipts: the same on every host and kept
# across deployments, so signatures stay verifiable (tenants/crypto/signing.py).
PORTAL_SIGNING_KEY = env_str("PORTAL_SIGNING_KEY", "")
if not PORTAL_SIGNING_KEY:
    raise ImproperlyConfigured(
        "PORTAL_SIGNING_KEY must be set in production (base64 of a raw 32-byte Ed25519 private key; "
        "`python -c \"import base64,os;print(base64.b64encode(os.urandom(32)).decode())\"`)"
    )

PORTAL_SCHEME = "https"
PORTAL_PUBLIC_PORT = env_str("PORTAL_PUBLIC_PORT", "")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
