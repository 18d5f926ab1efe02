"""Writes for training and the model registry: start a training job, promote, delete.

Sharing is mlcore.services.sharing (one path for datasets and models).
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from tenants.accounts.access import MembershipInfo
from tenants.auditing import audit
from tenants.errors import Conflict, ServiceError
from tenants.limits import quotas
from tenants.models import Tenant

from .. import jobs, serving, storage
from ..models import (
    Dataset,
    Job,
    MLModel,
    ModelVersion,
)
from ..selectors import EDIT, model_actions
from ..storage import MODELS
from . import events, monitoring
from .datasets import dataset_profile

logger = logging.getLogger(__name__)



class TrainingRefused(ServiceError):
    """What the dataset's profile already shows cannot work (422), with a plain-language reason."""

    status = 422
    code = "training-refused"


def training_job_start(*, tenant: Tenant, membership: MembershipInfo, user, dataset: Dataset,
                       model_name: str, spec: dict, propose_only: bool = False) -> Job:
    """Validate against the dataset's profile (no job for what cannot work), then queue the job.

    `propose_only` (a schedule's retraining): the new version waits for review; it never becomes
    the production version on its own, even of a model that has none."""
    from ..ml.spec import SpecError, validate_spec

    model_name = check_model_name(membership=membership, user=user, model_name=model_name)
    profile = dataset_profile(tenant=tenant, dataset=dataset)
    try:
        checked = validate_spec(spec, profile["columns"], dataset.rows)
    except SpecError as exc:
        raise TrainingRefused(str(exc), field=getattr(exc, "field", None))
    check_version_room(tenant)
    params = {"dataset": dataset.id, "dataset_name": dataset.name, "model_name": model_name,
              "spec": checked.to_dict(), **({"propose_only": True} if propose_only else {})}
    with transaction.atomic():
        job = jobs.job_submit(tenant=tenant, user=user, kind=Job.Kind.TRAINING, params=params,
                              dataset=dataset)
        audit.record("training.start", tenant=tenant, object_type="job", object_id=job.id,
                     details={"dataset": dataset.id, "dataset_version": dataset.version,
                              "model_name": model_name, "algorithm": checked.algorithm,
                              "target": checked.target, **({"propose_only": True} if propose_only else {})})
    return job


def check_model_name(*, membership: MembershipInfo, user, model_name: str) -> str:
    """The name a new version will be filed under, tidied; refused when taken by a model the
    member may not add versions to."""
    model_name = " ".join((model_name or "").split())
    if not model_name:
        raise ValidationError({"model_name": "Give the model a name."})
    if len(model_name) > 200:
        raise ValidationError({"model_name": "A model name has at most 200 characters."})
    existing = MLModel.objects.filter(name__iexact=model_name).first()
    if existing is not None and EDIT not in model_actions(membership=membership, user_id=user.pk, model=existing):
        raise Conflict(f"A model named '{model_name}' already exists and you cannot add versions to it; "
                       f"choose another name.", field="model_name")
    return model_name


def check_version_room(tenant: Tenant) -> None:
    limits = quotas.effective_limits(tenant)
    held = quotas.gauges(tenant)
    if held.model_versions >= limits["model_versions"]:
        raise quotas.QuotaExceeded(
            f"Your plan allows {limits['model_versions']} model versions and the workspace has "
            f"{held.model_versions}; delete old versions first, or ask "
            f"{quotas.whom_to_ask(tenant)} about a larger plan.",
            quota="model_versions", used=held.model_versions, limit=limits["model_versions"], status=403)


def model_version_register(*, tenant: Tenant, job: Job, user_id: int | None, dataset: Dataset | None,
                           fields: dict, stored_bytes: int) -> ModelVersion:
    """Inside the training job's final transaction: the next version of the named model.

    Counts against model_versions and storage; the first version becomes the production one.
    """
    name = job.params["model_name"]
    model = MLModel.objects.select_for_update().filter(name__iexact=name).first()
    if model is None:
        model = MLModel.objects.create(name=name, owner_id=user_id, task=fields["task"])
    number = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
    quotas.count_reserve(tenant, "model_versions")
    quotas.storage_reserve(tenant, stored_bytes)
    version = ModelVersion.objects.create(model=model, version=number, job=job, dataset=dataset,
                                          created_by_id=user_id, **fields)
    if model.production_version_id is None and not job.params.get("propose_only"):
        model.production_version = version
        model.save(update_fields=["production_version", "updated_at"])
    audit.record("model.version_create", tenant=tenant, object_type="model_version", object_id=version.id,
                 details={"model": model.id, "name": model.name, "version": number,
                          "metrics": {k: v for k, v in fields.get("metrics", {}).items()
                                      if isinstance(v, (int, float))}})
    return version


def model_version_promote(*, tenant: Tenant, version: ModelVersion) -> MLModel:
    with transaction.atomic():
        model = MLModel.objects.select_for_update().get(pk=version.model_id)
        previous = model.production_version.version if model.production_version_id else None
        model.production_version = version
        model.save(update_fields=["production_version", "updated_at"])
        audit.record("model.promote", tenant=tenant, object_type="model_version", object_id=version.id,
                     details={"model": model.id, "name": model.name, "from": previous, "to": version.version})
        serving.forget_model(tenant, model.id)
        events.model_version_promoted(tenant=tenant, version=version, previous=previous)
    return model


THRESHOLD_MIN, THRESHOLD_MAX = 0.01, 0.99


def model_version_threshold_set(*, tenant: Tenant, version: ModelVersion, threshold: float | None) -> ModelVersion:
    """A two-class version's decision threshold (None: back to the more probable class). Online
    predictions use it from the next request in every process; batch jobs submitted from now on."""
    if len(version.classes or []) != 2:
        raise Conflict("Only a model that predicts one of two classes has a decision threshold.",
                       field="threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
                or not THRESHOLD_MIN <= threshold <= THRESHOLD_MAX:
            raise ValidationError({"threshold": f"The threshold must be a number from {THRESHOLD_MIN} "
                                                f"to {THRESHOLD_MAX}."})
        threshold = round(float(threshold), 4)
    previous = version.decision_threshold
    version.decision_threshold = threshold
    version.save(update_fields=["decision_threshold"])
    serving.forget_model(tenant, version.model_id)
    audit.record("model.threshold_set", tenant=tenant, object_type="model_version", object_id=version.id,
                 details={"model": version.model_id, "version": version.version,
                          "positive_class": version.classes[1], "from": previous, "to": threshold})
    return version


def model_version_delete(*, tenant: Tenant, version: ModelVersion) -> None:
    model = version.model
    if model.production_version_id == version.id:
        raise Conflict(f"Version {version.version} is the production version of {model.name}; "
                       f"promote another version first.", field="version")
    object_ids = [str(version.artifact_object_id)] + ([str(version.onnx_object_id)] if version.onnx_object_id else [])
    with transaction.atomic():
        version_id, number, size = version.id, version.version, version.stored_bytes
        monitoring.samples_release(tenant=tenant, version_ids=[version_id])
        version.delete()
        quotas.count_release(tenant, "model_versions")
        quotas.storage_release(tenant, size)
        audit.record("model.version_delete", tenant=tenant, object_type="model_version", object_id=version_id,
                     details={"model": model.id, "name": model.name, "version": number})
        transaction.on_commit(lambda: [storage.delete_object(tenant, MODELS, oid) for oid in object_ids])


def model_delete(*, tenant: Tenant, model: MLModel) -> None:
    versions = list(model.versions.all())
    object_ids = [str(oid) for v in versions for oid in (v.artifact_object_id, v.onnx_object_id) if oid]
    with transaction.atomic():
        model_id, name = model.id, model.name
        MLModel.objects.filter(pk=model.pk).update(production_version=None)
        monitoring.samples_release(tenant=tenant, version_ids=[v.id for v in versions])
        model.delete()
        for version in versions:
            quotas.count_release(tenant, "model_versions")
            quotas.storage_release(tenant, version.stored_bytes)
        audit.record("model.delete", tenant=tenant, object_type="model", object_id=model_id,
                     details={"name": name, "versions": len(versions)})
        transaction.on_commit(lambda: [storage.delete_object(tenant, MODELS, oid) for oid in object_ids])
        serving.forget_model(tenant, model_id)


def model_update(*, tenant: Tenant, model: MLModel, name: str | None = None,
                 description: str | None = None) -> MLModel:
    if name is not None:
        name = " ".join(name.split())
        if not name:
            raise ValidationError({"name": "A name is required."})
        if MLModel.objects.filter(name__iexact=name).exclude(pk=model.pk).exists():
            raise Conflict(f"A model named '{name}' already exists; choose another name.", field="name")
        model.name = name
    if description is not None:
        model.description = description.strip()[:5000]
    with transaction.atomic():
        model.full_clean()
        model.save(update_fields=["name", "description", "updated_at"])
        audit.record("model.update", tenant=tenant, object_type="model", object_id=model.id,
                     details={"name": model.name})
    return model
