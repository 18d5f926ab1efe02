"""Redis: auth epochs that keep in-process caches honest.

Lookups on the hot path (token -> user, user -> membership) are cached in each worker process.
Every change that must take effect at once (revoking a token, removing a member, deactivating a
user, deleting a tenant) bumps an epoch in Redis after its transaction commits; a request reads the
epochs in one round trip and rebuilds any cache entry built under an older epoch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import redis
from django.conf import settings
from django.db import transaction
from redis.exceptions import NoScriptError

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, health_check_interval=30,
                                **getattr(settings, "REDIS_TLS_OPTIONS", {}))


def _prefix() -> str:
    return settings.CACHES["default"].get("KEY_PREFIX", "portal")


def key_prefix() -> str:
    """The installation's Redis key prefix, for other modules keeping short-lived keys there."""
    return _prefix()


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


# --- the per-request gate: one Redis round trip -------------------------------------------------
# KEYS: 1 user epoch, 2 tenant epoch, 3 tenant requests this minute, 4 member requests this minute,
#       5 daily API requests (hash, field = user id), 6 rows predicted this month (tenant),
#       7 rows predicted this month by this member
# ARGV: 1 "1" to count this request as an API call, 2 the user id
_GATE_LUA = """
local out = {redis.call('GET', KEYS[1]) or '0', redis.call('GET', KEYS[2]) or '0', 0, 0, '0', '0'}
if ARGV[1] == '1' then
  out[3] = redis.call('INCR', KEYS[3])
  if out[3] == 1 then redis.call('EXPIRE', KEYS[3], 120) end
  out[4] = redis.call('INCR', KEYS[4])
  if out[4] == 1 then redis.call('EXPIRE', KEYS[4], 120) end
  redis.call('HINCRBY', KEYS[5], ARGV[2], 1)
  redis.call('EXPIRE', KEYS[5], 1209600)
end
out[5] = redis.call('GET', KEYS[6]) or '0'
out[6] = redis.call('GET', KEYS[7]) or '0'
return out
"""
_GATE_SHA = hashlib.sha1(_GATE_LUA.encode(), usedforsecurity=False).hexdigest()  # Redis names scripts by SHA-1
_local = threading.local()  # this thread's own connection for the gate (see _gate_call)
_stamps: tuple = ((), "", "", "")  # (minute, "%Y%m%d%H%M", "%Y%m%d", "%Y%m") of the last call


@dataclass(frozen=True)
class GateResult:
    user_epoch: int
    tenant_epoch: int
    tenant_requests: int  # this minute, this one included (0 when not counted)
    member_requests: int
    month_predicted_rows: int  # the tenant's, as flushed to Redis (online counts lag one flush)
    member_month_predicted_rows: int  # this user's own, in this tenant
    retry_after: int  # seconds to the next minute window

    @property
    def epochs(self) -> tuple[int, int]:
        return self.user_epoch, self.tenant_epoch


def usage_keys(tenant_id: int, now: datetime) -> dict[str, str]:
    p = _prefix()
    return {
        "api_day": f"{p}:use:api:{tenant_id}:{now:%Y%m%d}",
        "pred_day": f"{p}:use:pred:{tenant_id}:{now:%Y%m%d}",
        "pred_month": f"{p}:use:predm:{tenant_id}:{now:%Y%m}",
    }


def member_month_key(tenant_id: int, user_id: int, now: datetime) -> str:
    """Rows one member predicted in one tenant this month (what their own limit is checked against)."""
    return f"{_prefix()}:use:predmu:{tenant_id}:{user_id}:{now:%Y%m}"


def check(user_id: int, tenant_id: int, *, count_api: bool) -> GateResult:
    """Epochs for the caches, the request counted against the rate limit, usage counted, the
    month's predicted rows (the tenant's and this member's) read: one trip."""
    now = datetime.now(UTC)
    minute, day, month = _time_stamps(now)
    p = _prefix()
    result = _gate_call(
        f"{p}:ep:u:{user_id}", f"{p}:ep:t:{tenant_id}", f"{p}:rl:t:{tenant_id}:{minute}",
        f"{p}:rl:u:{tenant_id}:{user_id}:{minute}", f"{p}:use:api:{tenant_id}:{day}",
        f"{p}:use:predm:{tenant_id}:{month}", f"{p}:use:predmu:{tenant_id}:{user_id}:{month}",
        "1" if count_api else "0", user_id)
    return GateResult(user_epoch=int(result[0]), tenant_epoch=int(result[1]),
                      tenant_requests=int(result[2]), member_requests=int(result[3]),
                      month_predicted_rows=int(result[4]), member_month_predicted_rows=int(result[5]),
                      retry_after=60 - now.second)


def _time_stamps(now: datetime) -> tuple[str, str, str]:
    """The key parts of `now` (same formats as usage_keys), formatted once a minute: three
    strftime calls cost more than the rest of the key building on the hot path."""
    global _stamps
    minute = (now.year, now.month, now.day, now.hour, now.minute)
    stamps = _stamps
    if stamps[0] != minute:
        stamps = _stamps = (minute, f"{now:%Y%m%d%H%M}", f"{now:%Y%m%d}", f"{now:%Y%m}")
    return stamps[1], stamps[2], stamps[3]


def _gate_call(*keys_and_args) -> list:
    """EVALSHA of the gate script on this thread's own connection.

    Why not the pooled client: its per-command layers (pool checkout with a poll() for stray
    data, retry wrapper, metrics hooks, Script object) cost about as much CPU as the round trip
    itself, on every API request. The connection is redis-py's own (same URL, TLS options,
    timeouts, health checks); it is rebuilt after a fork and retried once on a dropped
    connection, like the pooled client would.
    """
    command = ("EVALSHA", _GATE_SHA, 7, *keys_and_args)
    conn = _connection()
    try:
        try:
            conn.send_command(*command)
            return conn.read_response()
        except redis.ConnectionError:  # dropped (Redis restarted, idle timeout): reconnect once
            conn.disconnect()
            conn.send_command(*command)
            return conn.read_response()
    except NoScriptError:  # Redis restarted or flushed its scripts: load it and run again
        conn.send_command("SCRIPT", "LOAD", _GATE_LUA)
        conn.read_response()
        conn.send_command(*command)
        return conn.read_response()
    except BaseException:
        conn.disconnect()  # never reuse a connection with a reply possibly still in flight
        raise


def _connection():
    conn = getattr(_local, "conn", None)
    if conn is None or _local.pid != os.getpid():
        conn = client().connection_pool.connection_class(**client().connection_pool.connection_kwargs)
        _local.conn, _local.pid = conn, os.getpid()
    return conn


def requests_this_minute(tenant_id: int) -> int:
    now = datetime.now(UTC)
    return int(client().get(f"{_prefix()}:rl:t:{tenant_id}:{now:%Y%m%d%H%M}") or 0)
