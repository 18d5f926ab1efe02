"""The audit trail: an append-only, hash-chained log per tenant in the public schema.

Who acted, from where and with which credentials is taken from the current context: the request
(bound by TenantAccessMiddleware) or, in tasks and commands, ``acting_as(...)``. Services call
``record(...)``; if called inside a transaction the entry is appended right after it commits, in its
own short transaction, so the chain's lock is never held during the business work (a test case's
own wrapping transaction does not count: there, as in production, the entry is appended at once).

The per-request access log (AuditAccessMiddleware) calls ``record_access(...)`` instead: the entry,
its time and request id fixed when the request is served, is one committed INSERT into a durable
buffer (PendingAuditEvent, public schema) without the chain's lock, so a busy tenant's requests do
not queue on its chain head. ``flush_pending(...)`` moves buffered entries into the chain in
batches, in id order, under one head lock per batch, deleting them in the same transaction (a crash
leaves them buffered, never lost or doubled: migration 0011). It runs from Celery beat every second
(``tenants.audit_flush_pending``), before anything reads a chain (the audit page and API, exports,
verification, the operators' page), and before every direct append: an entry appended directly
comes after every buffered entry of its chain committed before it (README "Security and the audit
trail").

Online predictions write nothing to PostgreSQL per call: they are counted in Redis and appended
as counted entries through ``append_counted(...)`` (tenants/auditing/online.py). Verification, retention purge: tenants/auditing/audit_chain.py;
exports and manifests: tenants/auditing/audit_export.py; signatures: tenants/crypto/signing.py.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import ipaddress
import json
import logging
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from tenants.models import AuditChainHead, AuditEvent, PendingAuditEvent

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
OUTCOMES = ("allowed", "denied", "failed")
# The fields of an entry in the order of exports; `hash` covers all of them but `id` and `hash`.
FIELDS = ("seq", "id", "ts", "tenant", "actor_id", "actor_email", "role", "auth_method", "source_ip",
          "user_agent", "action", "object_type", "object_id", "outcome", "request_id", "details",
          "prev_hash", "hash")
HASHED_FIELDS = tuple(f for f in FIELDS if f not in ("id", "hash"))


@dataclass(frozen=True)
class Actor:
    """Who is acting, and how: set once per request or task."""

    actor_id: int | None = None
    actor_email: str = ""
    role: str = ""
    auth_method: str = "system"
    source_ip: str | None = None
    user_agent: str = ""
    request_id: str = ""


SYSTEM = Actor()
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=SYSTEM)
# Set while a request is being served: True once a service recorded a specific action for it,
# so the access log does not add a second, generic entry.
_recorded: contextvars.ContextVar[list | None] = contextvars.ContextVar("audit_recorded", default=None)


def actor_from_request(request) -> Actor:
    user = getattr(request, "user", None)
    membership = getattr(request, "membership", None)
    authenticated = bool(user is not None and user.is_authenticated)
    return Actor(
        actor_id=user.pk if authenticated else None,
        actor_email=user.email if authenticated else "",
        role=membership.role if membership is not None else ("operator" if authenticated and user.is_staff else ""),
        auth_method=getattr(request, "auth_method", None) or ("session" if authenticated else "anonymous"),
        source_ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        request_id=getattr(request, "request_id", ""),
    )


def client_ip(request) -> str | None:
    from django.conf import settings

    if getattr(settings, "PORTAL_TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return normalise_ip(forwarded.split(",")[0].strip()[:45])
    return normalise_ip(request.META.get("REMOTE_ADDR"))


@functools.lru_cache(maxsize=1024)  # on every request; parsing an address costs ~5 µs
def normalise_ip(value) -> str | None:
    """The address as PostgreSQL's inet gives it back (so hashes re-verify), or None if invalid.

    Also the lockout key (AXES_CLIENT_IP_CALLABLE): a forged header cannot break either.
    """
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def bind_request(request) -> None:
    """Called by TenantAccessMiddleware once it knows who is asking."""
    _current.set(actor_from_request(request))


@contextmanager
def request_scope():
    """Around one request: a fresh actor and "specific entry recorded" flag."""
    actor_token = _current.set(SYSTEM)
    flag_token = _recorded.set([])
    try:
        yield
    finally:
        _current.reset(actor_token)
        _recorded.reset(flag_token)


def recorded_in_this_request() -> bool:
    return bool(_recorded.get())


def current_actor() -> Actor:
    return _current.get()


@contextmanager
def acting_as(actor: Actor | None = None, **changes):
    """In tasks and commands: `with acting_as(Actor(actor_id=…, actor_email=…, auth_method="job")):`"""
    token = _current.set(replace(actor or SYSTEM, **changes))
    try:
        yield
    finally:
        _current.reset(token)


def actor_for_user(user, *, role: str = "", auth_method: str | None = None) -> Actor:
    """The current context (IP, user agent, request id) acting as `user`."""
    base = current_actor()
    return replace(base, actor_id=user.pk, actor_email=user.email, role=role or base.role,
                   auth_method=auth_method or base.auth_method)


# --- hashing ------------------------------------------------------------------------------------
def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_dict(event: AuditEvent) -> dict:
    """The exported form of an entry (JSON Lines, API)."""
    return {
        "seq": event.seq, "id": event.id, "ts": format_ts(event.ts), "tenant": event.tenant_slug,
        "actor_id": event.actor_id, "actor_email": event.actor_email, "role": event.role,
        "auth_method": event.auth_method, "source_ip": event.source_ip, "user_agent": event.user_agent,
        "action": event.action, "object_type": event.object_type, "object_id": event.object_id,
        "outcome": event.outcome, "request_id": event.request_id, "details": event.details,
        "prev_hash": event.prev_hash, "hash": event.hash,
    }


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical({k: entry[k] for k in HASHED_FIELDS})).hexdigest()


# --- appending ----------------------------------------------------------------------------------
def record(action: str, *, tenant=None, object_type: str = "", object_id="", outcome: str = "allowed",
           details: dict | None = None, actor: Actor | None = None) -> None:
    """Append an entry to the tenant's chain (after the current transaction commits)."""
    fields = _entry_fields(action, tenant=tenant, object_type=object_type, object_id=object_id,
                           outcome=outcome, details=details, actor=actor)
    marks = _recorded.get()
    if marks is not None:
        marks.append(action)
    if _inside_transaction():
        transaction.on_commit(lambda: _append(fields))
    else:
        _append(fields)


def record_access(action: str, *, tenant, object_type: str = "", object_id="", outcome: str = "allowed",
                  details: dict | None = None, actor: Actor | None = None) -> None:
    """The access log's entry for the request being served: buffered, not appended (module doc).

    Its time is now; once this returns (outside a transaction) the entry is committed.
    """
    fields = _entry_fields(action, tenant=tenant, object_type=object_type, object_id=object_id,
                           outcome=outcome, details=details, actor=actor)
    fields["ts"] = timezone.now()
    if _inside_transaction():
        transaction.on_commit(lambda: _buffer(fields))
    else:
        _buffer(fields)


def _entry_fields(action: str, *, tenant, object_type: str, object_id, outcome: str,
                  details: dict | None, actor: Actor | None) -> dict:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    who = actor or current_actor()
    tenant_id = getattr(tenant, "id", None)
    tenant_slug = getattr(tenant, "slug", "") if tenant is not None and not tenant.is_public else ""
    if tenant_slug == "":
        tenant_id = None  # the platform's own chain (operators, public site)
    return _clean_fields(dict(
        tenant_id=tenant_id, tenant_slug=tenant_slug, action=action, object_type=object_type,
        object_id=str(object_id) if object_id not in (None, "") else "", outcome=outcome,
        details=details or {}, **asdict(who),
    ))


def _inside_transaction() -> bool:
    """Inside a transaction the code opened itself (the entry waits for its commit).

    Test cases wrap each test in atomic blocks of their own (marked `_from_testcase`); those are
    not the code's transactions, so entries are appended at once there too, as in production.
    """
    blocks = getattr(connection, "atomic_blocks", [])
    return connection.in_atomic_block and not all(getattr(b, "_from_testcase", False) for b in blocks)


# Every authenticated request appends an entry, so appending is two statements on one cursor
# (lock the head; insert the entry and move the head) rather than ORM saves: about twice the rate.
_EVENT_COLUMNS = ("tenant_id", "tenant_slug", "seq", "ts", "actor_id", "actor_email", "role",
                  "auth_method", "source_ip", "user_agent", "action", "object_type", "object_id",
                  "outcome", "request_id", "details", "prev_hash", "hash")
# Only table and column names are formatted in (from the models); every value is a parameter.
_INSERT_AND_MOVE_HEAD = (
    f"WITH entry AS (INSERT INTO {AuditEvent._meta.db_table} ({', '.join(_EVENT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('%s::jsonb' if c == 'details' else '%s' for c in _EVENT_COLUMNS)}) "
    f"RETURNING id) "
    f"UPDATE {AuditChainHead._meta.db_table} SET last_seq = %s, last_hash = %s WHERE id = %s "
    f"RETURNING (SELECT id FROM entry)"
)


def _append(fields: dict) -> AuditEvent:
    # The audit tables exist only in the public schema, which is on every tenant's search path,
    # so there is no need to switch schemas here.
    with transaction.atomic(), connection.cursor() as cursor:
        head_id, last_seq, last_hash = _lock_head_row(cursor, fields["tenant_id"])
        # Buffered entries committed before this one go first: one order for both paths.
        last_seq, last_hash = _drain_locked(cursor, head_id, fields["tenant_id"], last_seq, last_hash)
        event = AuditEvent(seq=last_seq + 1, ts=timezone.now(), prev_hash=last_hash, **fields)
        event.hash = entry_hash(entry_dict(event))
        values = [json.dumps(event.details) if c == "details" else getattr(event, c)
                  for c in _EVENT_COLUMNS]
        cursor.execute(_INSERT_AND_MOVE_HEAD, [*values, event.seq, event.hash, head_id])
        event.id = cursor.fetchone()[0]
    return event


# --- the buffer of access entries -------------------------------------------------------------
_PENDING_COLUMNS = ("tenant_id", "tenant_slug", "ts", "actor_id", "actor_email", "role", "auth_method",
                    "source_ip", "user_agent", "action", "object_type", "object_id", "outcome",
                    "request_id", "details")
_PENDING = PendingAuditEvent._meta.db_table
_INSERT_PENDING = (
    f"INSERT INTO {_PENDING} ({', '.join(_PENDING_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('%s::jsonb' if c == 'details' else '%s' for c in _PENDING_COLUMNS)})"
)
# Entries moved per transaction (one head lock, one multi-row INSERT, one DELETE).
FLUSH_BATCH = 1_000


def _buffer(fields: dict) -> None:
    values = [json.dumps(fields["details"]) if c == "details" else fields[c] for c in _PENDING_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_PENDING, values)


def flush_pending(*, tenant_id: int | None, batch: int = FLUSH_BATCH) -> int:
    """Move one chain's buffered entries into it (None: the platform's); returns how many.

    Each batch is one transaction: lock the head, take the oldest `batch` entries by id, hash
    them onto the chain, insert them (each naming its buffered id, unique), move the head and
    delete them. Concurrent flushes of a chain queue on its head lock, and each sees what the one
    before it deleted, so an entry is moved once; a flush killed half-way keeps its committed
    batches and leaves the rest buffered for the next one. It stops at the newest entry buffered
    when it started: a reader never chases a tenant that keeps sending requests.
    """
    with connection.cursor() as cursor:  # nothing buffered: no lock, the common case for readers
        through = _newest_pending(cursor, tenant_id)
    if through is None:
        return 0
    moved = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            head_id, last_seq, last_hash = _lock_head_row(cursor, tenant_id)
            count, _, _ = _move_batch(cursor, head_id, tenant_id, last_seq, last_hash, batch, through)
        moved += count
        if count < batch:
            return moved


def flush_all_pending(*, batch: int = FLUSH_BATCH) -> int:
    """Every chain with buffered entries (the beat task, the operators' page)."""
    chains = (PendingAuditEvent.objects.order_by().values_list("tenant_id", flat=True).distinct())
    moved = sum(flush_pending(tenant_id=tenant_id, batch=batch) for tenant_id in list(chains))
    if moved:
        logger.debug("audit: buffered entries appended", extra={"entries": moved})
    return moved


def _chain_filter(tenant_id: int | None) -> tuple[str, list]:
    return ("tenant_id IS NULL", []) if tenant_id is None else ("tenant_id = %s", [tenant_id])


def _newest_pending(cursor, tenant_id: int | None) -> int | None:
    where, params = _chain_filter(tenant_id)
    cursor.execute(f"SELECT max(id) FROM {_PENDING} WHERE {where}", params)  # noqa: S608
    return cursor.fetchone()[0]


def _drain_locked(cursor, head_id: int, tenant_id: int | None, last_seq: int, last_hash: str) -> tuple[int, str]:
    """Inside a transaction holding the head lock: the chain's buffered entries, in batches."""
    through = _newest_pending(cursor, tenant_id)
    while through is not None:
        count, last_seq, last_hash = _move_batch(cursor, head_id, tenant_id, last_seq, last_hash,
                                                 FLUSH_BATCH, through)
        if count < FLUSH_BATCH:
            break
    return last_seq, last_hash


def _move_batch(cursor, head_id: int, tenant_id: int | None, last_seq: int, last_hash: str,
                batch: int, through: int) -> tuple[int, int, str]:
    """With the head locked: up to `batch` buffered entries (ids up to `through`) into the chain;
    (count, seq, hash)."""
    where, params = _chain_filter(tenant_id)
    cursor.execute(f"SELECT id, {', '.join(_PENDING_COLUMNS)} FROM {_PENDING} WHERE {where} "  # noqa: S608
                   f"AND id <= %s ORDER BY id LIMIT %s", [*params, through, batch])
    rows = cursor.fetchall()
    if not rows:
        return 0, last_seq, last_hash
    values: list = []
    for pending_id, *content in rows:
        fields = dict(zip(_PENDING_COLUMNS, content, strict=True))
        if isinstance(fields["details"], str):  # jsonb as text (Django's psycopg loaders)
            fields["details"] = json.loads(fields["details"])
        if fields["source_ip"] is not None:
            fields["source_ip"] = str(fields["source_ip"])
        last_seq += 1
        fields.update(seq=last_seq, prev_hash=last_hash)
        last_hash = fields["hash"] = entry_hash({**fields, "ts": format_ts(fields["ts"]),
                                                 "tenant": fields["tenant_slug"]})
        values += [json.dumps(fields["details"]) if c == "details" else fields[c] for c in _EVENT_COLUMNS]
        values.append(pending_id)
    one = f"({', '.join('%s::jsonb' if c == 'details' else '%s' for c in _EVENT_COLUMNS)}, %s)"
    cursor.execute(f"INSERT INTO {AuditEvent._meta.db_table} ({', '.join(_EVENT_COLUMNS)}, pending_id) "  # noqa: S608
                   f"VALUES {', '.join([one] * len(rows))}", values)
    cursor.execute(f"UPDATE {AuditChainHead._meta.db_table} SET last_seq = %s, last_hash = %s "  # noqa: S608
                   f"WHERE id = %s", [last_seq, last_hash, head_id])
    cursor.execute(f"DELETE FROM {_PENDING} WHERE id = ANY(%s)", [[row[0] for row in rows]])  # noqa: S608
    return len(rows), last_seq, last_hash


def _lock_head_row(cursor, tenant_id: int | None) -> tuple[int, int, str]:
    """(head id, last seq, last hash) of the chain, its row locked until the transaction ends."""
    table = AuditChainHead._meta.db_table
    where = "tenant_id IS NULL" if tenant_id is None else "tenant_id = %s"
    params = [] if tenant_id is None else [tenant_id]
    cursor.execute(f"SELECT id, last_seq, last_hash FROM {table} WHERE {where} FOR UPDATE", params)  # noqa: S608
    row = cursor.fetchone()
    if row is None:
        _lock_head(tenant_id)  # creates the head (race-free), then lock it here
        cursor.execute(f"SELECT id, last_seq, last_hash FROM {table} WHERE {where} FOR UPDATE", params)  # noqa: S608
        row = cursor.fetchone()
    return row


def _lock_head(tenant_id: int | None) -> AuditChainHead:
    """One row per chain, locked while appending, so the chain never forks."""
    head = AuditChainHead.objects.select_for_update().filter(tenant_id=tenant_id).first()
    if head is None:
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(tenant_id=tenant_id, last_seq=0, last_hash=GENESIS_HASH)],
            ignore_conflicts=True,
        )
        head = AuditChainHead.objects.select_for_update().get(tenant_id=tenant_id)
    return head


# --- what an entry may hold ---------------------------------------------------------------------
# Column limits of AuditEvent; longer values are cut so a long header never loses an entry.
_LIMITS = {"actor_email": 254, "role": 10, "auth_method": 10, "user_agent": 300, "object_type": 40,
           "object_id": 64, "request_id": 64}


def _clean_fields(fields: dict) -> dict:
    """Make the entry hash the same before and after a round trip through PostgreSQL."""
    for name, limit in _LIMITS.items():
        fields[name] = _clean_str(fields.get(name) or "")[:limit]
    fields["source_ip"] = normalise_ip(fields.get("source_ip"))
    fields["details"] = _jsonable(fields.get("details") or {})
    return fields


def _clean_str(value: str) -> str:
    # PostgreSQL text and jsonb refuse NUL; lone surrogates cannot be encoded.
    value = str(value).replace("\x00", "")
    try:
        value.encode()
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode()
    return value


def _jsonable(value):
    """Details as jsonb will give them back: str keys, lists, finite numbers, no NUL characters."""
    if isinstance(value, dict):
        return {_clean_str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        # jsonb prints 1e16 as 10000000000000000: keep such floats as the integers they are.
        return int(value) if abs(value) >= 1e16 else value
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, datetime):
        return format_ts(value) if value.tzinfo else value.isoformat()
    return _clean_str(str(value))


# --- fast reads for verification and export -----------------------------------------------------
# values_list() columns, in the order entry_from_row() expects.
ROW_COLUMNS = ("seq", "id", "ts", "tenant_slug", "actor_id", "actor_email", "role", "auth_method",
               "source_ip", "user_agent", "action", "object_type", "object_id", "outcome",
               "request_id", "details", "prev_hash", "hash")


def entry_from_row(row: tuple) -> dict:
    """entry_dict() for a values_list(*ROW_COLUMNS) row: no model instances on long scans."""
    entry = dict(zip(FIELDS, row, strict=True))
    entry["ts"] = format_ts(entry["ts"])
    return entry


# --- counted entries: online predictions --------------------------------------------------------
def append_counted(*, tenant_id: int, action: str, object_type: str, object_id, count: int,
                   rows: int, window_start: datetime, actor: Actor, details: dict | None = None,
                   tenant_slug: str | None = None) -> AuditEvent:
    """One entry standing for `count` calls (and `rows` rows) in the minute from `window_start`.

    Online predictions are counted in Redis on the hot path (no PostgreSQL write per call) and
    appended here by the flush task (``online_flush``), docs/api.md.
    """
    if tenant_slug is None:
        tenant_slug = tenant_slug_of(tenant_id)
    window_start = window_start.astimezone(UTC).replace(second=0, microsecond=0)
    body = {**(details or {}), "count": int(count), "rows": int(rows),
            "window_start": format_ts(window_start)}
    fields = _clean_fields(dict(
        tenant_id=tenant_id, tenant_slug=tenant_slug, action=action, object_type=object_type,
        object_id=str(object_id) if object_id not in (None, "") else "", outcome="allowed",
        details=body, **asdict(actor),
    ))
    return _append(fields)


def tenant_slug_of(tenant_id: int | None) -> str:
    from tenants.models import Tenant

    if tenant_id is None:
        return ""
    slug = Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first()
    if slug is None:  # deleted since the calls were counted: keep the slug its chain already has
        slug = (AuditEvent.objects.filter(tenant_id=tenant_id).order_by("-seq")
                .values_list("tenant_slug", flat=True).first())
    return slug or ""
