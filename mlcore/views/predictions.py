"""HTML pages: batch predictions, prediction downloads, and the "try it" form of a version."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from tenants.accounts.access import WRITER_ROLES
from tenants.errors import Conflict
from tenants.web.pages import PAGE_ERRORS, member_page, page_error

from ..models import ModelVersion, PredictionOutput
from ..responses import prediction_download
from ..selectors import (
    USE,
    dataset_list,
    get_dataset_for_user,
    get_model_version_for_user,
    get_prediction_output_for_user,
    model_list,
)
from ..services import datasets as dataset_services
from ..services import predictions as prediction_services


@member_page(roles=WRITER_ROLES)
def predict(request):
    """Pick a model version (default: production) and a dataset; the job page follows it."""
    data = request.POST if request.method == "POST" else request.GET
    models = list(model_list(membership=request.membership, user_id=request.user.pk, need=USE)
                  .prefetch_related("versions"))
    datasets = list(dataset_list(membership=request.membership, user_id=request.user.pk)[:500])
    error = None
    if request.method == "POST":
        try:
            version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                                 version_id=data.get("model_version"), need=USE)
            dataset = get_dataset_for_user(membership=request.membership, user_id=request.user.pk,
                                           dataset_id=data.get("dataset"))
            job = prediction_services.prediction_job_start(
                tenant=request.tenant, membership=request.membership, user=request.user, dataset=dataset,
                version=version, id_column=data.get("id_column") or None)
        except Http404:
            error = "Choose a model version and a dataset."
        except PAGE_ERRORS as exc:
            error = page_error(exc)[0]
        else:
            messages.success(request, "Scoring started. This page follows it live.")
            return redirect("job_detail", job_id=job.id)
    return render(request, "mlcore/predictions/predict.html", {
        "models": models, "datasets": datasets, "error": error,
        "chosen_version": data.get("model_version", ""), "chosen_dataset": data.get("dataset", ""),
        "id_column": data.get("id_column", ""),
    }, status=422 if error else 200)




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


@require_POST
@member_page(roles=WRITER_ROLES)
def try_it(request, version_id: int):
    """One row typed into the version page, scored by the same service as the online endpoint."""
    version: ModelVersion = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                                       version_id=version_id)
    row = {name: request.POST.get(f"f_{name}", "") for name in version.features}
    context, status = {"version": version, "row": row}, 200
    try:
        result = prediction_services.online_predict(
            tenant=request.tenant, membership=request.membership, user_id=request.user.pk, token_id=None,
            gate_result=request.gate, model_id=version.model_id, version_id=version.id, rows=[row])
    except PAGE_ERRORS as exc:
        context["error"], status = page_error(exc)
    else:
        context["prediction"] = result["predictions"][0]
        probabilities = (result["probabilities"] or [None])[0]
        context["probabilities"] = sorted(probabilities.items(), key=lambda kv: -kv[1]) if probabilities else None
    return render(request, "mlcore/predictions/_try_result.html", context, status=status)


@csrf_exempt
@member_page(roles=WRITER_ROLES)
@require_POST
def predict_upload(request):
    """Score a new file: it is stored like any dataset (validated, encrypted), then scored."""
    try:
        with dataset_services.UploadSession(request) as upload:
            return _predict_upload(request, upload)
    except PAGE_ERRORS as exc:  # refused while the body streamed in, or by the services
        messages.error(request, page_error(exc)[0])
        return redirect("predict")


@csrf_protect
def _predict_upload(request, upload):
    try:
        version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                             version_id=request.POST.get("model_version"), need=USE)
    except Http404:
        messages.error(request, "Choose a model version to score the file with.")
        return redirect("predict")
    file = request.FILES.get("file")
    dataset = dataset_services.dataset_create(
        tenant=request.tenant, user=request.user, upload=file, budget=upload.budget,
        name=f"Scoring {file.name}" if file else "", encoding=request.POST.get("encoding", ""))
    job = prediction_services.prediction_job_start(
        tenant=request.tenant, membership=request.membership, user=request.user, dataset=dataset,
        version=version, id_column=request.POST.get("id_column") or None)
    messages.success(request, f"Uploaded {dataset.name} ({dataset.rows:,} rows); scoring started.")
    return redirect("job_detail", job_id=job.id)
