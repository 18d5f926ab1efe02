"""HTML pages: batch predictions, prediction downloads, and the "try it" form of a version."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from tenants.accounts.access import WRITER_ROLES
from tenants.errors import Conflict, ServiceError
from tenants.web import charts
from tenants.web.pages import PAGE_ERRORS, member_page, page_error, redirect_after_post

from ..ml import ranges as ml_ranges
from ..models import ModelVersion, PredictionOutput
from ..responses import prediction_download
from ..selectors import (
    USE,
    dataset_list,
    default_scoring_version_id,
    get_dataset_for_user,
    get_model_version_for_user,
    get_prediction_output_for_user,
    model_list,
)
from ..services import predictions as prediction_services
from ..services import uploads


@member_page(roles=WRITER_ROLES)
def predict(request):
    """Pick a model version (default: production) and a dataset; the job page follows it."""
    data = request.POST if request.method == "POST" else request.GET
    if request.method != "POST":
        return _predict_page(request, chosen_version=data.get("model_version", ""))
    try:
        version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                             version_id=data.get("model_version"), need=USE)
        dataset = get_dataset_for_user(membership=request.membership, user_id=request.user.pk,
                                       dataset_id=data.get("dataset"))
        job = prediction_services.prediction_job_start(
            tenant=request.tenant, membership=request.membership, user=request.user, dataset=dataset,
            version=version, id_column=data.get("id_column") or None)
    except Http404:
        error, status = "Choose a model version and a dataset.", 422
    except PAGE_ERRORS as exc:
        error, status = page_error(exc)[0], 422
    else:
        messages.success(request, "Scoring started. This page follows it live.")
        return redirect("job_detail", job_id=job.id)
    return _predict_page(request, error=error, status=status, chosen_version=data.get("model_version", ""),
                         chosen_dataset=data.get("dataset", ""), id_column=data.get("id_column", ""))


def _predict_page(request, *, error: str | None = None, upload_error: str | None = None, status: int = 200,
                  chosen_version: str = "", chosen_dataset: str = "", id_column: str = "",
                  upload_id_column: str = ""):
    """The batch page; both forms preselect the same version (the one asked for, else
    default_scoring_version_id), so they never disagree on the model."""
    models = list(model_list(membership=request.membership, user_id=request.user.pk, need=USE)
                  .prefetch_related("versions"))
    datasets = list(dataset_list(membership=request.membership, user_id=request.user.pk)[:500])
    usable = {str(v.id) for m in models for v in m.versions.all()}
    if chosen_version not in usable:
        default = default_scoring_version_id(models=models, user_id=request.user.pk)
        chosen_version = str(default) if default else ""
    return render(request, "mlcore/predictions/predict.html", {
        "models": models, "datasets": datasets, "error": error, "upload_error": upload_error,
        "chosen_version": chosen_version, "chosen_dataset": chosen_dataset, "id_column": id_column,
        "upload_id_column": upload_id_column,
    }, status=status)


def _output(request, job_id) -> PredictionOutput:
    try:
        return get_prediction_output_for_user(membership=request.membership, user_id=request.user.pk,
                                              job_id=job_id)
    except Conflict:  # no result yet: the job page links here only once there is one
        raise Http404


@member_page(roles=WRITER_ROLES)
def prediction_download_page(request, job_id: int):
    kind = request.GET.get("format", "csv")
    if kind not in ("csv", "parquet"):
        raise Http404
    return prediction_download(request.tenant, _output(request, job_id), kind)


@member_page(roles=WRITER_ROLES)
def prediction_errors_page(request, job_id: int):
    return prediction_download(request.tenant, _output(request, job_id), "errors")


@member_page(roles=WRITER_ROLES)
@require_GET
def prediction_receipt_page(request, job_id: int):
    """The signed receipt (the same JSON as GET /api/v1/jobs/{id}/receipt/), as a file to keep."""
    output = _output(request, job_id)
    response = JsonResponse(output.receipt, json_dumps_params={"indent": 2, "sort_keys": True})
    response["Content-Disposition"] = f'attachment; filename="receipt-{output.job_id}.json"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@member_page(roles=WRITER_ROLES)
def try_it(request, version_id: int):
    """One row typed into the version page, scored by the same service as the online endpoint.

    Every field is required (a blank one is named, and nothing is scored or counted); a number
    outside the range seen in training is scored with a warning next to it. The prediction comes
    with its explanation; a version that cannot be explained still predicts, and says why.
    """
    version: ModelVersion = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                                       version_id=version_id, need=USE)
    row = {name: request.POST.get(f"f_{name}", "").strip() for name in version.features}
    errors = {name: f"Enter a value for {name}." for name, value in row.items() if not value}
    context, status = {"version": version}, 200
    if errors:
        context["error"], status = "Fill in every field: the model needs all of them.", 400
    else:
        try:
            result, context["explain_note"] = _predict_explained(request, version, row)
        except PAGE_ERRORS as exc:
            context["error"], status = page_error(exc)
            errors = _row_errors(exc, row)
        else:
            context.update(_try_result(version, result))
    warnings = ml_ranges.out_of_range(version.training_ranges or {}, row) if not errors else {}
    context.update(try_fields=try_fields(version, row=row, errors=errors, warnings=warnings),
                   warnings=warnings)
    return render(request, "mlcore/predictions/_try.html", context, status=status)


def _predict_explained(request, version: ModelVersion, row: dict) -> tuple[dict, str | None]:
    """The try-it row scored with its explanation, or without one (and the reason) when the
    version cannot be explained; nothing is counted for the refused attempt."""
    def score(explain: bool) -> dict:
        return prediction_services.online_predict(
            tenant=request.tenant, membership=request.membership, user_id=request.user.pk, token_id=None,
            gate_result=request.gate, model_id=version.model_id, version_id=version.id, rows=[row],
            explain=explain)

    try:
        return score(True), None
    except ServiceError as exc:
        if exc.code != "explanation-unavailable":
            raise
        return score(False), exc.message


def try_fields(version: ModelVersion, *, row: dict | None = None, errors: dict | None = None,
               warnings: dict | None = None) -> list[dict]:
    """The inputs of the "try it" form: value, error or warning, and what training saw."""
    ranges = version.training_ranges or {}
    row, errors, warnings = row or {}, errors or {}, warnings or {}
    return [{"name": name, "input": f"f_{name}", "id": f"try_{i}", "type": version.column_types.get(name, ""),
             "value": row.get(name, ""), "error": errors.get(name), "warning": warnings.get(name),
             "seen": ranges.get(name)} for i, name in enumerate(version.features)]


def _row_errors(exc, row: dict) -> dict:
    """A service's per-value refusals (field "rows[0].<column>") next to their inputs."""
    errors = {}
    for error in getattr(exc, "errors", []):
        name = (error.get("field") or "").removeprefix("rows[0].")
        if name in row:
            errors[name] = error["message"]
    return errors


def _try_result(version: ModelVersion, result: dict) -> dict:
    prediction = result["predictions"][0]
    if version.task == "regression" and isinstance(prediction, (int, float)):
        prediction = ml_ranges.significant(float(prediction))
    probabilities = (result["probabilities"] or [None])[0]
    return {"prediction": prediction,
            "probabilities": [(label, 100 * p) for label, p in sorted(probabilities.items(), key=lambda kv: -kv[1])]
            if probabilities else None,
            "explanation": _explanation_view(version, (result.get("explanations") or [None])[0])}


EXPLAIN_CHART_BARS = 12
EXPLAIN_METHODS = {
    "linear": "Exact for a linear model: each column adds its coefficient times the distance of its value from "
              "the training mean.",
    "tree_shap": "Shapley values of the trees (shap's TreeExplainer), exact.",
    "saabas": "Path attribution (Saabas): each split on the way to the leaf credits its column with the change "
              "it made; used for trees too large for exact Shapley values to be quick.",
}
EXPLAIN_SCALES = {"log-odds": "log-odds of", "probability": "probability of", "value": "predicted value"}


def _explanation_view(version: ModelVersion, explanation: dict | None) -> dict | None:
    """The chart (largest contributions; the rest summed in one bar) and the numbers for the table."""
    if explanation is None:
        return None
    contributions = explanation["contributions"]
    bars = [(c["feature"], c["contribution"]) for c in contributions[:EXPLAIN_CHART_BARS]]
    rest = contributions[EXPLAIN_CHART_BARS:]
    if rest:
        bars.append((f"{len(rest)} other columns", sum(c["contribution"] for c in rest)))
    scale = EXPLAIN_SCALES[explanation["scale"]]
    what = f"{scale} '{explanation['class']}'" if explanation["class"] is not None else scale
    return {**explanation, "what": what, "method_text": EXPLAIN_METHODS[explanation["method"]],
            "chart": charts.signed_bars(bars, label=f"How each column moved the {what} from the baseline "
                                                    f"{explanation['baseline']:.4g} to {explanation['output']:.4g}")}


@csrf_exempt
@member_page(roles=WRITER_ROLES)
@require_POST
def predict_upload(request):
    """Score a new file: it is stored like any dataset (validated, encrypted), then scored.

    A refusal comes back as the page with the reason above the upload form (status 4xx), which
    the upload script shows in place; success answers the script with the job page's address
    (redirect_after_post), so the page it opens still has its message.
    """
    try:
        with uploads.UploadSession(request) as upload:
            return _predict_upload(request, upload)
    except Http404:
        error, status = "Choose a model version to score the file with.", 400
    except PAGE_ERRORS as exc:  # refused while the body streamed in, or by the services
        error, status = page_error(exc)
    # After a refusal mid-stream request.POST is empty: the form falls back to its defaults.
    return _predict_page(request, upload_error=error, status=status,
                         chosen_version=request.POST.get("model_version", ""),
                         upload_id_column=request.POST.get("id_column", ""))


@csrf_protect
def _predict_upload(request, upload):
    version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                         version_id=request.POST.get("model_version"), need=USE)
    job = prediction_services.prediction_upload_start(
        tenant=request.tenant, membership=request.membership, user=request.user,
        upload=request.FILES.get("file"), budget=upload.budget, version=version,
        id_column=request.POST.get("id_column") or None, encoding=request.POST.get("encoding", ""))
    messages.success(request, f"Uploaded {job.dataset.name} ({job.dataset.rows:,} rows); scoring started.")
    return redirect_after_post(request, "job_detail", job_id=job.id)
