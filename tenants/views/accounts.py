"""Signing in (password, then a second factor when set up), signing out, passwords."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tenants.accounts import access, handoff, two_factor
from tenants.accounts.hosts import tenant_url
from tenants.auditing import audit
from tenants.forms import LoginForm, SignInCodeForm, TenantPasswordResetForm
from tenants.web.pages import member_page


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
            next_url = safe_next(request)
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


def safe_next(request, default: str = "home") -> str:
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
        user, next_url = request.user, safe_next(request)
    else:
        pending = two_factor.pending_user(request)
        if pending is None:
            messages.info(request, "Sign in with your e-mail and password first.")
            return redirect("login")
        user, next_url = pending
    device = two_factor.confirmed_device(user)
    if device is None:
        return redirect("login")
    form = SignInCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        if code.isdigit():
            if device.verify_token(code):
                return _second_factor_passed(request, user, device, next_url)
            form.add_error("code", "That code is not valid. Enter the code your app shows now.")
        else:
            left = two_factor.recovery_code_use(user, code)
            if left is not None:
                messages.warning(request, f"You signed in with a recovery code; {left} "
                                          f"{'is' if left == 1 else 'are'} left. Each works once: make "
                                          "new ones under Two-factor sign-in if you are running out.")
                return _second_factor_passed(request, user, device, next_url,
                                             second_factor="recovery_code", codes_left=left)
            form.add_error("code", "That recovery code is not valid or was used already.")
        audit.record("auth.login_failed", tenant=request.tenant, outcome="denied",
                     actor=audit.actor_for_user(user, auth_method="session"),
                     details={"email": user.email, "reason": "wrong second-factor code"})
    return render(request, "tenants/login_two_factor.html", {"form": form},
                  status=400 if request.method == "POST" else 200)


def _second_factor_passed(request, user, device, next_url: str, *, second_factor: str = "totp",
                          codes_left: int | None = None):
    from django_otp import login as otp_login

    membership = access.membership_for(user_id=user.pk, tenant=request.tenant)
    if membership is None:
        return redirect("login")
    details = {"second_factor": second_factor}
    if codes_left is not None:
        details["recovery_codes_left"] = codes_left
    if request.membership is None:
        two_factor.pending_clear(request)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        audit.record("auth.login", tenant=request.tenant,
                     actor=audit.actor_for_user(user, role=membership.role, auth_method="session"),
                     details=details)
    elif codes_left is not None:  # a signed-in session passing its code step: still note the spend
        audit.record("auth.2fa_recovery_code_used", tenant=request.tenant, object_type="user",
                     object_id=user.pk, details=details)
    # A recovery code stands in for the app: the session counts as verified by the user's device.
    otp_login(request, device)
    return HttpResponseRedirect(next_url)


# --- switching workspace ------------------------------------------------------------------------
@require_POST
@member_page()
def workspace_switch(request, slug: str):
    """From the menu: open `slug`'s workspace signed in, without the password again
    (tenants.accounts.handoff)."""
    target = handoff.handoff_target(user=request.user, slug=slug)
    if target is None or target.id == request.tenant.id:
        raise Http404
    ticket = handoff.handoff_issue(user=request.user, source=request.tenant, target=target,
                                   second_factor_passed=two_factor.session_verified(request))
    audit.record("auth.workspace_switch", tenant=request.tenant, object_type="tenant",
                 object_id=target.slug, details={"to": target.slug})
    return HttpResponseRedirect(tenant_url(target, f"{reverse('login_handoff')}?ticket={ticket}"))


def login_handoff(request):
    """The target end of a workspace switch: spend the ticket, open a session on this host."""
    passed = handoff.handoff_redeem(ticket=request.GET.get("ticket", ""), tenant=request.tenant)
    if passed is None:
        messages.info(request, "That workspace link has expired or was used already: sign in here.")
        return redirect("login")
    user = passed.user
    if request.membership is not None and request.user.pk == user.pk:
        return redirect("home")  # already signed in here
    if request.user.is_authenticated:
        logout(request)  # someone else's session on this host: never mix two people
    device = two_factor.confirmed_device(user)
    if device is not None and not passed.second_factor_passed:
        two_factor.pending_begin(request, user, reverse("home"))
        return redirect("login_two_factor")
    membership = passed.membership
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if device is not None:
        from django_otp import login as otp_login

        otp_login(request, device)  # the second factor was given on the source host
    audit.record("auth.login", tenant=request.tenant,
                 actor=audit.actor_for_user(user, role=membership.role, auth_method="session"),
                 details={"via": "workspace switch", "from": passed.source_slug,
                          **({"second_factor": "carried"} if device is not None else {})})
    return redirect("home")


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
