"""Account security: two-factor sign-in for oneself, the workspace's security settings."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from tenants.accounts import two_factor
from tenants.accounts.access import ADMIN_ROLES
from tenants.forms import NotificationSettingsForm, SecuritySettingsForm, TwoFactorCodeForm
from tenants.views.accounts import safe_next
from tenants.web.pages import PAGE_ERRORS, form_errors_from, member_page


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
        return render(request, "tenants/two_factor.html", {
            "enabled": True, "form": form, "required": required,
            "codes_left": two_factor.recovery_codes_left(request.user),
        }, status=400 if request.method == "POST" else 200)
    pending = two_factor.totp_device_start(user=request.user)
    if request.method == "POST" and form.is_valid():
        codes = two_factor.totp_device_confirm(request=request, device=pending, code=form.cleaned_data["code"])
        if codes is not None:
            messages.success(request, "Two-factor sign-in is on. You will be asked for a code "
                                      "each time you sign in.")
            # Shown in this answer only (never stored in the clear, never shown again).
            return _recovery_codes_page(request, codes)
        form.add_error("code", "That code is not valid. Check the time on your phone and try the "
                               "code your app shows now.")
    return render(request, "tenants/two_factor.html", {
        "enabled": False, "form": form, "required": required, "qr": two_factor.qr_svg(pending),
        "secret": two_factor.manual_secret(pending), "next": request.GET.get("next", ""),
    }, status=400 if request.method == "POST" else 200)


@member_page()
def recovery_codes(request):
    """How many recovery codes are left, and new ones for old (needs a current code)."""
    if two_factor.confirmed_device(request.user) is None:
        return redirect("two_factor")
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = two_factor.recovery_codes_regenerate(request=request, user=request.user,
                                                         code=form.cleaned_data["code"])
        except PAGE_ERRORS as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, "New recovery codes made; the old ones no longer work.")
            return _recovery_codes_page(request, codes)
    return render(request, "tenants/recovery_codes.html", {
        "form": form, "codes_left": two_factor.recovery_codes_left(request.user),
        "codes_total": two_factor.RECOVERY_CODES,
    }, status=400 if request.method == "POST" else 200)


def _recovery_codes_page(request, codes: list[str]):
    response = render(request, "tenants/recovery_codes.html", {
        "codes": codes, "next": safe_next(request), "codes_total": two_factor.RECOVERY_CODES,
    })
    response["Cache-Control"] = "no-store"
    return response


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
def notification_settings(request):
    """The person's own e-mail preferences."""
    from tenants.services import user_notifications_set

    user = request.user  # pages are served to sessions only: the account itself, no reload needed
    # An unticked box sends nothing at all: the form is bound on any POST, empty or not.
    form = NotificationSettingsForm(request.POST if request.method == "POST" else None,
                                    initial={"notify_job_emails": user.notify_job_emails})
    if request.method == "POST" and form.is_valid():
        user_notifications_set(user=user, notify_job_emails=form.cleaned_data["notify_job_emails"])
        messages.success(request, "Notification settings saved.")
        return redirect("notification_settings")
    return render(request, "tenants/notification_settings.html", {"form": form},
                  status=400 if request.method == "POST" else 200)
