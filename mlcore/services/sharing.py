"""What datasets and models share: who may be given a grant."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from tenants.models import Membership, Role, Tenant


def grantee(tenant: Tenant, email: str, permission: str, *, noun: str):
    """The member to grant `permission` to, or a ValidationError saying why not (400).

    Auditors never see data; viewers hold "view" at most (docs/api.md).
    """
    user = get_user_model().objects.filter(email__iexact=(email or "").strip()).first()
    membership = Membership.objects.filter(user=user, tenant=tenant).first() if user else None
    if membership is None:
        raise ValidationError({"email": f"{email} is not a member of this workspace."})
    if membership.role == Role.AUDITOR:
        raise ValidationError({"email": f"{email} is an auditor; auditors never see {noun}."})
    if membership.role == Role.VIEWER and permission != "view":
        raise ValidationError({"permission": f"{email} is a viewer and can hold 'view' at most."})
    return user
