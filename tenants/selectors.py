"""Reads of the public schema, already scoped and joined."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django_tenants.utils import get_public_schema_name

from tenants.accounts.access import MembershipInfo
from tenants.auditing import audit
from tenants.models import (
    ApiToken,
    AuditChainHead,
    AuditEvent,
    AuditExport,
    AuditVerification,
    Membership,
    Role,
    Tenant,
    User,
)


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email")


def membership_for_email(*, tenant: Tenant, email: str) -> Membership | None:
    """The membership of whoever has this e-mail (any case) in this tenant, or None."""
    return (Membership.objects.filter(tenant=tenant, user__email__iexact=(email or "").strip())
            .select_related("user").first())


def member_emails(*, tenant: Tenant, exclude_roles: tuple[str, ...] = (),
                  exclude_user_id: int | None = None) -> list[str]:
    """The members' e-mails, sorted, for a choice of person (the share forms)."""
    rows = Membership.objects.filter(tenant=tenant).exclude(role__in=exclude_roles)
    if exclude_user_id is not None:
        rows = rows.exclude(user_id=exclude_user_id)
    return list(rows.order_by("user__email").values_list("user__email", flat=True))


def workspaces_for_user(*, user: User) -> QuerySet[Membership]:
    """Every tenant this user belongs to, for the workspace switcher."""
    return (Membership.objects.filter(user=user, tenant__is_active=True)
            .select_related("tenant").order_by("tenant__name"))


def get_member_for_admin(*, actor: MembershipInfo, tenant: Tenant, member_id) -> Membership:
    """The one access function for member rows: admins of this tenant only; 404 for the rest."""
    if actor is None or actor.role != Role.ADMIN:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Only admins manage members.")
    try:
        return membership_list(tenant=tenant).get(pk=int(member_id))
    except (Membership.DoesNotExist, TypeError, ValueError):
        raise Http404


def api_token_list(*, user: User, tenant: Tenant) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, tenant=tenant).order_by("-created_at")


def get_api_token_for_user(*, user: User, tenant: Tenant, token_id) -> ApiToken:
    try:
        return api_token_list(user=user, tenant=tenant).get(pk=int(token_id))
    except (ApiToken.DoesNotExist, TypeError, ValueError):
        raise Http404


def tenant_api_token_list(*, tenant: Tenant) -> QuerySet[ApiToken]:
    """Every member's tokens, for admins (roles table: admins manage others' tokens)."""
    return ApiToken.objects.filter(tenant=tenant).select_related("user").order_by("-created_at")


def get_api_token_for_revoke(*, membership: MembershipInfo, user: User, tenant: Tenant,
                             token_id) -> ApiToken:
    """Own tokens for everyone; any token of the tenant for its admins; 404 for the rest."""
    tokens = (tenant_api_token_list(tenant=tenant) if membership.role == Role.ADMIN
              else api_token_list(user=user, tenant=tenant).select_related("user"))
    try:
        return tokens.get(pk=int(token_id))
    except (ApiToken.DoesNotExist, TypeError, ValueError):
        raise Http404


def admin_count(*, tenant: Tenant) -> int:
    return Membership.objects.filter(tenant=tenant, role=Role.ADMIN).count()


# --- audit trail (auditors and admins; the role check is the caller's access function) ---------
def audit_event_list(*, tenant: Tenant, filters: dict) -> QuerySet[AuditEvent]:
    """A tenant's entries matching cleaned filters (tenants.forms.AuditFilterForm.filters()).

    Buffered access entries are moved into the chain first: readers see every request served.
    """
    audit.flush_pending(tenant_id=tenant.id)
    events = AuditEvent.objects.filter(tenant_id=tenant.id)
    if filters.get("since"):
        events = events.filter(ts__gte=filters["since"])
    if filters.get("until"):
        events = events.filter(ts__lte=filters["until"])
    actor = filters.get("actor")
    if actor:
        events = events.filter(actor_id=int(actor)) if actor.isdigit() else events.filter(
            actor_email__iexact=actor)
    action = filters.get("action")
    if action:
        # "auth.*" (or "auth.") selects a family of actions.
        if action.endswith(("*", ".")):
            events = events.filter(action__startswith=action.rstrip("*"))
        else:
            events = events.filter(action=action)
    for name in ("outcome", "object_type", "object_id"):
        if filters.get(name):
            events = events.filter(**{name: filters[name]})
    return events


def get_audit_export_for_user(*, membership: MembershipInfo, tenant: Tenant, export_id) -> AuditExport:
    """The one access function for exports: auditors and admins of the tenant; 404 for the rest."""
    from django.core.exceptions import PermissionDenied

    from tenants.accounts.access import AUDIT_ROLES

    if membership is None:
        raise Http404
    if membership.role not in AUDIT_ROLES:
        raise PermissionDenied("Only auditors and admins read audit exports.")
    try:
        return AuditExport.objects.get(pk=export_id, tenant_id=tenant.id)
    except (AuditExport.DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404


def audit_export_recent(*, tenant: Tenant, limit: int = 10) -> QuerySet[AuditExport]:
    return AuditExport.objects.filter(tenant_id=tenant.id).order_by("-created_at")[:limit]


def audit_verification_last(*, tenant_id: int | None) -> AuditVerification | None:
    return AuditVerification.objects.filter(tenant_id=tenant_id).order_by("-started_at").first()


def audit_verification_latest_per_chain() -> list[AuditVerification]:
    """The newest result of every chain, for the operator page."""
    rows = AuditVerification.objects.order_by("tenant_id", "-started_at").distinct("tenant_id")
    return sorted(rows, key=lambda r: (r.tenant_slug != "", r.tenant_slug))


@dataclass(frozen=True)
class AuditChainRow:
    """One chain on the operator page: its head now and its last verification, if any ran."""

    tenant_id: int | None  # None: the platform's own chain
    slug: str
    name: str
    head_seq: int  # 0: nothing written yet
    verification: AuditVerification | None

    @property
    def unverified_entries(self) -> int:
        """Entries appended since the last verification (all of them when none ran)."""
        return self.head_seq - (self.verification.last_seq if self.verification else 0)


def audit_chain_overview() -> list[AuditChainRow]:
    audit.flush_all_pending()  # the heads shown include every request served
    """Every chain, verified or not: the platform's, every tenant's, and those of deleted tenants
    whose trail is kept. Three queries, whatever the number of tenants."""
    heads = dict(AuditChainHead.objects.values_list("tenant_id", "last_seq"))
    latest = {v.tenant_id: v for v in audit_verification_latest_per_chain()}
    tenants = Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("slug")
    rows = [AuditChainRow(None, "", "Platform", heads.get(None, 0), latest.get(None))]
    rows += [AuditChainRow(t.id, t.slug, t.name, heads.get(t.id, 0), latest.get(t.id)) for t in tenants]
    known = {row.tenant_id for row in rows}
    for tenant_id in sorted((set(heads) | set(latest)) - known):
        slug = latest[tenant_id].tenant_slug if tenant_id in latest else ""
        rows.append(AuditChainRow(tenant_id, slug, "deleted tenant", heads.get(tenant_id, 0), latest.get(tenant_id)))
    return rows
