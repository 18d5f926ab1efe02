"""Sharing a dataset or a model: one grant and one revoke for both kinds (mlcore.selectors.ShareKind)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from tenants.auditing import audit
from tenants.errors import ServiceError
from tenants.models import Role, Tenant
from tenants.selectors import member_emails, membership_for_email

from .. import serving
from ..models import MLModel
from ..selectors import VIEW, ShareKind, share_kind


def grantable_emails(*, tenant: Tenant, obj) -> list[str]:
    """Who the share page offers: every member but auditors and the owner."""
    return member_emails(tenant=tenant, exclude_roles=(Role.AUDITOR,), exclude_user_id=obj.owner_id)


def _grantee(tenant: Tenant, kind: ShareKind, email: str, permission: str):
    """The member to grant `permission` to, or a ValidationError saying why not (400).

    Auditors never see data; viewers hold "view" at most (docs/api.md).
    """
    membership = membership_for_email(tenant=tenant, email=email)
    if membership is None:
        raise ValidationError({"email": f"{email} is not a member of this workspace."})
    if membership.role == Role.AUDITOR:
        raise ValidationError({"email": f"{email} is an auditor; auditors never see {kind.auditors_never_see}."})
    if membership.role == Role.VIEWER and permission != VIEW:
        raise ValidationError({"permission": f"{email} is a viewer and can hold 'view' at most."})
    return membership.user


def _one_target(email: str | None, everyone: bool) -> None:
    if everyone == bool(email):
        raise ValidationError({"email": "Give either an e-mail or everyone: true."})


def object_share(*, tenant: Tenant, obj, permission: str, email: str | None = None,
                 everyone: bool = False) -> None:
    """Grant `permission` (a level of the object's ladder) to one member or the whole workspace."""
    kind = share_kind(obj)
    if permission not in kind.levels:
        names = [f"'{level}'" for level in kind.levels]
        raise ValidationError({"permission": f"Permission must be {', '.join(names[:-1])} or {names[-1]}."})
    _one_target(email, everyone)
    with transaction.atomic():
        if everyone:
            obj.everyone_permission = permission
            obj.save(update_fields=["everyone_permission", "updated_at"])
            target = {"everyone": True}
        else:
            user = _grantee(tenant, kind, email, permission)
            if user.pk == obj.owner_id:
                raise ServiceError("The owner already has every permission.", field="email")
            held = kind.levels[: kind.levels.index(permission) + 1]
            for level, codename in kind.codenames.items():
                (assign_perm if level in held else remove_perm)(codename, user, obj)
            target = {"email": user.email}
        audit.record(f"{kind.name}.share", tenant=tenant, object_type=kind.name, object_id=obj.id,
                     details={**target, "permission": permission})
    _forget_cached(tenant, obj)


def object_unshare(*, tenant: Tenant, obj, email: str | None = None, everyone: bool = False) -> None:
    """Remove one member's grant or the workspace share."""
    kind = share_kind(obj)
    _one_target(email, everyone)
    with transaction.atomic():
        if everyone:
            obj.everyone_permission = ""
            obj.save(update_fields=["everyone_permission", "updated_at"])
            target = {"everyone": True}
        else:
            deleted, _ = kind.grants.objects.filter(content_object=obj, user__email__iexact=email.strip()).delete()
            if not deleted:
                raise ValidationError({"email": f"{email} has no grant on this {kind.name}."})
            target = {"email": email.strip().lower()}
        audit.record(f"{kind.name}.unshare", tenant=tenant, object_type=kind.name, object_id=obj.id,
                     details=target)
    _forget_cached(tenant, obj)


def _forget_cached(tenant: Tenant, obj) -> None:
    # Online predictions cache a model with who may use it; a share change must apply at once.
    if isinstance(obj, MLModel):
        serving.forget_model(tenant, obj.id)
