"""HTML pages: the overview and datasets."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tenants.accounts.access import DATA_ROLES, WRITER_ROLES
from tenants.limits import quotas
from tenants.web import charts
from tenants.web.pages import (
    PAGE_ERRORS,
    form_errors_from,
    member_page,
    page_error,
    redirect_after_post,
)

from .. import storage
from ..responses import download_response
from ..selectors import (
    EDIT,
    SHARE,
    dataset_lineage,
    dataset_list,
    get_dataset_for_user,
    object_grants,
)
from ..services import datasets as dataset_services
from ..services import uploads
from .listing import DatasetFilterForm, filtered_page
from .sharing import share_page, unshare

# --- datasets ----------------------------------------------------------------------------------
DATASET_PERMISSION_CHOICES = [("view", "Can view"), ("edit", "Can edit")]


class DatasetEditForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)


def _dataset(request, dataset_id, need="view"):
    return get_dataset_for_user(membership=request.membership, user_id=request.user.pk,
                                dataset_id=dataset_id, need=need)


@member_page(roles=DATA_ROLES)
def datasets(request):
    context, status = filtered_page(request, DatasetFilterForm, lambda **filters: dataset_list(
        membership=request.membership, user_id=request.user.pk, **filters))
    return render(request, "mlcore/datasets/list.html", {
        **context, "can_upload": request.membership.can_write_data,
        "usage": quotas.usage_summary(tenant=request.tenant),
    }, status=status)


@csrf_exempt
@member_page(roles=WRITER_ROLES)
@require_http_methods(["GET", "POST"])
def dataset_upload(request):
    """csrf_exempt + csrf_protect inside: the upload session (its encrypting handler) must be open
    before the CSRF check reads the request body (Django's documented pattern)."""
    try:
        with uploads.UploadSession(request) as upload:
            return _dataset_upload(request, upload)
    except PAGE_ERRORS as exc:  # refused while the body streamed in, or by the service
        error, status = page_error(exc)
        return _upload_form(request, error=error, status=status)


@csrf_protect
def _dataset_upload(request, upload):
    if request.method == "POST":
        dataset = dataset_services.dataset_create(
            tenant=request.tenant, user=request.user, upload=request.FILES.get("file"), budget=upload.budget,
            name=request.POST.get("name", ""), description=request.POST.get("description", ""),
            encoding=request.POST.get("encoding", ""))
        messages.success(request, f"Uploaded {dataset.name}: {dataset.rows:,} rows, "
                                  f"{dataset.column_count} columns.")
        return redirect_after_post(request, "dataset_detail", dataset_id=dataset.id)
    return _upload_form(request, error=None, status=200)


@csrf_exempt
@member_page(roles=WRITER_ROLES)
@require_http_methods(["GET", "POST"])
def dataset_version_upload(request, dataset_id: int):
    """A new version of a dataset: the same upload path as a new dataset (see dataset_upload)."""
    dataset = _dataset(request, dataset_id, need=EDIT)  # reads no body: before the session is fine
    try:
        with uploads.UploadSession(request) as upload:
            return _dataset_version_upload(request, upload, dataset)
    except PAGE_ERRORS as exc:
        error, status = page_error(exc)
        return _upload_form(request, error=error, status=status, version_of=dataset)


@csrf_protect
def _dataset_version_upload(request, upload, dataset):
    if request.method == "POST":
        created = dataset_services.dataset_create(
            tenant=request.tenant, user=request.user, upload=request.FILES.get("file"), budget=upload.budget,
            description=request.POST.get("description", ""), encoding=request.POST.get("encoding", ""),
            version_of=dataset)
        messages.success(request, f"Uploaded version {created.version} of {created.name}: "
                                  f"{created.rows:,} rows, {created.column_count} columns.")
        return redirect_after_post(request, "dataset_detail", dataset_id=created.id)
    return _upload_form(request, error=None, status=200, version_of=dataset)


def _upload_form(request, *, error: str | None, status: int, version_of=None):
    return render(request, "mlcore/datasets/upload.html", {
        "version_of": version_of,
        "error": error, "limits": quotas.effective_limits(request.tenant),
        "usage": quotas.usage_summary(tenant=request.tenant),
        "name": request.POST.get("name", "") if request.method == "POST" and error else "",
        "encoding": request.POST.get("encoding", "") if request.method == "POST" and error else "",
    }, status=status)


def _column_charts(profile: dict) -> list[dict]:
    out = []
    for column in profile["columns"]:
        chart = ""
        label = f"Distribution of {column['name']}"
        if column["type"] in ("number", "datetime") and column.get("histogram"):
            chart = charts.histogram(column["histogram"], label=label)
        elif column.get("top"):
            chart = charts.bars([(str(t["value"]), t["count"]) for t in column["top"][:8]], label=label)
        out.append({**column, "chart": chart})
    return out


@member_page(roles=DATA_ROLES)
def dataset_detail(request, dataset_id: int):
    dataset = _dataset(request, dataset_id)
    form = DatasetEditForm(request.POST or None, initial={"name": dataset.name,
                                                         "description": dataset.description})
    if request.method == "POST":
        dataset = _dataset(request, dataset_id, need=EDIT)
        if form.is_valid():
            try:
                dataset_services.dataset_update(tenant=request.tenant, dataset=dataset, **form.cleaned_data)
            except PAGE_ERRORS as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("dataset_detail", dataset_id=dataset.id)
    try:
        profile = dataset_services.dataset_profile(tenant=request.tenant, dataset=dataset)
    except storage.StorageIntegrityError as exc:
        return render(request, "mlcore/datasets/damaged.html", {"dataset": dataset, "error": str(exc)},
                      status=500)
    return render(request, "mlcore/datasets/detail.html", {
        "dataset": dataset, "columns": _column_charts(profile), "preview": profile["preview"],
        "column_names": [c["name"] for c in profile["columns"]], "form": form,
        "actions": dataset.allowed_actions, "grants": object_grants(obj=dataset),
        "can_train": request.membership.can_write_data,
        "lineage": dataset_lineage(membership=request.membership, user_id=request.user.pk, dataset=dataset),
        "versions": dataset_services.dataset_versions(dataset=dataset)[:50],
    }, status=400 if request.method == "POST" else 200)


def _shade(r) -> str:
    """A correlation's cell class: its sign and strength in six steps."""
    if r is None:
        return "corr-none"
    return f"corr-{'pos' if r >= 0 else 'neg'}-{round(abs(r) * 5)}"


@require_GET
@member_page(roles=DATA_ROLES)
def dataset_relationships(request, dataset_id: int):
    """Correlations between number columns; each against a chosen target."""
    from ..services import relationships as relationship_services

    dataset = _dataset(request, dataset_id)
    target = request.GET.get("target") or None
    try:
        found = relationship_services.dataset_relationships(tenant=request.tenant, dataset=dataset, target=target)
    except PAGE_ERRORS as exc:
        messages.error(request, page_error(exc)[0])
        return redirect("dataset_relationships", dataset_id=dataset.id)
    numbers = found["numbers"]
    matrix = [{"name": name, "cells": [{"r": r, "shade": _shade(r)} for r in row]}
              for name, row in zip(numbers, found["correlations"], strict=False)]
    target_chart = None
    if found.get("target_correlations"):
        target_chart = charts.bars([(c["column"], abs(c["r"] or 0.0)) for c in found["target_correlations"][:15]],
                                   label=f"Strength of the correlation of each number column with {target}")
    return render(request, "mlcore/datasets/relationships.html", {
        "dataset": dataset, "found": found, "matrix": matrix, "target": target,
        "targets": relationship_services.relationship_targets(tenant=request.tenant, dataset=dataset),
        "target_chart": target_chart,
        "target_rows": [{**c, "shade": _shade(c["r"])} for c in found.get("target_correlations", [])],
    })


@member_page(roles=DATA_ROLES)
def dataset_download(request, dataset_id: int):
    dataset = _dataset(request, dataset_id)
    try:
        return download_response(request.tenant, dataset)
    except storage.StorageIntegrityError as exc:
        return render(request, "mlcore/datasets/damaged.html", {"dataset": dataset, "error": str(exc)},
                      status=500)


@member_page(roles=WRITER_ROLES)
def dataset_share(request, dataset_id: int):
    return share_page(request, _dataset(request, dataset_id, need=SHARE), template="mlcore/datasets/share.html",
                      choices=DATASET_PERMISSION_CHOICES, url_name="dataset_share")


@require_POST
@member_page(roles=WRITER_ROLES)
def dataset_unshare(request, dataset_id: int):
    return unshare(request, _dataset(request, dataset_id, need=SHARE), url_name="dataset_share")


@member_page(roles=WRITER_ROLES)
def dataset_delete(request, dataset_id: int):
    dataset = _dataset(request, dataset_id, need="delete")
    if request.method == "POST":
        name = dataset.name
        dataset_services.dataset_delete(tenant=request.tenant, dataset=dataset)
        messages.success(request, f"Deleted {name}; its storage was freed.")
        return redirect("datasets")
    return render(request, "mlcore/datasets/delete.html", {"dataset": dataset})
