"""Permission-checked reads of a tenant's schema.

One access function per resource (``get_dataset_for_user``...): it holds the role and guardian
checks and answers 404 for what the user may not see — the same 404 as for a missing row — and
PermissionDenied (403) when the user may see the object but not do this to it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from tenants.access import DATA_ROLES, WRITER_ROLES, MembershipInfo, require_role
from tenants.models import Role

from .models import (
    Dataset,
    DatasetUserObjectPermission,
    Job,
    MLModel,
    MLModelUserObjectPermission,
    ModelPermission,
    ModelVersion,
    SharePermission,
)

VIEW, EDIT, DELETE, SHARE = "view", "edit", "delete", "share"
ALL_ACTIONS = frozenset({VIEW, EDIT, DELETE, SHARE})
_NEEDS_MESSAGES = {
    EDIT: "You can view this dataset but not change it.",
    DELETE: "Only the owner or an admin can delete this dataset.",
    SHARE: "Only the owner or an admin can share this dataset.",
}


def _granted(codename: str, user_id: int):
    return DatasetUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), user_id=user_id, permission__codename=codename
    )


def dataset_list(*, membership: MembershipInfo, user_id: int) -> QuerySet[Dataset]:
    """Datasets this member may view: admins all; others their own and what is shared with them."""
    require_role(membership, DATA_ROLES)
    rows = Dataset.objects.select_related("owner")
    if membership.role == Role.ADMIN:
        return rows
    visible = (Q(everyone_permission__in=[SharePermission.VIEW, SharePermission.EDIT])
               | Q(Exists(_granted("view_dataset", user_id))))
    if membership.role in WRITER_ROLES:
        visible |= Q(owner_id=user_id)
    return rows.filter(visible)


def dataset_actions(*, membership: MembershipInfo, user_id: int, dataset: Dataset) -> frozenset[str]:
    """What this member may do to this dataset: a subset of view, edit, delete, share."""
    role = membership.role
    if role == Role.ADMIN:
        return ALL_ACTIONS
    if role not in DATA_ROLES:
        return frozenset()
    if role in WRITER_ROLES and dataset.owner_id == user_id:
        return ALL_ACTIONS
    codenames = set(
        DatasetUserObjectPermission.objects.filter(content_object=dataset, user_id=user_id)
        .values_list("permission__codename", flat=True)
    )
    everyone = dataset.everyone_permission
    actions: set[str] = set()
    if "view_dataset" in codenames or everyone in (SharePermission.VIEW, SharePermission.EDIT):
        actions.add(VIEW)
    # Viewers hold "view" at most, whatever was granted before a role change.
    if role in WRITER_ROLES and ("change_dataset" in codenames or everyone == SharePermission.EDIT):
        actions |= {VIEW, EDIT}
    return frozenset(actions)


def get_dataset_for_user(*, membership: MembershipInfo, user_id: int, dataset_id, need: str = VIEW) -> Dataset:
    require_role(membership, DATA_ROLES)
    try:
        dataset = Dataset.objects.select_related("owner").get(pk=int(dataset_id))
    except (Dataset.DoesNotExist, TypeError, ValueError):
        raise Http404
    actions = dataset_actions(membership=membership, user_id=user_id, dataset=dataset)
    if VIEW not in actions:
        raise Http404
    if need not in actions:
        raise PermissionDenied(_NEEDS_MESSAGES.get(need, "You may not do this."))
    dataset.allowed_actions = actions
    return dataset


def dataset_grants(*, dataset: Dataset) -> list[dict]:
    """[{"email", "permission"}] per person, plus {"everyone": true, ...} for a workspace share."""
    by_user: dict[str, set[str]] = {}
    rows = (DatasetUserObjectPermission.objects.filter(content_object=dataset)
            .select_related("user", "permission").order_by("user__email"))
    for row in rows:
        by_user.setdefault(row.user.email, set()).add(row.permission.codename)
    grants = [{"email": email, "permission": EDIT if "change_dataset" in codes else VIEW}
              for email, codes in by_user.items()]
    if dataset.everyone_permission:
        grants.append({"everyone": True, "permission": dataset.everyone_permission})
    return grants


# --- models ------------------------------------------------------------------------------------
USE = "use"
_MODEL_NEEDS_MESSAGES = {
    USE: "You can view this model but not use it for predictions.",
    EDIT: "You can use this model but not change it.",
    DELETE: "Only the owner or an admin can delete this model.",
    SHARE: "Only the owner or an admin can share this model.",
}
MODEL_ACTIONS = frozenset({VIEW, USE, EDIT, DELETE, SHARE})


def _model_granted(codename: str, user_id: int):
    return MLModelUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), user_id=user_id, permission__codename=codename)


def model_list(*, membership: MembershipInfo, user_id: int) -> QuerySet[MLModel]:
    require_role(membership, DATA_ROLES)
    rows = MLModel.objects.select_related("owner", "production_version")
    if membership.role == Role.ADMIN:
        return rows
    visible = (Q(everyone_permission__in=[ModelPermission.VIEW, ModelPermission.USE, ModelPermission.EDIT])
               | Q(Exists(_model_granted("view_mlmodel", user_id))))
    if membership.role in WRITER_ROLES:
        visible |= Q(owner_id=user_id)
    return rows.filter(visible)


def model_actions(*, membership: MembershipInfo, user_id: int, model: MLModel) -> frozenset[str]:
    role = membership.role
    if role == Role.ADMIN:
        return MODEL_ACTIONS
    if role not in DATA_ROLES:
        return frozenset()
    if role in WRITER_ROLES and model.owner_id == user_id:
        return MODEL_ACTIONS
    codes = set(MLModelUserObjectPermission.objects.filter(content_object=model, user_id=user_id)
                .values_list("permission__codename", flat=True))
    everyone = model.everyone_permission
    actions: set[str] = set()
    if codes or everyone:
        actions.add(VIEW)
    # Viewers see metrics only: no predictions, no changes (the roles table in docs/api.md).
    if role in WRITER_ROLES:
        if "use_mlmodel" in codes or everyone in (ModelPermission.USE, ModelPermission.EDIT):
            actions.add(USE)
        if "change_mlmodel" in codes or everyone == ModelPermission.EDIT:
            actions |= {USE, EDIT}
    return frozenset(actions)


def get_model_for_user(*, membership: MembershipInfo, user_id: int, model_id, need: str = VIEW) -> MLModel:
    require_role(membership, DATA_ROLES)
    try:
        model = MLModel.objects.select_related("owner", "production_version").get(pk=int(model_id))
    except (MLModel.DoesNotExist, TypeError, ValueError):
        raise Http404
    actions = model_actions(membership=membership, user_id=user_id, model=model)
    if VIEW not in actions:
        raise Http404
    if need not in actions:
        raise PermissionDenied(_MODEL_NEEDS_MESSAGES.get(need, "You may not do this."))
    model.allowed_actions = actions
    return model


def get_model_version_for_user(*, membership: MembershipInfo, user_id: int, version_id,
                               need: str = VIEW) -> ModelVersion:
    require_role(membership, DATA_ROLES)
    try:
        version = ModelVersion.objects.select_related("model").get(pk=int(version_id))
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise Http404
    # The version's rights are its model's rights.
    model = get_model_for_user(membership=membership, user_id=user_id, model_id=version.model_id, need=need)
    version.model = model
    return version


def model_grants(*, model: MLModel) -> list[dict]:
    by_user: dict[str, set[str]] = {}
    rows = (MLModelUserObjectPermission.objects.filter(content_object=model)
            .select_related("user", "permission").order_by("user__email"))
    for row in rows:
        by_user.setdefault(row.user.email, set()).add(row.permission.codename)
    grants = []
    for email, codes in by_user.items():
        level = EDIT if "change_mlmodel" in codes else USE if "use_mlmodel" in codes else VIEW
        grants.append({"email": email, "permission": level})
    if model.everyone_permission:
        grants.append({"everyone": True, "permission": model.everyone_permission})
    return grants


# --- jobs --------------------------------------------------------------------------------------
def job_list(*, membership: MembershipInfo, user_id: int) -> QuerySet[Job]:
    """Admins see every job; members their own. Viewers run no jobs (403)."""
    require_role(membership, WRITER_ROLES)
    rows = Job.objects.select_related("created_by", "dataset")
    if membership.role == Role.ADMIN:
        return rows
    return rows.filter(created_by_id=user_id)


def get_job_for_user(*, membership: MembershipInfo, user_id: int, job_id) -> Job:
    rows = job_list(membership=membership, user_id=user_id)
    try:
        return rows.get(pk=int(job_id))
    except (Job.DoesNotExist, TypeError, ValueError):
        raise Http404
