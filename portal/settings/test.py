"""pytest: fast hashing, in-memory e-mail, its own Redis database and storage folder."""

from .base import *  # noqa: F403
from .base import VAR_DIR
from .env import env_str

DEBUG = False
# Argon2 is the production hasher (tests/tenants/test_settings.py checks it); tests hash fast.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # noqa: S303
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PORTAL_STORAGE_DIR = VAR_DIR / "test-storage"
PORTAL_TENANT_CACHE_SECONDS = 0
CACHES["default"]["KEY_PREFIX"] = env_str("PORTAL_CACHE_PREFIX", "portal-test")  # noqa: F405
