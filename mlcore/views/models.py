"""HTML pages: train a model, the model registry, version pages with their model card."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tenants.accounts.access import DATA_ROLES, WRITER_ROLES
from tenants.errors import ServiceError
from tenants.web import charts
from tenants.web.pages import PAGE_ERRORS, member_page, page_error

from ..ml import comparison
from ..ml.spec import ALGORITHMS, CLASSIFICATION, REGRESSION, infer_task, looks_like_identifier
from ..selectors import (
    DELETE,
    EDIT,
    SHARE,
    dataset_list,
    get_dataset_for_user,
    get_model_for_user,
    get_model_version_for_user,
    model_list,
    model_versions_compared,
    monitoring_reports,
    object_grants,
    version_lineage,
)
from ..services import models as model_services
from ..services import monitoring
from ..services.datasets import dataset_profile
from .listing import ModelFilterForm, filtered_page
from .predictions import try_fields
from .sharing import share_page, unshare

PERMISSION_CHOICES = [("view", "Can view metrics"), ("use", "Can use for predictions"),
                      ("edit", "Can edit and promote")]


# --- train -------------------------------------------------------------------------------------
def _param_fields(algorithm: str, values: dict) -> list[dict]:
    """The algorithm's hyperparameter inputs; the values typed are kept only if they were typed for
    this algorithm (params_for): logistic regression's 1,000 "max_iter" iterations must not become
    1,000 boosting rounds when the user switches to gradient boosting."""
    fields = []
    same_algorithm = values.get("params_for", algorithm) == algorithm
    for name, param in ALGORITHMS[algorithm].params.items():
        raw = values.get(f"param_{name}") if same_algorithm else None
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


def _tasks_for(column: dict | None) -> list[str]:
    """What a target column can be predicted as, from its type in the dataset's profile: words and
    yes/no only as classes, numbers as classes or amounts, dates not at all."""
    if column is None or column.get("type") == "datetime":
        return []
    if column.get("type") == "number":
        return [CLASSIFICATION, REGRESSION]
    return [CLASSIFICATION]


# The form's inputs that a refusal's field (validate_spec's names) is shown next to.
_FORM_FIELDS = {"target", "task", "features", "algorithm", "model_name", "evaluation"}


def _form_errors(exc) -> tuple[dict[str, str], list[str]]:
    """A refusal as {input name: message} for the fields at fault and the messages for none."""
    if isinstance(exc, ServiceError):
        pairs = [(e["field"], e["message"]) for e in exc.errors]
    elif hasattr(exc, "error_dict"):
        pairs = [(name, message) for name, errors in exc.message_dict.items() for message in errors]
    else:
        pairs = [(None, message) for message in exc.messages]
    fields, general = {}, []
    for name, message in pairs:
        name = (name or "").replace("params.", "param_").split(".")[0]
        if name in _FORM_FIELDS or name.startswith("param_"):
            fields.setdefault(name, message)
        else:
            general.append(message)
    return fields, general


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
    by_name = {c["name"]: c for c in profile["columns"]} if profile else {}
    target = data.get("target") if data.get("target") in by_name else (columns[-1] if columns else "")
    tasks = _tasks_for(by_name.get(target))
    suggested_task = infer_task(by_name[target]) if target in by_name else CLASSIFICATION
    task = data.get("task", "") if data.get("task", "") in tasks else ""
    # Only the algorithms that can learn this target: a category target never offers a regression.
    offered = {key: algo for key, algo in ALGORITHMS.items() if (task or suggested_task) in algo.tasks}
    algorithm = data.get("algorithm") if data.get("algorithm") in offered else None
    if algorithm is None:
        algorithm = "logistic_regression" if (task or suggested_task) == CLASSIFICATION else "ridge"
    errors, general = {}, []
    if request.method == "POST" and dataset is not None:
        try:
            job = model_services.training_job_start(
                tenant=request.tenant, membership=request.membership, user=request.user,
                dataset=dataset, model_name=data.get("model_name", ""), spec=_spec_from_post(data, columns))
        except PAGE_ERRORS as exc:
            errors, general = _form_errors(exc)
        else:
            messages.success(request, "Training started. This page follows it live.")
            return redirect("job_detail", job_id=job.id)
    elif request.method == "POST":
        general = ["Choose a dataset first."]
    identifiers = ({c["name"] for c in profile["columns"] if looks_like_identifier(c, profile["rows"])}
                   if profile else set())
    chosen_features = (data.getlist("features") if "features" in data
                       else [c for c in columns if c != target and c not in identifiers])
    return render(request, "mlcore/models/train.html", {
        "datasets": datasets, "dataset": dataset, "columns": profile["columns"] if profile else [],
        "target": target, "target_type": by_name.get(target, {}).get("type"), "features": chosen_features, "identifiers": identifiers, "algorithm": algorithm,
        "algorithms": offered, "tasks": tasks, "params": _param_fields(algorithm, data),
        "suggested_task": suggested_task, "task": task,
        "evaluation": data.get("evaluation", "holdout"), "test_size": data.get("test_size", "0.2"),
        "folds": data.get("folds", "5"),
        "model_name": data.get("model_name") or (f"{dataset.name} model" if dataset else ""),
        "errors": errors, "general_errors": general, "error": bool(errors or general),
    }, status=422 if errors or general else 200)


# --- registry ----------------------------------------------------------------------------------
@member_page(roles=DATA_ROLES)
def models_page(request):
    context, status = filtered_page(request, ModelFilterForm, lambda **filters: model_list(
        membership=request.membership, user_id=request.user.pk, **filters).prefetch_related("versions"))
    return render(request, "mlcore/models/list.html", {
        **context, "can_train": request.membership.can_write_data}, status=status)


@member_page(roles=DATA_ROLES)
def model_detail(request, model_id: int):
    model = get_model_for_user(membership=request.membership, user_id=request.user.pk, model_id=model_id)
    versions = list(model.versions.select_related("created_by").all())
    return render(request, "mlcore/models/detail.html", {
        "model": model, "versions": versions, "metric_keys": comparison.METRIC_KEYS.get(model.task, []),
        "actions": model.allowed_actions, "grants": object_grants(obj=model),
        "monitoring": _monitoring_view(model, versions),
    })


MONITORING_DAYS = 60


def _monitoring_view(model, versions: list) -> dict | None:
    """The production version's last MONITORING_DAYS daily reports: a chart of the worst PSI per
    day with the threshold, the same numbers in a table, and the latest day per feature."""
    production = next((v for v in versions if v.id == model.production_version_id), None)
    if production is None:
        return None
    reports = list(monitoring_reports(version=production, days=MONITORING_DAYS))
    latest = reports[0] if reports else None
    threshold = latest.threshold if latest else monitoring.drift_threshold()
    return {
        "version": production, "reports": reports, "latest": latest, "threshold": threshold,
        "features": sorted((latest.details.get("features") or {}).items()) if latest else [],
        "chart": charts.trend([(r.day.isoformat(), r.max_psi) for r in reversed(reports)],
                              label=f"Largest population stability index per day of {production}, "
                                    f"with the drift threshold {threshold:g}",
                              threshold=threshold, threshold_label="drift threshold"),
    }


def _comparison_rows(model, versions: list) -> list[dict]:
    """One row per thing compared (metrics, then how each version was made); `differs` marks
    the rows where the versions are not alike, `best` the best value of a metric row."""
    metric_sets = [v.metrics for v in versions]
    best = comparison.best_values(model.task, metric_sets)
    rows = [{"kind": "metric", "group": "metrics", "label": key, "key": key, "differs": False,
             "cells": [{"value": m.get(key), "best": key in best and m.get(key) == best[key]} for m in metric_sets]}
            for key in comparison.METRIC_KEYS.get(model.task, [])]

    def row(label: str, values: list, kind: str = "text", *, mark: bool = True) -> dict:
        return {"kind": kind, "group": "made", "label": label,
                "differs": mark and len({str(v) for v in values}) > 1,
                "cells": [{"value": v} for v in values]}

    rows.append(row("Algorithm", [ALGORITHMS[v.algorithm].label if v.algorithm in ALGORITHMS else v.algorithm
                                  for v in versions]))
    for name in dict.fromkeys(key for v in versions for key in v.params):
        labels = [ALGORITHMS[v.algorithm].params[name].label for v in versions
                  if v.algorithm in ALGORITHMS and name in ALGORITHMS[v.algorithm].params]
        rows.append(row(labels[0] if labels else name, [v.params.get(name, "—") for v in versions], "param"))
    rows.append(row("Evaluation", [_evaluation_label(v.evaluation) for v in versions]))
    rows.append(row("Training dataset", [f"{v.dataset_name} ({v.dataset_rows:,} rows)" for v in versions]))
    rows.append(row("Target", [v.target for v in versions]))
    rows.append(row("Features", [sorted(v.features) for v in versions], "list"))
    # Who, when and how long always differ and say nothing about the model: not marked.
    rows.append(row("Created by", [v.created_by.email if v.created_by else "—" for v in versions], mark=False))
    rows.append(row("Created", [v.created_at for v in versions], "date", mark=False))
    rows.append(row("Training time", [v.train_seconds for v in versions], "seconds", mark=False))
    return rows


def _evaluation_label(evaluation: dict) -> str:
    if evaluation.get("method") == "kfold":
        return f"{evaluation.get('folds')}-fold cross-validation"
    if evaluation.get("method") == "holdout":
        return f"hold-out of {float(evaluation.get('test_size', 0.2)):.0%} of the rows"
    return "—"


@require_GET
@member_page(roles=DATA_ROLES)
def model_compare(request, model_id: int):
    model = get_model_for_user(membership=request.membership, user_id=request.user.pk, model_id=model_id)
    asked = request.GET.getlist("versions")
    versions = model_versions_compared(model=model, version_ids=asked)
    error = ""
    if asked and len(versions) < 2:
        error = "Choose at least two versions of this model to compare."
    return render(request, "mlcore/models/compare.html", {
        "model": model, "versions": versions if len(versions) >= 2 else [], "error": error,
        "all_versions": model.versions.order_by("-version"), "chosen": {v.id for v in versions},
        "rows": _comparison_rows(model, versions) if len(versions) >= 2 else [],
        "main_metric": comparison.main_metric(model.task, *[v.metrics for v in versions]),
        "actions": model.allowed_actions,
    }, status=400 if error else 200)


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


def _confusion_cells(confusion: dict | None) -> list[dict] | None:
    """Each actual class's row with every cell's share of that row (0..1) and a colour step 0..5,
    so the page can shade the matrix (by class: no inline styles under the CSP)."""
    if not confusion:
        return None
    rows = []
    for i, (label, counts) in enumerate(zip(confusion["labels"], confusion["matrix"], strict=False)):
        total = sum(counts) or 1
        rows.append({"label": label, "cells": [
            {"n": n, "share": n / total, "step": round(5 * n / total), "diagonal": i == j}
            for j, n in enumerate(counts)]})
    return rows


def _threshold_view(version) -> dict | None:
    """The decision-threshold card of a two-class version trained with the precision-recall data."""
    curve = version.charts.get("precision_recall")
    if not curve:
        return None
    current = version.decision_threshold
    applied = 0.5 if current is None else current
    nearest = min(curve["thresholds"], key=lambda row: abs(row["threshold"] - applied))["threshold"]
    return {
        "curve": curve, "current": current, "nearest": nearest,
        "suggested": current if current is not None else curve["best_f1_threshold"],
        "chart": charts.line([(f"class {curve['class']}", list(zip(curve["recall"], curve["precision"],
                                                                   strict=False)))],
                             label=f"Precision-recall curve of {version}", x_label="recall",
                             y_label="precision"),
    }


@member_page(roles=DATA_ROLES)
def model_version(request, version_id: int):
    version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                         version_id=version_id)
    model = version.model
    confusion = _confusion_cells(version.charts.get("confusion_matrix"))
    return render(request, "mlcore/models/version.html", {
        "version": version, "model": model, "actions": model.allowed_actions,
        "charts": _version_charts(version), "confusion": confusion,
        "is_production": model.production_version_id == version.id,
        "metrics": sorted((k, v) for k, v in version.metrics.items() if isinstance(v, (int, float))),
        "metrics_std": version.evaluation.get("metrics_std") or {},
        "try_fields": try_fields(version),
        "lineage": version_lineage(membership=request.membership, user_id=request.user.pk, version=version),
        "threshold": _threshold_view(version),
        # Jobs are seen by admins and by whoever started them (selectors.job_list): link only then.
        "job_visible": request.membership.role == "admin" or version.created_by_id == request.user.pk,
    })


@require_http_methods(["GET", "POST"])
@member_page(roles=WRITER_ROLES)
def model_version_promote(request, version_id: int):
    """GET: the confirmation step, the candidate beside the version in production with a warning
    when it is worse; POST with confirm=yes (sent only by that page) promotes. A POST without it
    changes nothing and shows the confirmation."""
    version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                         version_id=version_id, need=EDIT)
    model = version.model
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        model = model_services.model_version_promote(tenant=request.tenant, version=version)
        messages.success(request, f"Version {version.version} of {model.name} is now in production.")
        return redirect("model_detail", model_id=model.id)
    if request.method == "POST":
        return redirect("model_version_promote", version_id=version.id)
    production = model.production_version
    if production is not None and production.id == version.id:
        messages.info(request, f"Version {version.version} is already in production.")
        return redirect("model_detail", model_id=model.id)
    return render(request, "mlcore/models/promote.html", {
        "model": model, "version": version, "production": production,
        "verdict": comparison.against_production(model.task, version.metrics,
                                                 production.metrics if production else None),
        "rows": [r for r in _comparison_rows(model, [production, version]) if r["group"] == "made"] if production else [],
        "pair": [production, version], "main_metric": None,
    })


@require_POST
@member_page(roles=WRITER_ROLES)
def model_version_threshold(request, version_id: int):
    """Set (threshold=0.01..0.99) or clear (reset=1) a two-class version's decision threshold."""
    version = get_model_version_for_user(membership=request.membership, user_id=request.user.pk,
                                         version_id=version_id, need=EDIT)
    threshold = None
    if not request.POST.get("reset"):
        try:
            threshold = float(request.POST.get("threshold", ""))
        except ValueError:
            messages.error(request, "Enter the threshold as a number from 0.01 to 0.99.")
            return redirect(f"{reverse('model_version', args=[version.id])}#threshold")
    try:
        model_services.model_version_threshold_set(tenant=request.tenant, version=version, threshold=threshold)
    except PAGE_ERRORS as exc:
        messages.error(request, page_error(exc)[0])
    else:
        positive = version.classes[1]
        messages.success(request, f"Version {version.version} now predicts '{positive}' when its probability is "
                                  f"at least {threshold:g}." if threshold is not None else
                                  f"Version {version.version} now predicts the more probable class.")
    return redirect(f"{reverse('model_version', args=[version.id])}#threshold")


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
