"""Two-factor sign-in with a TOTP authenticator app (django-otp), optional for everyone and
required of a tenant's admins when the tenant says so (Tenant.require_admin_2fa).

Sign-in with a confirmed device takes two steps: the password (tenants.views.accounts.login_view),
then the code (tenants.views.accounts.login_two_factor); only then is the session logged in. An admin
of a tenant that requires two factors and who has no device is logged in after the password but kept
on the enrolment page by tenants.web.middleware.TwoFactorMiddleware until a device is confirmed.
"""

from __future__ import annotations

import base64
import time

import qrcode
import qrcode.image.svg
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.accounts import access
from tenants.auditing import audit
from tenants.models import Role, Tenant

PENDING_KEY = "portal_2fa_pending"
PENDING_SECONDS = 300
DEVICE_NAME = "authenticator app"


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).first()


def required_for(*, tenant: Tenant, role: str) -> bool:
    return bool(tenant.require_admin_2fa) and role == Role.ADMIN


def session_verified(request) -> bool:
    """This session passed a code of one of the user's confirmed devices."""
    device_id = request.session.get(DEVICE_ID_SESSION_KEY, "")
    pk = str(device_id).rsplit("/", 1)[-1]
    return pk.isdigit() and TOTPDevice.objects.filter(pk=int(pk), user_id=request.user.pk,
                                                      confirmed=True).exists()


# --- enrolment ----------------------------------------------------------------------------------
def totp_device_start(*, user) -> TOTPDevice:
    """The unconfirmed device being enrolled (a fresh secret unless one is waiting already)."""
    device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).first()
    if device is None:
        device = TOTPDevice(user=user, name=DEVICE_NAME, confirmed=False)
        device.full_clean()
        device.save()
    return device


def totp_device_confirm(*, request, device: TOTPDevice, code: str) -> bool:
    """A correct code confirms the device and marks this session as verified by it."""
    if device.confirmed or not device.verify_token(code):
        audit.record("auth.2fa_enable", tenant=request.tenant, outcome="failed", object_type="user",
                     object_id=device.user_id, details={"reason": "wrong code"})
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit.record("auth.2fa_enable", tenant=request.tenant, object_type="user",
                     object_id=device.user_id, details={})
    otp_login(request, device)
    return True


def totp_device_remove(*, request, user, code: str) -> None:
    """Turn two-factor sign-in off; needs a current code, and is refused where it is required."""
    device = confirmed_device(user)
    if device is None:
        raise ValidationError("Two-factor sign-in is not on.")
    membership = request.membership
    if required_for(tenant=request.tenant, role=membership.role):
        raise ValidationError(f"{request.tenant.name} requires two-factor sign-in for admins.")
    if not device.verify_token(code):
        raise ValidationError("That code is not valid; try the current one.")
    TOTPDevice.objects.filter(user_id=user.pk).delete()
    audit.record("auth.2fa_disable", tenant=request.tenant, object_type="user", object_id=user.pk)


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an SVG QR code, rendered here (no third-party service, no script)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    return image.to_string(encoding="unicode")


def manual_secret(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for typing into an app."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


# --- the second sign-in step --------------------------------------------------------------------
def pending_begin(request, user, next_url: str) -> None:
    """After a correct password: remember who is half signed-in (not logged in yet)."""
    request.session.cycle_key()
    request.session[PENDING_KEY] = {"user": user.pk, "next": next_url, "at": int(time.time()),
                                    "tenant": request.tenant.schema_name}


def pending_user(request):
    """(user, next_url) of a password step less than five minutes old on this tenant, else None."""
    from tenants.models import User

    data = request.session.get(PENDING_KEY)
    if not isinstance(data, dict) or data.get("tenant") != request.tenant.schema_name:
        return None
    if time.time() - data.get("at", 0) > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None
    user = User.objects.filter(pk=data.get("user"), is_active=True).first()
    return (user, data.get("next") or "") if user else None


def pending_clear(request) -> None:
    request.session.pop(PENDING_KEY, None)


# --- the tenant's policy ------------------------------------------------------------------------
def tenant_security_set(*, tenant: Tenant, require_admin_2fa: bool, actor) -> Tenant:
    if tenant.require_admin_2fa == require_admin_2fa:
        return tenant
    tenant.require_admin_2fa = require_admin_2fa
    tenant.save(update_fields=["require_admin_2fa"])
    access.forget_tenant_hosts()
    audit.record("tenant.settings_change", tenant=tenant, object_type="tenant", object_id=tenant.id,
                 details={"require_admin_2fa": require_admin_2fa})
    return tenant
