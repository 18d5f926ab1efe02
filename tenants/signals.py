"""Receivers for Django's own signals (infrastructure only, no business rules)."""

from tenants.accounts.access import SESSION_TENANT_KEY


def bind_session_to_tenant(sender, request, user, **kwargs):
    """A session is valid only on the host where it was opened (see TenantAccessMiddleware).

    Every login path (our login page, the operator console, password-reset auto-login) ends here.
    """
    if request is None or not hasattr(request, "session"):
        return
    tenant = getattr(request, "tenant", None)
    request.session[SESSION_TENANT_KEY] = tenant.schema_name if tenant is not None else "public"


def _operator_console(request) -> bool:
    tenant = getattr(request, "tenant", None) if request is not None else None
    return tenant is not None and tenant.is_public


def audit_operator_login(sender, request, user, **kwargs):
    """Sign-ins to the operator console go to the platform's chain (tenant pages record their own)."""
    if not _operator_console(request):
        return
    from dataclasses import replace

    from tenants.auditing import audit

    actor = replace(audit.actor_from_request(request), actor_id=user.pk, actor_email=user.email,
                    role="operator" if user.is_staff else "", auth_method="session")
    audit.record("auth.login", tenant=None, actor=actor, details={"site": "operator console"})


def audit_operator_login_failed(sender, credentials, request=None, **kwargs):
    if not _operator_console(request):
        return
    from tenants.auditing import audit

    email = str((credentials or {}).get("username", ""))[:254]
    reason = "locked out" if getattr(request, "axes_locked_out", False) else "bad credentials"
    audit.record("auth.login_failed", tenant=None, outcome="denied",
                 actor=audit.actor_from_request(request),
                 details={"email": email, "reason": reason, "site": "operator console"})
