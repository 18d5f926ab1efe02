"""Predictions: online scoring (API and the "try it" page) and batch jobs, each one path.

`online_predict` is the one online operation: the member's right to use the model, the version
to serve, the month's predicted-rows budget (the workspace's and the member's own), scoring and
metering. It reads only what the request gate (tenants.limits.gate.check, one Redis round trip) and the
process caches of mlcore.serving hold, so a warm call runs no SQL statement.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from tenants.accounts.access import MembershipInfo
from tenants.auditing import audit
from tenants.errors import ServiceError
from tenants.limits import metering, quotas
from tenants.limits.gate import GateResult
from tenants.models import Tenant

from .. import jobs, sampling, serving
from ..models import Dataset, Job, ModelVersion
from ..selectors import USE, get_model_for_user, get_model_version_for_user
from .datasets import dataset_create, dataset_delete, dataset_profile, free_dataset_name
from .uploads import UploadBudget

ONLINE_MAX_ROWS = 1000
EXPLAIN_MAX_ROWS = 100  # an explanation costs up to a few milliseconds a row (mlcore/ml/explain.py)


class PredictionRefused(ServiceError):
    """The request is well formed but the data cannot satisfy it (422): e.g. missing columns."""

    status = 422
    code = "prediction-refused"

    def __init__(self, message: str, field: str | None = None, missing: list[str] | None = None):
        missing = missing or []
        super().__init__(message, field=field, code="missing-columns" if missing else None,
                         missing_columns=missing)
        self.missing = missing


class OnlineInputInvalid(ServiceError):
    """The rows or version number sent cannot be scored at all (400, or 413 for too many rows).
    Like the API's other input errors, it has no problem type of its own (about:blank)."""

    code = ""


def missing_columns_message(missing: list[str]) -> str:
    names = ", ".join(f"'{name}'" for name in missing)
    return f"The data is missing {'a column' if len(missing) == 1 else 'columns'} the model needs: {names}."


# --- online ------------------------------------------------------------------------------------
def online_predict(*, tenant: Tenant, membership: MembershipInfo, user_id: int, token_id: int | None,
                   gate_result: GateResult, model_id: int, rows, version_number=None,
                   version_id: int | None = None, explain=False) -> dict:
    """Score a few rows with a model: the version numbered `version_number` (API) or with id
    `version_id` (the version page), else the production version. With `explain` (a boolean, at
    most EXPLAIN_MAX_ROWS rows), each prediction comes with its explanation (mlcore/ml/explain.py);
    422 for a version that cannot be explained.

    404 for a model (or version) the member may not see, 403 when they may see but not use it,
    then 400/413 for unusable rows, 403 (quota-exceeded) over the month's budget, 422 for rows
    the model cannot score. Returns {model_version, version, predictions, probabilities} (and
    explanations).
    """
    from ..ml import BadValuesError, ExplanationUnavailable, MissingColumnsError

    access = serving.model_access(tenant=tenant, membership=membership, user_id=user_id,
                                  model_id=model_id, epochs=gate_result.epochs)
    if USE not in access.actions:
        raise PermissionDenied("You can view this model but not use it for predictions.")
    _check_online_input(rows, version_number, explain)
    served_id = _version_id_to_serve(access, number=version_number, version_id=version_id)
    limits = quotas.limits_cached(tenant, epoch=gate_result.tenant_epoch)
    # The counters lag by at most one flush of this process's buffer (PORTAL_ONLINE_FLUSH_SECONDS).
    quotas.predicted_rows_check(
        rows=len(rows), limit=limits["predicted_rows"], used=gate_result.month_predicted_rows,
        member_limit=quotas.member_predicted_rows_limit(membership.limits),
        member_used=gate_result.member_month_predicted_rows, tenant=tenant, user_id=user_id)
    try:
        result = serving.predictor(tenant, served_id).predict(rows, threshold=access.thresholds.get(served_id),
                                                              explain=explain)
    except ExplanationUnavailable as exc:
        raise ServiceError(str(exc), code="explanation-unavailable", status=422, field="explain")
    except MissingColumnsError as exc:
        raise PredictionRefused(missing_columns_message(exc.columns), field="rows", missing=exc.columns)
    except BadValuesError as exc:
        raise ServiceError(
            "Some values cannot be used: " + "; ".join(f"row {r}, column '{c}': {m}" for r, c, m in exc.errors[:5]),
            code="bad-values", status=422,
            errors=[{"field": f"rows[{r - 1}].{c}", "message": m} for r, c, m in exc.errors[:100]])
    metering.online_buffer.add(tenant_id=tenant.id, user_id=user_id, token_id=token_id, version_id=served_id,
                               rows=len(rows))
    if served_id == access.production_version_id:  # monitoring: an in-process reservoir, no I/O
        sampling.online_samples.offer(tenant.schema_name, served_id, rows, result["predictions"])
    answer = {"model_version": served_id, "version": access.version_numbers[served_id],
              "predictions": result["predictions"], "probabilities": result.get("probabilities")}
    if explain:
        answer["explanations"] = result["explanations"]
    return answer


def _check_online_input(rows, number, explain) -> None:
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise OnlineInputInvalid("Send {\"rows\": [{column: value, ...}, ...]} with at least one row.",
                                 errors=[{"field": "rows", "message": "A non-empty list of objects is required."}])
    if len(rows) > ONLINE_MAX_ROWS:
        raise OnlineInputInvalid(f"At most {ONLINE_MAX_ROWS} rows per request; use a batch prediction job for more.",
                                 status=413, errors=[{"field": "rows", "message": "Too many rows."}])
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        raise OnlineInputInvalid("version must be a version number.",
                                 errors=[{"field": "version", "message": "A whole number is required."}])
    if not isinstance(explain, bool):
        raise OnlineInputInvalid("explain must be true or false.",
                                 errors=[{"field": "explain", "message": "A boolean (true or false) is required."}])
    if explain and len(rows) > EXPLAIN_MAX_ROWS:
        raise OnlineInputInvalid(f"At most {EXPLAIN_MAX_ROWS} rows per request can be explained.", status=413,
                                 errors=[{"field": "rows", "message": "Too many rows to explain."}])


def _version_id_to_serve(access: serving.ModelAccess, *, number: int | None, version_id: int | None) -> int:
    """The id of the version asked for (by number or id), else of the production version; 404 when
    there is no such version of this model."""
    if version_id is not None:
        if int(version_id) not in access.versions.values():
            raise Http404
        return int(version_id)
    if number is None:
        if access.production_version_id is None:
            raise Http404
        return access.production_version_id
    try:
        return access.versions[int(number)]
    except (KeyError, TypeError, ValueError):
        raise Http404


# --- batch -------------------------------------------------------------------------------------
def version_for_scoring(*, membership: MembershipInfo, user_id: int, model_id=None, version_id=None) -> ModelVersion:
    """The version a batch job scores with: the one named, or the model's production version
    (404/403 by the access functions; USE is needed)."""
    if version_id is not None:
        return get_model_version_for_user(membership=membership, user_id=user_id, version_id=version_id,
                                          need=USE)
    if model_id is None:
        raise PredictionRefused("Give a model or a model_version.", field="model")
    model = get_model_for_user(membership=membership, user_id=user_id, model_id=model_id, need=USE)
    if model.production_version_id is None:
        raise Http404
    return ModelVersion.objects.select_related("model").get(pk=model.production_version_id)


def _batch_rows_check(tenant: Tenant, membership: MembershipInfo, *, rows: int) -> None:
    member_limit = quotas.member_predicted_rows_limit(membership.limits)
    quotas.predicted_rows_check(
        rows=rows, limit=quotas.effective_limits(tenant)["predicted_rows"],
        used=metering.month_predicted_rows(tenant.id), member_limit=member_limit,
        member_used=(metering.member_month_predicted_rows(tenant.id, membership.user_id)
                     if member_limit is not None else 0),
        tenant=tenant, user_id=membership.user_id)


def _check_columns(version: ModelVersion, id_column: str | None, available, *, field: str) -> None:
    required = list(version.features) + ([id_column] if id_column else [])
    missing = [name for name in required if name not in set(available)]
    if missing:
        raise PredictionRefused(missing_columns_message(missing), field=field, missing=missing)


def prediction_job_start(*, tenant: Tenant, membership: MembershipInfo, user, dataset: Dataset,
                         version: ModelVersion, id_column: str | None = None) -> Job:
    """Missing columns are named before any work starts; no job is created for them."""
    available = [c["name"] for c in dataset_profile(tenant=tenant, dataset=dataset)["columns"]]
    _check_columns(version, id_column, available, field="dataset")
    _batch_rows_check(tenant, membership, rows=dataset.rows)
    params = {"dataset": dataset.id, "dataset_name": dataset.name, "model": version.model_id,
              "model_name": version.model.name, "model_version": version.id, "version": version.version,
              "id_column": id_column or ""}
    if version.decision_threshold is not None:  # fixed when submitted: the job scores as promised
        params["decision_threshold"] = version.decision_threshold
    with transaction.atomic():
        job = jobs.job_submit(tenant=tenant, user=user, kind=Job.Kind.PREDICTION, params=params,
                              dataset=dataset, message="Waiting for a worker")
        audit.record("prediction.batch", tenant=tenant, object_type="model_version", object_id=version.id,
                     details={"job": job.id, "dataset": dataset.id, "rows": dataset.rows,
                              "model": version.model_id, "version": version.version})
    return job


def prediction_upload_start(*, tenant: Tenant, membership: MembershipInfo, user, upload, budget: UploadBudget,
                            version: ModelVersion, id_column: str | None = None, encoding: str = "") -> Job:
    """Score a new file: it is stored like any dataset ("Scoring <file name>"), then scored.

    A file the version cannot score (a column missing) or that would pass the month's predicted
    rows is refused before it becomes a dataset: no row, no file, no storage counted. Should the
    job still be refused, the dataset made for it goes too.
    """
    def scorable(result) -> None:
        _check_columns(version, id_column, [c.name for c in result.columns], field="file")
        _batch_rows_check(tenant, membership, rows=result.rows)

    name = free_dataset_name(f"Scoring {upload.name}"[:190]) if upload is not None else ""
    dataset = dataset_create(tenant=tenant, user=user, upload=upload, budget=budget, name=name,
                             encoding=encoding, check=scorable)
    try:
        return prediction_job_start(tenant=tenant, membership=membership, user=user, dataset=dataset,
                                    version=version, id_column=id_column)
    except BaseException:
        dataset_delete(tenant=tenant, dataset=dataset)
        raise
