"""Receivers for Django's own signals (infrastructure only, no business rules)."""

from .access import SESSION_TENANT_KEY


def bind_session_to_tenant(sender, request, user, **kwargs):
    """A session is valid only on the host where it was opened (see TenantAccessMiddleware).

    Every login path (our login page, the operator console, password-reset auto-login) ends here.
    """
    if request is None or not hasattr(request, "session"):
        return
    tenant = getattr(request, "tenant", None)
    request.session[SESSION_TENANT_KEY] = tenant.schema_name if tenant is not None else "public"
