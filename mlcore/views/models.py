"""HTML pages: train a model, the model registry, version pages with their model card."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tenants.accounts.access import DATA_ROLES, WRITER_ROLES
from tenants.web import charts
from tenants.web.pages import PAGE_ERRORS, member_page, page_error

from ..ml.spec import ALGORITHMS, infer_task, looks_like_identifier
from ..selectors import (
    DELETE,
    EDIT,
    SHARE,
    dataset_list,
    get_dataset_for_user,
    get_model_for_user,
    get_model_version_for_user,
    model_list,
    object_grants,
)
from ..services import models as model_services
from ..services.datasets import dataset_profile
from .predictions import try_fields
from .sharing import share_page, unshare

PERMISSION_CHOICES = [("view", "Can view metrics"), ("use", "Can use for predictions"),
                      ("edit", "Can edit and promote")]


# --- train -------------------------------------------------------------------------------------
def _param_fields(algorithm: str, values: dict) -> list[dict]:
    fields = []
    for name, param in ALGORITHMS[algorithm].params.items():
        raw = values.get(f"param_{name}")
        fields.append({"name": name, "param": param, "input": f"param_{name}",
                       "value": raw if raw is not None else ("" if param.default is None else param.default)})
    return fields


def _spec_from_post(post, columns: list[str]) -> dict:
    algorithm = post.get("algorithm", "")
    params = {}
    for name, param in ALGORITHMS.get(algorithm, ALGORITHMS["logistic_regression"]).params.items():
        raw = post.get(f"param_{name}", "")
        if param.type == "bool":
            params[name] = raw == "on"
        elif raw != "":
            params[name] = raw
    method = post.get("evaluation", "holdout")
    evaluation = ({"method": "kfold", "folds": post.get("folds", "5")} if method == "kfold"
                  else {"method": "holdout", "test_size": post.get("test_size", "0.2")})
    for key in ("folds", "test_size"):
        if key in evaluation:
            try:
                evaluation[key] = (int if key == "folds" else float)(evaluation[key])
            except ValueError:
                pass  # validate_spec names the field and the allowed range
    spec = {"target": post.get("target", ""), "algorithm": algorithm, "params": params,
            "evaluation": evaluation, "features": [c for c in post.getlist("features") if c in columns]}
    if post.get("task"):
        spec["task"] = post["task"]
    return spec


@member_page(roles=WRITER_ROLES)
def train(request):
    data = request.POST if request.method == "POST" else request.GET
    datasets = list(dataset_list(membership=request.membership, user_id=request.user.pk)[:500])
    dataset = profile = None
    if data.get("dataset"):
        dataset = get_dataset_for_user(membership=request.membership, user_id=request.user.pk,
                                       dataset_id=data["dataset"])
        profile = dataset_profile(tenant=request.tenant, dataset=dataset)
    columns = [c["name"] for c in profile["columns"]] if profile else []
    target = data.get("target") or (columns[-1] if columns else "")
    algorithm = data.get("algorithm") if data.get("algorithm") in ALGORITHMS else None
    by_name = {c["name"]: c for c in profile["columns"]} if profile else {}
    suggested_task = infer_task(by_name[target]) if target in by_name else "classification"
    if algorithm is None:
        algorithm = "logistic_regression" if suggested_task == "classification" else "ridge"
    error = None
    if request.method == "POST" and dataset is not None:
        try:
            job = model_services.training_job_start(
                tenant=request.tenant, membership=request.membership, user=request.user,
                dataset=dataset, model_name=data.get("model_name", ""), spec=_spec_from_post(data, columns))
        except PAGE_ERRORS as exc:
            error = page_error(exc)[0]
        else:
            messages.success(request, "Training started. This page follows it live.")
            return redirect("job_detail", job_id=job.id)
    elif request.method == "POST":
        error = "Choose a dataset first."
    identifiers = ({c["name"] for c in profile["columns"] if looks_like_identifier(c, profile["rows"])}
                   if profile else set())
    chosen_features = (data.getlist("features") if "features" in data
                       else [c for c in columns if c != target and c not in identifiers])
    return render(request, "mlcore/models/train.html", {
        "datasets": datasets, "dataset": dataset, "columns": profile["columns"] if profile else [],
        "target": target, "features": chosen_features, "identifiers": identifiers, "algorithm": algorithm,
        "algorithms": ALGORITHMS, "params": _param_fields(algorithm, data),
        "suggested_task": suggested_task, "task": data.get("task", ""),
        "evaluation": data.get("evaluation", "holdout"), "test_size": data.get("test_size", "0.2"),
        "folds": data.get("folds", "5"),
        "model_name": data.get("model_name") or (f"{dataset.name} model" if dataset else ""),
        "error": error,
    }, status=422 if error else 200)


# --- registry ----------------------------------------------------------------------------------
@member_page(roles=DATA_ROLES)
def models_page(request):
    rows = model_list(membership=request.membership, user_id=request.user.pk).prefetch_related("versions")
    page = Paginator(rows, 25).get_page(request.GET.get("page"))
    return render(request, "mlcore/models/list.html", {"page": page,
                                                       "can_train": request.membership.can_write_data})


@member_page(roles=DATA_ROLES)
def model_detail(request, model_id: int):
    model = get_model_for_user(membership=request.membership, user_id=request.user.pk, model_id=model_id)
    versions = list(model.versions.select_related("created_by").all())
    metric_keys = (["accuracy", "precision", "recall", "f1", "roc_auc"] if model.task == "classification"
                   else ["mae", "rmse", "r2"])
    return render(request, "mlcore/models/detail.html", {
        "model": model, "versions": versions, "metric_keys": metric_keys,
        "actions": model.allowed_actions, "grants": object_grants(obj=model),
    })


def _version_charts(version) -> dict:
    out = {}
    roc = version.charts.get("roc_curve") or []
    if roc:
        series = [(f"class {c.get('class')}", list(zip(c["fpr"], c["tpr"], strict=False))) for c in roc]
        out["roc"] = charts.line(series, label=f"ROC curve of {version}", x_label="false positive rate",
                                 y_label="true positive rate", diagonal=True)
    pva = version.charts.get("predicted_vs_actual")
    if pva and pva.get("actual"):
        lo = min(min(pva["actual"]), min(pva["predicted"]))
        hi = max(max(pva["actual"]), max(pva["predicted"]))
        out["pva"] = charts.line([("rows", list(zip(pva["actual"], pva["predicted"], strict=False)))],
                                 label=f"Predicted against actual values of {version}", x_label="actual",
                                 y_label="predicted", diagonal=True, points_only=True,
                                 x_range=(lo, hi), y_range=(lo, hi))
    importance = version.feature_importance or []
    if importance:
        items = [(i.get("feature") or i.get("column"), max(i.get("importance", 0.0), 0.0)) for i in importance[:15]]
        out["importance"] = charts.bars(items, label=f"Feature importance of {version}: how much "
                                                     "the score drops when the column is shuffled")
    return out


@member_page(roles=DATA_ROLES)
def model_version(request, version_id: int):
    version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                         version_id=version_id)
    model = version.model
    confusion = version.charts.get("confusion_matrix")
    return render(request, "mlcore/models/version.html", {
        "version": version, "model": model, "actions": model.allowed_actions,
        "charts": _version_charts(version), "confusion": confusion,
        "is_production": model.production_version_id == version.id,
        "metrics": sorted((k, v) for k, v in version.metrics.items() if isinstance(v, (int, float))),
        "metrics_std": version.evaluation.get("metrics_std") or {},
        "try_fields": try_fields(version),
    })


@require_POST
@member_page(roles=WRITER_ROLES)
def model_version_promote(request, version_id: int):
    version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                         version_id=version_id, need=EDIT)
    model = model_services.model_version_promote(tenant=request.tenant, version=version)
    messages.success(request, f"Version {version.version} of {model.name} is now in production.")
    return redirect("model_detail", model_id=model.id)


@require_POST
@member_page(roles=WRITER_ROLES)
def model_version_delete(request, version_id: int):
    version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                         version_id=version_id, need=DELETE)
    try:
        model_services.model_version_delete(tenant=request.tenant, version=version)
    except PAGE_ERRORS as exc:
        messages.error(request, page_error(exc)[0])
    else:
        messages.success(request, f"Deleted version {version.version}; its storage was freed.")
    return redirect("model_detail", model_id=version.model_id)


@member_page(roles=WRITER_ROLES)
def model_delete(request, model_id: int):
    model = get_model_for_user(membership=request.membership, user_id=request.user.pk,
                               model_id=model_id, need=DELETE)
    if request.method == "POST":
        name = model.name
        model_services.model_delete(tenant=request.tenant, model=model)
        messages.success(request, f"Deleted {name} and all its versions.")
        return redirect("models")
    return render(request, "mlcore/models/delete.html", {"model": model})


@member_page(roles=WRITER_ROLES)
def model_share(request, model_id: int):
    model = get_model_for_user(membership=request.membership, user_id=request.user.pk,
                               model_id=model_id, need=SHARE)
    if request.method == "POST" and request.POST.get("remove"):
        return unshare(request, model, url_name="model_share")
    return share_page(request, model, template="mlcore/models/share.html", choices=PERMISSION_CHOICES,
                      url_name="model_share")
