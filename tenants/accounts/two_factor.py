"""Two-factor sign-in with a TOTP authenticator app (django-otp), optional for everyone and
required of a tenant's admins when the tenant says so (Tenant.require_admin_2fa).

Sign-in with a confirmed device takes two steps: the password (tenants.views.accounts.login_view),
then the code (tenants.views.accounts.login_two_factor); only then is the session logged in. An admin
of a tenant that requires two factors and who has no device is logged in after the password but kept
on the enrolment page by tenants.web.middleware.TwoFactorMiddleware until a device is confirmed.

Turning it on also gives the user ten single-use recovery codes (shown once), any of which stands
in for the app at the code step when the phone is lost; they can be replaced with a current code.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
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
from tenants.limits import gate
from tenants.models import RecoveryCode, Role, Tenant

PENDING_KEY = "portal_2fa_pending"
PENDING_SECONDS = 300
DEVICE_NAME = "authenticator app"
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
RECOVERY_LENGTH = 16  # 16 characters of 31: about 79 random bits


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


def totp_device_confirm(*, request, device: TOTPDevice, code: str) -> list[str] | None:
    """A correct code confirms the device, marks this session as verified by it and returns the
    user's new recovery codes (to be shown once); a wrong one returns None."""
    if device.confirmed or not device.verify_token(code):
        audit.record("auth.2fa_enable", tenant=request.tenant, outcome="failed", object_type="user",
                     object_id=device.user_id, details={"reason": "wrong code"})
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _recovery_codes_replace(device.user_id)
        audit.record("auth.2fa_enable", tenant=request.tenant, object_type="user",
                     object_id=device.user_id, details={"recovery_codes": len(codes)})
    otp_login(request, device)
    return codes


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
    with transaction.atomic():
        TOTPDevice.objects.filter(user_id=user.pk).delete()
        RecoveryCode.objects.filter(user_id=user.pk).delete()
    audit.record("auth.2fa_disable", tenant=request.tenant, object_type="user", object_id=user.pk)


# --- recovery codes -----------------------------------------------------------------------------
def _recovery_digest(code: str) -> str:
    return hashlib.sha256(recovery_code_normalise(code).encode()).hexdigest()


def recovery_code_normalise(code: str) -> str:
    """What the user typed, without the dashes, spaces and capitals the display adds."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def recovery_code_format(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def looks_like_recovery_code(code: str) -> bool:
    return len(recovery_code_normalise(code)) == RECOVERY_LENGTH


def _recovery_codes_replace(user_id: int) -> list[str]:
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
             for _ in range(RECOVERY_CODES)]
    RecoveryCode.objects.filter(user_id=user_id).delete()
    RecoveryCode.objects.bulk_create(RecoveryCode(user_id=user_id, digest=_recovery_digest(c)) for c in codes)
    return [recovery_code_format(c) for c in codes]


def recovery_codes_left(user) -> int:
    return RecoveryCode.objects.filter(user_id=user.pk).count()


def recovery_codes_regenerate(*, request, user, code: str) -> list[str]:
    """New codes for old (all old ones stop working); needs a current code from the app."""
    device = confirmed_device(user)
    if device is None:
        raise ValidationError("Turn on two-factor sign-in first.")
    if not device.verify_token(code):
        raise ValidationError("That code is not valid; try the code your app shows now.")
    with transaction.atomic():
        codes = _recovery_codes_replace(user.pk)
    audit.record("auth.2fa_recovery_codes", tenant=request.tenant, object_type="user",
                 object_id=user.pk, details={"recovery_codes": len(codes)})
    return codes


def recovery_code_use(user, code: str) -> int | None:
    """Spend one recovery code: the number left afterwards, or None if it is not one of the user's.

    The DELETE is the check, so two sign-ins racing with one code cannot both pass.
    """
    deleted, _ = RecoveryCode.objects.filter(user_id=user.pk, digest=_recovery_digest(code)).delete()
    return recovery_codes_left(user) if deleted else None


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
    # Other processes hold the tenant in their host cache: the epoch makes each re-read the policy
    # on its next request (quotas.refresh_limits), so sessions already open are held to it at once.
    gate.bump_tenant_epoch(tenant.id)
    audit.record("tenant.settings_change", tenant=tenant, object_type="tenant", object_id=tenant.id,
                 details={"require_admin_2fa": require_admin_2fa})
    return tenant
