"""HTML pages of the public site and of every tenant host (accounts and members)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe
from drf_spectacular.views import SpectacularSwaggerSplitView

from .. import access, audit, services, two_factor
from ..access import ADMIN_ROLES, AUDIT_ROLES
from ..forms import (
    AuditFilterForm,
    LoginForm,
    MemberAddForm,
    RoleForm,
    SecuritySettingsForm,
    TenantPasswordResetForm,
    TokenCreateForm,
    TwoFactorCodeForm,
    WorkspaceForm,
)
from ..hosts import tenant_url
from ..models import Membership, Role, Tenant
from ..pages import PAGE_ERRORS, form_errors_from, member_page, page_error
from ..selectors import (
    admin_count,
    api_token_list,
    audit_event_list,
    audit_export_recent,
    audit_verification_last,
    audit_verification_latest_per_chain,
    get_api_token_for_revoke,
    get_member_for_admin,
    membership_list,
    tenant_api_token_list,
)


# --- public site --------------------------------------------------------------------------------
def landing(request):
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        slug = form.cleaned_data["slug"].lower()
        tenant = Tenant.objects.filter(slug=slug, is_active=True).exclude(schema_name="public").first()
        if tenant is not None:
            return HttpResponseRedirect(tenant_url(tenant, "/login/"))
        form.add_error("slug", f"There is no workspace called '{slug}'. Check the spelling or ask "
                               "your administrator for your workspace address.")
    return render(request, "public/landing.html", {"form": form})


# --- sign in and out ----------------------------------------------------------------------------
def login_view(request):
    if request.membership is not None:
        return redirect("home")
    initial = {"email": request.GET.get("email", "")}
    form = LoginForm(request, data=request.POST or None, initial=initial)
    if request.method == "POST" and not form.is_valid():
        # django-axes flags the request when this (e-mail, IP) pair is locked out; AxesMiddleware
        # then answers with locked_out() below.
        reason = "locked out" if getattr(request, "axes_locked_out", False) else "bad credentials"
        audit.record("auth.login_failed", tenant=request.tenant, outcome="denied",
                     details={"email": request.POST.get("email", "")[:254], "reason": reason})
    elif request.method == "POST":
        user = form.user
        membership = access.membership_for(user_id=user.pk, tenant=request.tenant)
        if membership is None:
            form.add_error(None, LoginForm.error_messages["no_access"])
            audit.record("auth.login_failed", tenant=request.tenant, outcome="denied",
                         actor=audit.actor_for_user(user, auth_method="session"),
                         details={"email": user.email, "reason": "not a member"})
        else:
            next_url = _safe_next(request)
            if two_factor.confirmed_device(user) is not None:
                # Not logged in yet: the code comes first (login_two_factor).
                two_factor.pending_begin(request, user, next_url)
                return redirect("login_two_factor")
            login(request, user)
            audit.record("auth.login", tenant=request.tenant,
                         actor=audit.actor_for_user(user, role=membership.role, auth_method="session"),
                         details={})
            return HttpResponseRedirect(next_url)
    status = 200 if request.method == "GET" else 400
    return render(request, "tenants/login.html", {"form": form, "next": request.GET.get("next", "")},
                  status=status)


def _safe_next(request, default: str = "home") -> str:
    next_url = request.POST.get("next") or request.GET.get("next")
    if not next_url or not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return reverse(default)
    return next_url


def locked_out(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: too many failures for this e-mail from this address."""
    cooloff = settings.AXES_COOLOFF_TIME
    minutes = max(1, int(cooloff.total_seconds() // 60))
    message = (f"Too many failed sign-in attempts for this account from your network address. "
               f"Try again in {minutes} minutes, or reset your password.")
    tenant = getattr(request, "tenant", None)
    if tenant is None or tenant.is_public:
        response = render(request, "public/locked_out.html", {"message": message}, status=429)
    else:
        form = LoginForm(request, initial={"email": request.POST.get("email", "")})
        response = render(request, "tenants/login.html", {"form": form, "locked": message,
                                                          "next": request.GET.get("next", "")},
                          status=429)
    response["Retry-After"] = str(int(cooloff.total_seconds()))
    return response


def login_two_factor(request):
    """The second sign-in step: a code from the authenticator app.

    Reached after a correct password (pending in the session, not logged in yet), or by a logged-in
    admin whose session still needs a code (sent here by TwoFactorMiddleware).
    """
    if request.membership is not None:
        user, next_url = request.user, _safe_next(request)
    else:
        pending = two_factor.pending_user(request)
        if pending is None:
            messages.info(request, "Sign in with your e-mail and password first.")
            return redirect("login")
        user, next_url = pending
    device = two_factor.confirmed_device(user)
    if device is None:
        return redirect("login")
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            return _second_factor_passed(request, user, device, next_url)
        form.add_error("code", "That code is not valid. Enter the code your app shows now.")
        audit.record("auth.login_failed", tenant=request.tenant, outcome="denied",
                     actor=audit.actor_for_user(user, auth_method="session"),
                     details={"email": user.email, "reason": "wrong second-factor code"})
    return render(request, "tenants/login_two_factor.html", {"form": form},
                  status=400 if request.method == "POST" else 200)


def _second_factor_passed(request, user, device, next_url: str):
    from django_otp import login as otp_login

    membership = access.membership_for(user_id=user.pk, tenant=request.tenant)
    if membership is None:
        return redirect("login")
    if request.membership is None:
        two_factor.pending_clear(request)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        audit.record("auth.login", tenant=request.tenant,
                     actor=audit.actor_for_user(user, role=membership.role, auth_method="session"),
                     details={"second_factor": "totp"})
    otp_login(request, device)
    return HttpResponseRedirect(next_url)


@require_POST
def logout_view(request):
    if request.user.is_authenticated and getattr(request, "membership", None) is not None:
        audit.record("auth.logout", tenant=request.tenant)
    logout(request)
    messages.info(request, "You have been signed out.")
    return redirect("login")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "tenants/password_change.html"
    success_url = reverse_lazy("home")

    def dispatch(self, request, *args, **kwargs):
        return member_page()(super().dispatch)(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password has been changed.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "tenants/password_reset.html"
    email_template_name = "tenants/email/password_reset.txt"
    subject_template_name = "tenants/email/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")
    form_class = TenantPasswordResetForm

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        form.tenant = self.request.tenant
        return form


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "tenants/password_reset_done.html"


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Both the "forgot password" link and the one-time invitation link land here."""

    template_name = "tenants/set_password.html"
    success_url = reverse_lazy("password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "tenants/password_reset_complete.html"


# --- members (tenant admins) --------------------------------------------------------------------
@member_page(roles=ADMIN_ROLES)
def members(request):
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            added = services.membership_add(tenant=request.tenant, email=form.cleaned_data["email"],
                                            role=form.cleaned_data["role"], actor=request.user)
        except PAGE_ERRORS as exc:
            form_errors_from(form, exc)
        else:
            email = added.membership.user.email
            if added.set_password_url:
                messages.success(request, f"Invited {email}. They were e-mailed this one-time link "
                                          f"to choose a password: {added.set_password_url}")
            else:
                messages.success(request, f"Added {email} as {added.membership.role}.")
            return redirect("members")
    rows = membership_list(tenant=request.tenant)
    return render(request, "tenants/members.html", {
        "form": form, "rows": rows, "roles": Role.choices, "admins": admin_count(tenant=request.tenant),
    }, status=400 if request.method == "POST" else 200)


@require_POST
@member_page(roles=ADMIN_ROLES)
def member_role(request, member_id: int):
    member = get_member_for_admin(actor=request.membership, tenant=request.tenant, member_id=member_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the listed roles.")
        return redirect("members")
    try:
        services.membership_update(membership=member, role=form.cleaned_data["role"], actor=request.user)
    except PAGE_ERRORS as exc:
        messages.error(request, page_error(exc)[0])
    else:
        messages.success(request, f"{member.user.email} is now {member.role}.")
    return redirect("members")


@member_page(roles=ADMIN_ROLES)
def member_remove(request, member_id: int):
    member: Membership = get_member_for_admin(actor=request.membership, tenant=request.tenant,
                                              member_id=member_id)
    if request.method == "POST":
        try:
            services.membership_remove(membership=member, actor=request.user)
        except PAGE_ERRORS as exc:
            messages.error(request, page_error(exc)[0])
        else:
            messages.success(request, f"Removed {member.user.email} from {request.tenant.name}.")
        return redirect("members")
    return render(request, "tenants/member_remove.html", {"member": member})


# --- error pages --------------------------------------------------------------------------------
def page_not_found(request, exception=None):
    from ..middleware import not_found

    return not_found(request)


def permission_denied(request, exception=None):
    if request.path.startswith("/api/"):
        from ..problems import problem_response

        return problem_response(403, str(exception) or "Forbidden.")
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request):
    if request.path.startswith("/api/"):
        from ..problems import problem_response

        return problem_response(500, "Something went wrong on our side; it has been logged.")
    return render(request, "500.html", status=500)


# --- account security: two-factor sign-in and API tokens ----------------------------------------
@member_page()
def two_factor_setup(request):
    """Turn two-factor sign-in on (QR code and secret, then a code) or off."""
    required = two_factor.required_for(tenant=request.tenant, role=request.membership.role)
    form = TwoFactorCodeForm(request.POST or None)
    device = two_factor.confirmed_device(request.user)
    if device is not None:
        if request.method == "POST" and form.is_valid():
            try:
                two_factor.totp_device_remove(request=request, user=request.user,
                                              code=form.cleaned_data["code"])
            except PAGE_ERRORS as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, "Two-factor sign-in is off.")
                return redirect("two_factor")
        return render(request, "tenants/two_factor.html", {"enabled": True, "form": form,
                                                           "required": required},
                      status=400 if request.method == "POST" else 200)
    pending = two_factor.totp_device_start(user=request.user)
    if request.method == "POST" and form.is_valid():
        if two_factor.totp_device_confirm(request=request, device=pending, code=form.cleaned_data["code"]):
            messages.success(request, "Two-factor sign-in is on. You will be asked for a code "
                                      "each time you sign in.")
            return HttpResponseRedirect(_safe_next(request))
        form.add_error("code", "That code is not valid. Check the time on your phone and try the "
                               "code your app shows now.")
    return render(request, "tenants/two_factor.html", {
        "enabled": False, "form": form, "required": required, "qr": two_factor.qr_svg(pending),
        "secret": two_factor.manual_secret(pending), "next": request.GET.get("next", ""),
    }, status=400 if request.method == "POST" else 200)


@member_page(roles=ADMIN_ROLES)
def security_settings(request):
    form = SecuritySettingsForm(request.POST or None,
                                initial={"require_admin_2fa": request.tenant.require_admin_2fa})
    if request.method == "POST" and form.is_valid():
        two_factor.tenant_security_set(tenant=request.tenant, actor=request.user,
                                       require_admin_2fa=form.cleaned_data["require_admin_2fa"])
        messages.success(request, "Security settings saved.")
        return redirect("security_settings")
    return render(request, "tenants/security_settings.html", {"form": form},
                  status=400 if request.method == "POST" else 200)


@member_page()
def tokens(request):
    """Own API tokens (every role); admins also see and revoke everyone's in this workspace."""
    form = TokenCreateForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            token, secret = services.api_token_create(
                user=request.user, tenant=request.tenant, name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"], days=form.cleaned_data["expires_in_days"])
        except PAGE_ERRORS as exc:
            form_errors_from(form, exc)
        else:
            created, form = {"token": token, "secret": secret}, TokenCreateForm()
    is_admin = request.membership.role == Role.ADMIN
    response = render(request, "tenants/tokens.html", {
        "form": form, "created": created,
        "rows": api_token_list(user=request.user, tenant=request.tenant),
        "others": tenant_api_token_list(tenant=request.tenant).exclude(user=request.user)
        if is_admin else None,
    }, status=400 if request.method == "POST" and created is None else 200)
    response["Cache-Control"] = "no-store"  # the page may show a secret
    return response


@require_POST
@member_page()
def token_revoke(request, token_id: int):
    token = get_api_token_for_revoke(membership=request.membership, user=request.user,
                                     tenant=request.tenant, token_id=token_id)
    services.api_token_revoke(token=token, actor=request.user)
    messages.success(request, f"Revoked the token {token.name} ({token.prefix}…).")
    return redirect("tokens")


# --- audit trail (auditors and admins) ----------------------------------------------------------
AUDIT_PAGE_SIZE = 50


@require_safe
@member_page(roles=AUDIT_ROLES)
def audit_log(request):
    from django.core.paginator import Paginator

    form = AuditFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound and form.is_valid() else {}
    events = audit_event_list(tenant=request.tenant, filters=filters).order_by("-seq")
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "tenants/audit.html", {
        "form": form, "page": page, "query": query.urlencode(),
        "exports": audit_export_recent(tenant=request.tenant),
        "verification": audit_verification_last(tenant_id=request.tenant.id),
    }, status=400 if form.is_bound and not form.is_valid() else 200)


@require_POST
@member_page(roles=AUDIT_ROLES)
def audit_verify(request):
    from ..audit_chain import chains_verify

    result = chains_verify(tenant_ids=[request.tenant.id], trigger="manual",
                           actor_email=request.user.email)[0]
    audit.record("audit.verify", tenant=request.tenant, object_type="audit_chain",
                 object_id=request.tenant.id, outcome="allowed" if result.ok else "failed",
                 details={"entries": result.entries, "last_seq": result.last_seq,
                          "first_bad_seq": result.first_bad_seq, "reason": result.reason})
    if result.ok:
        messages.success(request, f"The audit trail is intact: {result.entries} entries, "
                                  f"up to #{result.last_seq}.")
    else:
        messages.error(request, f"The audit trail is broken at entry #{result.first_bad_seq}: "
                                f"{result.reason}.")
    return redirect("audit")


# --- operator console (public site, staff only) -------------------------------------------------
@staff_member_required
def ops_audit(request):
    """The last verification of every chain; "verify now" runs it again."""
    from ..audit_chain import chains_verify

    if request.method == "POST":
        results = chains_verify(trigger="manual", actor_email=request.user.email)
        broken = [r for r in results if not r.ok]
        if broken:
            messages.error(request, "Broken: " + "; ".join(r.describe() for r in broken))
        else:
            messages.success(request, f"All {len(results)} audit chains are intact.")
        return redirect("ops_audit")
    rows = audit_verification_latest_per_chain()
    from django.contrib import admin

    return render(request, "public/ops_audit.html", {
        **admin.site.each_context(request), "title": "Audit chains",
        "rows": rows, "broken": [r for r in rows if not r.ok],
    })


# --- API docs: Swagger UI from our static files, its start-up script a file too (CSP) -----------
class ApiDocsView(SpectacularSwaggerSplitView):
    template_name = "tenants/api_docs.html"
