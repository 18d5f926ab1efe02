"""Redis: auth epochs that keep in-process caches honest.

Lookups on the hot path (token -> user, user -> membership) are cached in each worker process.
Every change that must take effect at once (revoking a token, removing a member, deactivating a
user, deleting a tenant) bumps an epoch in Redis after its transaction commits; a request reads the
epochs in one round trip and rebuilds any cache entry built under an older epoch.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, health_check_interval=30,
                                **getattr(settings, "REDIS_TLS_OPTIONS", {}))


def _prefix() -> str:
    return settings.CACHES["default"].get("KEY_PREFIX", "portal")


def user_epoch_key(user_id: int) -> str:
    return f"{_prefix()}:ep:u:{user_id}"


def tenant_epoch_key(tenant_id: int) -> str:
    return f"{_prefix()}:ep:t:{tenant_id}"


def read_epochs(user_id: int, tenant_id: int) -> tuple[int, int]:
    user_epoch, tenant_epoch = client().mget(user_epoch_key(user_id), tenant_epoch_key(tenant_id))
    return int(user_epoch or 0), int(tenant_epoch or 0)


def _bump(key: str) -> None:
    client().incr(key)


def _bump_now_and_after_commit(key: str) -> None:
    # Now: the change is visible to this connection at once. After commit: a request that rebuilt
    # its cache from the not-yet-committed (old) rows in between gets invalidated again.
    _bump(key)
    transaction.on_commit(lambda: _bump(key))


def bump_user_epoch(user_id: int) -> None:
    """Invalidate every cached credential and membership of this user."""
    _bump_now_and_after_commit(user_epoch_key(user_id))


def bump_tenant_epoch(tenant_id: int) -> None:
    _bump_now_and_after_commit(tenant_epoch_key(tenant_id))


def model_epoch_key(tenant_id: int, model_id: int) -> str:
    return f"{_prefix()}:ep:m:{tenant_id}:{model_id}"


def bump_model_epoch(tenant_id: int, model_id: int) -> None:
    """A model's production version or sharing changed: processes drop what they cached of it."""
    _bump_now_and_after_commit(model_epoch_key(tenant_id, model_id))


def read_model_epoch(tenant_id: int, model_id: int) -> int:
    return int(client().get(model_epoch_key(tenant_id, model_id)) or 0)
