"""Online predictions in the audit trail: counted in Redis on the hot path, appended as entries.

No PostgreSQL write per call: ``online_count_pipeline(...)`` (on the metering flush's pipeline) or
``online_count(...)`` counts calls per tenant and minute, and ``online_flush()`` (Celery beat, every
5 s, and before any export) appends one ``prediction.online`` entry per (token, model version,
minute) through ``audit.append_counted(...)``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.utils import timezone

from tenants.auditing import audit
from tenants.limits import gate
from tenants.models import Membership, User

logger = logging.getLogger(__name__)


# Redis layout of the online counters (one hash per tenant and UTC minute):
#   key    {KEY_PREFIX}:audit:online:{tenant_id}:{YYYYmmddHHMM}
#   fields {token_id}|{actor_id}|{model_version_id}|count  and  ...|rows   (HINCRBY)
# and the set {KEY_PREFIX}:audit:online:pending of keys that may hold counts, so the flush needs no
# SCAN. online_count() below is the reference writer; the prediction endpoint may do the same in its
# own Lua script, in the round trip of its rate limit.
ONLINE_ACTION = "prediction.online"
_MINUTE = "%Y%m%d%H%M"


def _online_prefix() -> str:
    return f"{gate._prefix()}:audit:online"


def online_key(tenant_id: int, when: datetime) -> str:
    return f"{_online_prefix()}:{tenant_id}:{when.astimezone(UTC).strftime(_MINUTE)}"


def online_pending_key() -> str:
    return f"{_online_prefix()}:pending"


def online_count_pipeline(pipe, *, tenant_id: int, token_id: int | None, actor_id: int | None,
                          model_version_id, calls: int, rows: int, when: datetime) -> None:
    """Queue the counts of `calls` online predictions on a Redis pipeline (no round trip)."""
    key = online_key(tenant_id, when)
    field = f"{token_id or ''}|{actor_id or ''}|{model_version_id}"
    pipe.hincrby(key, f"{field}|count", int(calls))
    pipe.hincrby(key, f"{field}|rows", int(rows))
    pipe.expire(key, 7 * 24 * 3600)
    pipe.sadd(online_pending_key(), key)


def online_count(*, tenant_id: int, token_id: int | None, actor_id: int | None,
                 model_version_id, rows: int, when: datetime | None = None) -> None:
    """Count one online prediction call (one pipelined round trip, no PostgreSQL)."""
    pipe = gate.client().pipeline(transaction=False)
    online_count_pipeline(pipe, tenant_id=tenant_id, token_id=token_id, actor_id=actor_id,
                          model_version_id=model_version_id, calls=1, rows=rows,
                          when=when or timezone.now())
    pipe.execute()


def online_flush(*, tenant_id: int | None = None) -> int:
    """Append the counted calls as prediction.online entries; returns how many entries.

    Each key is taken with RENAME, so concurrent flushes (the 5-second beat task and an export
    starting) never append the same counts twice, and calls counted meanwhile go to a fresh key.
    A minute may thus get more than one entry per (token, model version); their counts add up.
    """
    redis = gate.client()
    pending = online_pending_key()
    appended = 0
    for raw_key in sorted(redis.smembers(pending)):
        key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
        chain, minute = _parse_online_key(key)
        if chain is None or (tenant_id is not None and chain != tenant_id):
            continue
        taking = f"{key}:flushing"
        try:
            redis.rename(key, taking)
        except Exception as exc:  # redis.ResponseError "no such key": flushed or never written
            if "no such key" not in str(exc).lower():
                raise
            redis.srem(pending, key)
            continue
        redis.srem(pending, key)
        appended += _append_online_counts(chain, minute, redis.hgetall(taking))
        redis.delete(taking)
    return appended


def _parse_online_key(key: str) -> tuple[int | None, datetime | None]:
    try:
        tenant_part, minute_part = key.rsplit(":", 2)[-2:]
        minute = datetime.strptime(minute_part, _MINUTE).replace(tzinfo=UTC)
        return int(tenant_part), minute
    except ValueError:
        logger.warning("audit: ignoring malformed online counter key", extra={"key": key})
        return None, None


def _append_online_counts(tenant_id: int, minute: datetime, raw: dict) -> int:
    totals: dict[tuple[str, str, str], dict[str, int]] = {}
    for raw_field, raw_value in raw.items():
        field = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
        token_id, actor_id, version, kind = (field.split("|") + ["", "", "", ""])[:4]
        totals.setdefault((token_id, actor_id, version), {"count": 0, "rows": 0})[kind] = int(raw_value)
    slug = audit.tenant_slug_of(tenant_id)
    appended = 0
    for (token_id, actor_id, version), counts in sorted(totals.items()):
        if not counts.get("count"):
            continue
        user = User.objects.filter(pk=actor_id).only("email").first() if actor_id.isdigit() else None
        role = (Membership.objects.filter(user_id=user.pk, tenant_id=tenant_id)
                .values_list("role", flat=True).first() if user else None)
        actor = audit.Actor(actor_id=user.pk if user else None, actor_email=user.email if user else "",
                      role=role or "", auth_method="token")
        audit.append_counted(tenant_id=tenant_id, action=ONLINE_ACTION, object_type="model_version",
                       object_id=version, count=counts["count"], rows=counts.get("rows", 0),
                       window_start=minute, actor=actor, tenant_slug=slug,
                       details={"token_id": int(token_id) if token_id.isdigit() else None})
        appended += 1
    return appended


# Called before an export takes its snapshot, so that every call counted so far is in it. The
# Redis counters are flushed here; code with other pending counts registers its own flush.
_pre_export_hooks: list = []


def register_pre_export_hook(hook) -> None:
    """`hook(tenant_id)` runs before each export of that tenant's chain starts."""
    if hook not in _pre_export_hooks:
        _pre_export_hooks.append(hook)


def flush_before_export(tenant_id: int | None) -> None:
    # Hooks first: they push counts still held in processes to Redis, then Redis -> the chain;
    # buffered access entries too (tenants/auditing/audit.py).
    for hook in list(_pre_export_hooks):
        hook(tenant_id)
    if tenant_id is not None:
        online_flush(tenant_id=tenant_id)
    audit.flush_pending(tenant_id=tenant_id)
