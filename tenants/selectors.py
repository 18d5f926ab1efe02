"""Reads of the public schema, already scoped and joined."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from .access import MembershipInfo
from .models import ApiToken, Membership, Role, Tenant, User


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email")


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


def admin_count(*, tenant: Tenant) -> int:
    return Membership.objects.filter(tenant=tenant, role=Role.ADMIN).count()
