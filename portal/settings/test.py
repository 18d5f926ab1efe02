"""pytest: fast hashing, in-memory e-mail, and per-run names so parallel runs do not collide."""

import os

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR
from .env import env_str

DEBUG = False
# Argon2 is the production hasher (tests/tenants/test_settings.py checks it); tests hash fast.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # noqa: S303
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PORTAL_TENANT_CACHE_SECONDS = 0

# One test run = one database, cache prefix, queue prefix and storage folder; with pytest-xdist,
# one per worker. The test harness (portal/pytest_harness.py) sets PORTAL_TEST_RUN before settings
# load and xdist sets PYTEST_XDIST_WORKER (gw0, gw1…) in each worker, so servers and Celery
# workers that a test starts inherit both and land on the same names (tests/servers.py). Worker gwN adds one
# letter (a, b…): queue names ("t<run><letter>-prediction") must fit a job ticket's 20 characters.
_RUN = env_str("PORTAL_TEST_RUN", "") or str(os.getpid())
_WORKER = env_str("PYTEST_XDIST_WORKER", "")
if _WORKER:
    _RUN += "abcdefghijklmnopqrstuvwxyz"[int(_WORKER.removeprefix("gw"))]
DATABASES["default"].setdefault("TEST", {})["NAME"] = f"test_portal_{_RUN}"
CACHES["default"]["KEY_PREFIX"] = f"portal-test-{_RUN}"  # noqa: F405
PORTAL_STORAGE_DIR = VAR_DIR / "test-storage" / _RUN
PORTAL_QUEUE_PREFIX = f"t{_RUN}-"
CELERY_TASK_DEFAULT_QUEUE = f"{PORTAL_QUEUE_PREFIX}default"
CELERY_BEAT_SCHEDULE["jobs-reap-stale"]["schedule"] = 3.0  # noqa: F405
PORTAL_JOB_STALE_SECONDS = 6
PORTAL_ONLINE_FLUSH_SECONDS = 0.05
# Tests store monitoring samples by calling mlcore.sampling.online_samples.flush() themselves.
PORTAL_MONITORING_FLUSH_SECONDS = float(env_str("PORTAL_MONITORING_FLUSH_SECONDS", "3600"))
# Unit tests run job handlers in-process inside their rolled-back transaction; the worker tests
# (real Celery worker, forked job processes) override this through the environment.
PORTAL_JOB_ISOLATION = env_str("PORTAL_JOB_ISOLATION", "inline")
