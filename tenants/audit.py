"""The audit trail: an append-only, hash-chained log per tenant in the public schema.

Who acted, from where and with which credentials is taken from the current context: the request
(bound by TenantAccessMiddleware) or, in tasks and commands, ``acting_as(...)``. Services call
``record(...)``; if called inside a transaction the entry is appended right after it commits, in its
own short transaction, so the chain's lock is never held during the business work.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import connection, transaction
from django.utils import timezone

from .models import AuditChainHead, AuditEvent

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
            return forwarded.split(",")[0].strip()[:45]
    return request.META.get("REMOTE_ADDR") or None


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
    return ts.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    who = actor or current_actor()
    tenant_id = getattr(tenant, "id", None)
    tenant_slug = getattr(tenant, "slug", "") if tenant is not None and not tenant.is_public else ""
    if tenant_slug == "":
        tenant_id = None  # the platform's own chain (operators, public site)
    fields = dict(
        tenant_id=tenant_id, tenant_slug=tenant_slug, action=action, object_type=object_type,
        object_id=str(object_id) if object_id not in (None, "") else "", outcome=outcome,
        details=details or {}, **asdict(who),
    )
    marks = _recorded.get()
    if marks is not None:
        marks.append(action)
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _append(fields))
    else:
        _append(fields)


def _append(fields: dict) -> AuditEvent:
    # The audit tables exist only in the public schema, which is on every tenant's search path,
    # so there is no need to switch schemas here.
    with transaction.atomic():
        head = _lock_head(fields["tenant_id"])
        event = AuditEvent(seq=head.last_seq + 1, ts=timezone.now(), prev_hash=head.last_hash, **fields)
        event.hash = entry_hash(entry_dict(event))
        event.save()
        head.last_seq = event.seq
        head.last_hash = event.hash
        head.save(update_fields=["last_seq", "last_hash"])
    return event


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
