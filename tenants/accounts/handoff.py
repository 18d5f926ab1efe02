"""One sign-in for every workspace a person belongs to, with sessions still bound to one tenant.

Each tenant has its own host, so its own session cookie, and a session authorises only on the
host it was opened on (TenantAccessMiddleware). Switching workspace from the menu therefore hands
the person over instead of asking for the password again: the signed-in session on the source host
issues a one-time ticket (32 random bytes; Redis keeps only its digest, for 60 s) and redirects to
the target host, which spends the ticket and opens a session of its own there.

A ticket names the user, the source and the target tenant and whether the source session had
passed a second factor; it is refused on any other host, after 60 s, a second time, or when the
person is no longer an active member of the target. Someone whose source session did not pass a
second factor but who has one set up still gives a code on the target.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from tenants.accounts import access
from tenants.limits import gate
from tenants.models import Membership, Tenant, User

TICKET_SECONDS = 60


@dataclass(frozen=True)
class Handoff:
    user: User
    membership: access.MembershipInfo  # in the target tenant, checked when the ticket was spent
    source_slug: str
    second_factor_passed: bool


def _key(ticket: str) -> str:
    return f"{gate.key_prefix()}:handoff:{hashlib.sha256(ticket.encode()).hexdigest()}"


def handoff_target(*, user, slug: str) -> Tenant | None:
    """The workspace `slug` if this user is an active member of it (else None: nothing to reveal)."""
    row = (Membership.objects.filter(user_id=user.pk, tenant__slug=slug, tenant__is_active=True)
           .select_related("tenant").first())
    return row.tenant if row else None


def handoff_issue(*, user, source: Tenant, target: Tenant, second_factor_passed: bool) -> str:
    ticket = secrets.token_urlsafe(32)
    payload = {"user": user.pk, "source": source.slug, "target": target.id,
               "second_factor": bool(second_factor_passed), "at": int(time.time())}
    gate.client().set(_key(ticket), json.dumps(payload), ex=TICKET_SECONDS)
    return ticket


def handoff_redeem(*, ticket: str, tenant: Tenant) -> Handoff | None:
    """Spend a ticket on this tenant's host; None when it is unknown, used, expired or not for here."""
    if not ticket or len(ticket) > 100:
        return None
    raw = gate.client().getdel(_key(ticket))  # one use: two racing redemptions cannot both pass
    if raw is None:
        return None
    data = json.loads(raw)
    if data.get("target") != tenant.id:
        return None
    user = User.objects.filter(pk=data.get("user"), is_active=True).first()
    membership = access.membership_for(user_id=user.pk, tenant=tenant) if user is not None else None
    if membership is None:
        return None
    return Handoff(user=user, membership=membership, source_slug=str(data.get("source", "")),
                   second_factor_passed=bool(data.get("second_factor")))
