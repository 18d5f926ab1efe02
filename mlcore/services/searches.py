"""Writes for model searches ("Find the best model"): start one, cancel one.

A search is a Job of kind "search" (mlcore/automl.py runs it); its trials are SearchTrial rows.
Page and API both call search_start, which holds every check: the dataset's profile, the
algorithms and metric, the budgets, the model name, the model-version room, and the month's
CPU-seconds (the workspace's and the member's own).
"""

from __future__ import annotations

from django.db import transaction

from tenants.accounts.access import MembershipInfo
from tenants.auditing import audit
from tenants.errors import ServiceError
from tenants.limits import quotas
from tenants.models import Tenant

from .. import jobs
from ..models import Dataset, Job
from .datasets import dataset_profile
from .models import TrainingRefused, check_model_name, check_version_room

MIN_BUDGET_SECONDS, MAX_BUDGET_SECONDS = 5, 86_400
MIN_BUDGET_CPU_SECONDS, MAX_BUDGET_CPU_SECONDS = 2, 10_000_000


class SearchRefused(ServiceError):
    status = 400
    code = "invalid"


def _budget(value, *, field: str, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SearchRefused(f"The {what} must be a whole number of seconds from {low:,} to {high:,}.", field=field)
    return int(value)


def search_start(*, tenant: Tenant, membership: MembershipInfo, user, dataset: Dataset, target: str,
                 budget_seconds: int, budget_cpu_seconds: int, algorithms: list[str] | None = None,
                 metric: str | None = None, features: list[str] | None = None, task: str | None = None,
                 model_name: str = "") -> Job:
    """Validate, then queue the search. Its CPU budget is capped at the CPU-seconds left this
    month (the workspace's and the member's); with none left it is refused (403 quota)."""
    from ..ml import search
    from ..ml.spec import SpecError, validate_spec

    budget_seconds = _budget(budget_seconds, field="budget_seconds", low=MIN_BUDGET_SECONDS,
                             high=MAX_BUDGET_SECONDS, what="time budget")
    budget_cpu_seconds = _budget(budget_cpu_seconds, field="budget_cpu_seconds", low=MIN_BUDGET_CPU_SECONDS,
                                 high=MAX_BUDGET_CPU_SECONDS, what="CPU budget")
    model_name = check_model_name(membership=membership, user=user,
                                  model_name=model_name or f"{dataset.name[:150]} · best for {target}"[:200])
    profile = dataset_profile(tenant=tenant, dataset=dataset)
    by_name = {c["name"]: c for c in profile["columns"]}
    if task in (None, "") and isinstance(target, str) and target in by_name:
        from ..ml.spec import infer_task

        task = infer_task(by_name[target])
    if not features:
        # A customer number or a name cannot generalise (and stops training): left out by default.
        from ..ml.spec import looks_like_identifier

        features = [name for name, column in by_name.items()
                    if name != target and not looks_like_identifier(column, dataset.rows)] or None
    offered = search.algorithms_for(task) if task in ("classification", "regression") else ["random_forest"]
    try:
        checked = validate_spec({"target": target, "features": features, "task": task, "algorithm": offered[0]},
                                profile["columns"], dataset.rows)
    except SpecError as exc:
        raise TrainingRefused(str(exc), field=getattr(exc, "field", None))
    chosen = _algorithms(algorithms, checked.task)
    metric = _metric(metric, checked.task)
    check_version_room(tenant)
    # Refused with the quota problem naming whose budget when too little is left to try anything.
    quotas.cpu_budget_check(tenant, user_id=user.pk, need=MIN_BUDGET_CPU_SECONDS)
    left = quotas.cpu_seconds_remaining(tenant, user_id=user.pk)
    params = {"dataset": dataset.id, "dataset_name": dataset.name, "model_name": model_name,
              "spec": checked.to_dict(), "metric": metric, "algorithms": chosen,
              "candidates": search.candidates(checked.task, chosen), "budget_seconds": budget_seconds,
              "budget_cpu_seconds": min(budget_cpu_seconds, left), "budget_cpu_seconds_asked": budget_cpu_seconds}
    with transaction.atomic():
        job = jobs.job_submit(tenant=tenant, user=user, kind=Job.Kind.SEARCH, params=params, dataset=dataset,
                              message="Waiting for a worker to start the search")
        audit.record("search.start", tenant=tenant, object_type="job", object_id=job.id,
                     details={"dataset": dataset.id, "model_name": model_name, "target": checked.target,
                              "algorithms": chosen, "metric": metric, "budget_seconds": budget_seconds,
                              "budget_cpu_seconds": params["budget_cpu_seconds"]})
    return job


def _algorithms(algorithms: list[str] | None, task: str) -> list[str]:
    from ..ml import ALGORITHMS, search

    fitting = search.algorithms_for(task)
    if not algorithms:
        return fitting
    if isinstance(algorithms, str) or not isinstance(algorithms, list | tuple):
        raise SearchRefused("Algorithms must be a list of names.", field="algorithms")
    for name in algorithms:
        if name not in ALGORITHMS:
            raise SearchRefused(f"Unknown algorithm '{name}'. Choose from: {', '.join(fitting)}.", field="algorithms")
        if name not in fitting:
            raise TrainingRefused(f"{ALGORITHMS[name].label} cannot be used for {task}. For {task} choose from: "
                                  f"{', '.join(fitting)}.", field="algorithms")
    return list(dict.fromkeys(algorithms))


def _metric(metric: str | None, task: str) -> str:
    from ..ml import search

    if metric in (None, ""):
        return search.default_metric(task)
    if metric not in search.metrics_for(task):
        raise SearchRefused(f"The metric for {task} must be one of: {', '.join(search.metrics_for(task))}.",
                            field="metric")
    return metric


def search_cancel(*, tenant: Tenant, job: Job) -> Job:
    """Stops the search (at once while it waits for its turn, within seconds while a trial runs);
    the trials that finished stay."""
    return jobs.job_cancel(tenant=tenant, job=job)
