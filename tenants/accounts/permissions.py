"""Permission classes of the safe-by-default API base (tenants.web.api.TenantAPI)."""

from django.http import Http404
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from tenants.models import TokenScope


class IsTenantMember(BasePermission):
    """Anonymous -> 401; authenticated but no membership here -> 404 (the middleware already did)."""

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated("Log in or send 'Authorization: Bearer <token>'.")
        if getattr(request._request, "membership", None) is None:
            raise Http404
        return True


class RoleAllowed(BasePermission):
    """The view's read_roles for safe methods, write_roles for the rest; else 403."""

    def has_permission(self, request, view):
        role = request._request.membership.role
        allowed = view.read_roles if request.method in SAFE_METHODS else view.write_roles
        if role not in allowed:
            raise exceptions.PermissionDenied(f"Your role ({role}) does not allow this.")
        return True


class TokenScopeAllowed(BasePermission):
    """A read-scoped token may only read."""

    def has_permission(self, request, view):
        token = getattr(request._request, "api_token", None)
        # A view whose POST only computes (online predictions) declares posts_change_nothing.
        writes = request.method not in SAFE_METHODS and not getattr(view, "posts_change_nothing", False)
        if token is not None and writes and token.scope != TokenScope.WRITE:
            raise exceptions.PermissionDenied("This token has read scope; writing needs a write-scoped token.")
        return True
