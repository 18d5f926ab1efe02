"""Metering of hot-path usage: API calls and predicted rows, counted in Redis, kept in PostgreSQL.

The request gate (tenants.limits.gate.check) counts API calls in a daily Redis hash per tenant (field =
user id). Predicted rows are counted through `count_predictions` — from a per-process buffer that
a background thread flushes every second, so an online prediction costs no extra round trip —
into the same kind of daily hash, monthly totals per tenant and per member (what the quota
checks read) and the audit trail's per-minute counters. `sync_to_database` (every minute) moves
the daily hashes into UsageDaily rows; each sync takes a key of its own, and a sync that died halfway
is finished by a later one (see the notes above `_take`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import models, transaction

from tenants.auditing import online as audit_online
from tenants.limits import gate, usage
from tenants.models import Tenant, UsageDaily

logger = logging.getLogger(__name__)

MONTH_KEY_TTL = 40 * 24 * 3600
DAY_KEY_TTL = 14 * 24 * 3600


# --- predicted rows --------------------------------------------------------------------------
def _pipeline_counts(pipe, *, tenant_id: int, user_id: int | None, rows: int, when: datetime) -> None:
    keys = gate.usage_keys(tenant_id, when)
    pipe.hincrby(keys["pred_day"], str(user_id or 0), rows)
    pipe.expire(keys["pred_day"], DAY_KEY_TTL)
    pipe.incrby(keys["pred_month"], rows)
    pipe.expire(keys["pred_month"], MONTH_KEY_TTL)
    if user_id:  # a member's own monthly total, for their own predicted_rows limit
        member_key = gate.member_month_key(tenant_id, user_id, when)
        pipe.incrby(member_key, rows)
        pipe.expire(member_key, MONTH_KEY_TTL)


def count_predictions(*, tenant_id: int, user_id: int | None, rows: int) -> None:
    """Batch jobs: count rows at once (one round trip)."""
    pipe = gate.client().pipeline(transaction=False)
    _pipeline_counts(pipe, tenant_id=tenant_id, user_id=user_id, rows=rows, when=datetime.now(UTC))
    pipe.execute()


class OnlineBuffer:
    """Per-process counts of online predictions, flushed to Redis every second by a thread.

    Keyed by (tenant, user, token, model version, minute): the audit trail gets one counted
    entry per (token, model version, minute), usage gets the rows.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        self._thread: threading.Thread | None = None
        self._pid = None

    def add(self, *, tenant_id: int, user_id: int, token_id: int | None, version_id: int, rows: int) -> None:
        minute = int(time.time() // 60)
        with self._lock:
            entry = self._counts[(tenant_id, user_id, token_id, version_id, minute)]
            entry[0] += 1
            entry[1] += rows
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        import os

        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()  # a forked worker needs its own thread
        self._thread = threading.Thread(target=self._run, name="online-usage-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(settings.PORTAL_ONLINE_FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # Redis briefly away: keep the counts and try again
                logger.exception("could not flush online prediction counts")

    def discard(self) -> None:
        with self._lock:
            self._counts = defaultdict(lambda: [0, 0])

    def flush(self) -> int:
        with self._lock:
            taken, self._counts = self._counts, defaultdict(lambda: [0, 0])
        if not taken:
            return 0
        try:
            pipe = gate.client().pipeline(transaction=False)
            for (tenant_id, user_id, token_id, version_id, minute), (calls, rows) in taken.items():
                when = datetime.fromtimestamp(minute * 60, UTC)
                _pipeline_counts(pipe, tenant_id=tenant_id, user_id=user_id, rows=rows, when=when)
                audit_online.online_count_pipeline(
                    pipe, tenant_id=tenant_id, token_id=token_id, actor_id=user_id,
                    model_version_id=version_id, calls=calls, rows=rows, when=when)
            pipe.execute()
        except Exception:
            with self._lock:  # put them back for the next attempt
                for key, (calls, rows) in taken.items():
                    self._counts[key][0] += calls
                    self._counts[key][1] += rows
            raise
        return len(taken)


online_buffer = OnlineBuffer()


def settle_before_export(tenant_id: int | None) -> None:
    """Registered as an audit pre-export hook: counts that other processes still hold reach
    Redis within one flush interval, so wait that long (after flushing this process's own)."""
    online_buffer.flush()
    time.sleep(settings.PORTAL_ONLINE_FLUSH_SECONDS + 0.25)


def month_predicted_rows(tenant_id: int) -> int:
    return int(gate.client().get(gate.usage_keys(tenant_id, datetime.now(UTC))["pred_month"]) or 0)


def member_month_predicted_rows(tenant_id: int, user_id: int) -> int:
    return int(gate.client().get(gate.member_month_key(tenant_id, user_id, datetime.now(UTC))) or 0)


# --- Redis -> PostgreSQL ---------------------------------------------------------------------
# A sync takes a daily hash by renaming it to a key of its own and noting that key, with the time
# it was taken, in one sorted set (one Lua call, so a key is never taken without being noted). It
# then adds the counts to UsageDaily and, once PostgreSQL has committed, deletes the taken key.
# A sync killed in between leaves its key noted; a later sync recovers keys noted more than
# STRANDED_AFTER seconds ago, claiming each by stamping it anew so only one sync recovers it.
# Remaining window for counting twice: a sync killed after PostgreSQL committed but before the
# delete reached Redis (one round trip), or a sync that takes longer than STRANDED_AFTER to write
# one key. Nothing is lost: counts are deleted from Redis only after they are in PostgreSQL.
STRANDED_AFTER = 300

_TAKE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('ZADD', KEYS[3], ARGV[1], KEYS[2])
return 1
"""

_CLAIM_LUA = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


def _taken_registry() -> str:
    return f"{gate._prefix()}:use:taken"


def _take(redis, key: str) -> str | None:
    """Move the hash at `key` to a key of this sync's own; None when nothing was counted."""
    taken = f"{key}:taken:{uuid.uuid4().hex}"
    if not redis.eval(_TAKE_LUA, 3, key, taken, _taken_registry(), time.time()):
        return None
    return taken


def _read(redis, taken: str) -> dict[str, int]:
    raw = redis.hgetall(taken)
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


def _finish(redis, taken: str) -> None:
    pipe = redis.pipeline(transaction=True)
    pipe.delete(taken)
    pipe.zrem(_taken_registry(), taken)
    pipe.execute()


def _add(tenant_id: int, day: date, field: str, per_user: dict[str, int]) -> None:
    for user, amount in per_user.items():
        user_id = int(user) or None
        row, _ = UsageDaily.objects.get_or_create(tenant_id=tenant_id, user_id=user_id, day=day)
        UsageDaily.objects.filter(pk=row.pk).update(**{field: models.F(field) + amount})


_FIELDS = {"api": "api_requests", "pred": "predicted_rows"}


def _store(redis, taken: str, tenant_id: int, day: date, field: str) -> int:
    """Counts of one taken key -> UsageDaily, then the key is deleted; returns the rows touched."""
    counts = _read(redis, taken)
    with transaction.atomic():
        _add(tenant_id, day, field, counts)
    _finish(redis, taken)
    return len(counts)


def _recover_stranded(redis) -> set[int]:
    """Keys taken by a sync that died before finishing; returns the tenants whose usage changed."""
    now = time.time()
    changed = set()
    for raw in redis.zrangebyscore(_taken_registry(), "-inf", now - STRANDED_AFTER):
        taken = raw.decode() if isinstance(raw, bytes) else raw
        if not redis.eval(_CLAIM_LUA, 1, _taken_registry(), taken, now - STRANDED_AFTER, now):
            continue  # another sync claimed it first
        kind, tenant_id, day = taken.split(":taken:")[0].rsplit(":", 3)[1:]
        logger.warning("recovering usage counts of an unfinished sync", extra={"key": taken})
        if _store(redis, taken, int(tenant_id), datetime.strptime(day, "%Y%m%d").date(), _FIELDS[kind]):
            changed.add(int(tenant_id))
    return changed


def sync_to_database(days: tuple[date, ...] | None = None) -> int:
    """Move today's (and yesterday's) Redis counts into UsageDaily; returns the rows touched."""
    redis = gate.client()
    today = datetime.now(UTC)
    days = days or (today.date(), date.fromordinal(today.date().toordinal() - 1))
    recovered = _recover_stranded(redis)
    touched = 0
    for tenant in Tenant.objects.exclude(schema_name="public"):
        tenant_id = tenant.id
        changed = tenant_id in recovered
        for day in days:
            when = datetime(day.year, day.month, day.day, tzinfo=UTC)
            keys = gate.usage_keys(tenant_id, when)
            for key, field in ((keys["api_day"], "api_requests"), (keys["pred_day"], "predicted_rows")):
                taken = _take(redis, key)
                if taken:
                    rows = _store(redis, taken, tenant_id, day, field)
                    touched += rows
                    changed = changed or bool(rows)
        if changed:
            usage.invalidate(tenant)
        _seed_month_total(redis, tenant_id, today)
    return touched


def _seed_month_total(redis, tenant_id: int, now: datetime) -> None:
    """After Redis lost its data, the month's predicted rows (the tenant's and each member's) start
    again from what PostgreSQL has. The keys are written together, so a missing tenant total means
    the members' totals are gone too."""
    key = gate.usage_keys(tenant_id, now)["pred_month"]
    if redis.exists(key):
        return
    first = now.date().replace(day=1)
    per_member = (UsageDaily.objects.filter(tenant_id=tenant_id, day__gte=first)
                  .values("user_id").annotate(n=models.Sum("predicted_rows")).order_by())
    pipe = redis.pipeline(transaction=False)
    total = 0
    for row in per_member:
        total += row["n"] or 0
        if row["user_id"] and row["n"]:
            pipe.set(gate.member_month_key(tenant_id, row["user_id"], now), row["n"], ex=MONTH_KEY_TTL, nx=True)
    pipe.set(key, total, ex=MONTH_KEY_TTL, nx=True)
    pipe.execute()
