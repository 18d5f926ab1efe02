"""Writes for predictions: start a batch job; check an online request against the quotas."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404

from tenants import audit, metering, quotas
from tenants.access import MembershipInfo
from tenants.errors import ServiceError
from tenants.models import Tenant

from .. import jobs
from ..models import Dataset, Job, ModelVersion
from ..selectors import USE, get_model_for_user, get_model_version_for_user
from .datasets import dataset_profile


class PredictionRefused(ServiceError):
    """The request is well formed but the data cannot satisfy it (422): e.g. missing columns."""

    status = 422
    code = "prediction-refused"

    def __init__(self, message: str, field: str | None = None, missing: list[str] | None = None):
        missing = missing or []
        super().__init__(message, field=field, code="missing-columns" if missing else None,
                         missing_columns=missing)
        self.missing = missing


def missing_columns_message(missing: list[str]) -> str:
    names = ", ".join(f"'{name}'" for name in missing)
    return f"The data is missing {'a column' if len(missing) == 1 else 'columns'} the model needs: {names}."


def predicted_rows_check(tenant: Tenant, *, rows: int, used: int | None = None) -> None:
    """403 when the month's predicted-rows budget cannot cover `rows` more."""
    limit = quotas.effective_limits(tenant)["predicted_rows"]
    used = metering.month_predicted_rows(tenant.id) if used is None else used
    if used + rows > limit:
        raise quotas.QuotaExceeded(
            f"This would go over the month's prediction budget: {used:,} of {limit:,} rows used, "
            f"{rows:,} more asked.", quota="predicted_rows", used=used, limit=limit, status=403)


def resolve_version(*, membership: MembershipInfo, user_id: int, model_id=None, version_id=None) -> ModelVersion:
    """A version the member may use: the one named, or the model's production version."""
    if version_id is not None:
        return get_model_version_for_user(membership=membership, user_id=user_id, version_id=version_id,
                                          need=USE)
    if model_id is None:
        raise PredictionRefused("Give a model or a model_version.", field="model")
    model = get_model_for_user(membership=membership, user_id=user_id, model_id=model_id, need=USE)
    if model.production_version_id is None:
        raise Http404
    return ModelVersion.objects.select_related("model").get(pk=model.production_version_id)


def prediction_job_start(*, tenant: Tenant, membership: MembershipInfo, user, dataset: Dataset,
                         version: ModelVersion, id_column: str | None = None) -> Job:
    """Missing columns are named before any work starts; no job is created for them."""
    available = [c["name"] for c in dataset_profile(tenant=tenant, dataset=dataset)["columns"]]
    required = list(version.features) + ([id_column] if id_column else [])
    missing = [name for name in required if name not in available]
    if missing:
        raise PredictionRefused(missing_columns_message(missing), field="dataset", missing=missing)
    predicted_rows_check(tenant, rows=dataset.rows)
    params = {"dataset": dataset.id, "dataset_name": dataset.name, "model": version.model_id,
              "model_name": version.model.name, "model_version": version.id, "version": version.version,
              "id_column": id_column or ""}
    with transaction.atomic():
        job = jobs.job_submit(tenant=tenant, user=user, kind=Job.Kind.PREDICTION, params=params,
                              dataset=dataset, message="Waiting for a worker")
        audit.record("prediction.batch", tenant=tenant, object_type="model_version", object_id=version.id,
                     details={"job": job.id, "dataset": dataset.id, "rows": dataset.rows,
                              "model": version.model_id, "version": version.version})
    return job
