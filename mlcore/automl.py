"""The model search job ("Find the best model"): one trial per turn, then the winner refit as a
model version through the training job's own path (training.train_and_register).

Every turn (a claim of the job's ticket) runs in its own process like any job, so its CPU-seconds
are read from that process and metered to the workspace and the member when it ends
(jobs.runner._requeue_turn). Between trials the search gives its worker back (JobYield) and waits
in line behind everybody's jobs: the fair scheduler picks what runs next, so a search never holds
a worker for longer than one trial.

Budgets (Job.params): `budget_seconds` of wall time since the search started and
`budget_cpu_seconds` of metered CPU, never more than the workspace's and the member's CPU-seconds
left (read again every turn). Before each trial the search estimates what the trial, its turn and
the final refit will cost from what its turns cost so far, and stops trying when that would pass
a budget; it then refits the best trial. Cancelling keeps the finished trials (rows of their own).
"""

from __future__ import annotations

import logging
import resource
from dataclasses import replace

from django.utils import timezone

from tenants.limits import quotas

from . import storage
from .jobs.handlers import JobCancelled, JobContext, JobFailed, JobYield, job_handler
from .models import Dataset, Job, SearchTrial
from .services.datasets import dataset_profile
from .storage import DATASETS
from .training import train_and_register

logger = logging.getLogger(__name__)

SAFETY = 1.5  # an estimate of a trial's cost is multiplied by this before comparing to the budget
# The refit evaluates on the hold-out split and fits again on every row: about 1.8x the training
# rows, where a trial at fraction f fits on f x 0.6 of them (0.8 training split x 0.75 fitting).
REFIT_FACTOR = 1.8 / 0.6
REFIT_FIXED_SECONDS = 1.0  # storing, compiling to ONNX, feature importance


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@job_handler(Job.Kind.SEARCH)
def run_search(ctx: JobContext) -> None:
    from . import ml
    from .ml import search

    turn_started = _own_cpu_seconds()
    params = ctx.job.params
    dataset = Dataset.objects.filter(pk=params["dataset"]).first()
    if dataset is None:
        raise JobFailed(f"The dataset '{params.get('dataset_name', params['dataset'])}' was deleted "
                        f"during the search, so there is nothing to train on.")
    spec = ml.TrainSpec.from_dict(params["spec"])
    spec.n_jobs = 1
    trials = _trials(ctx.job)
    step = search.next_trial(len(params["candidates"]), trials, params["metric"])
    stop = "Every planned trial ran." if step is None else _over_budget(ctx, trials, step, turn_started)
    if stop:
        _refit_best(ctx, dataset, spec, trials, stop)
        return
    if ctx.should_stop():
        raise JobCancelled()
    _run_trial(ctx, dataset, spec, trials, step)
    raise JobYield(f"Waiting for its next turn ({len(trials) + 1} trials done)")


def _trials(job: Job) -> list[dict]:
    return list(SearchTrial.objects.filter(job=job).order_by("number").values(
        "number", "rung", "candidate", "fraction", "algorithm", "status", "score", "seconds", "cpu_seconds"))


def _estimate(trials: list[dict], candidate: int, algorithm: str, fraction: float, key: str) -> float:
    """What a trial of `candidate` at `fraction` will cost (CPU or wall seconds), scaled from the
    closest trial already run: the same candidate, else the same algorithm, else any."""
    for match in (lambda t: t["candidate"] == candidate, lambda t: t["algorithm"] == algorithm, lambda t: True):
        seen = [t[key] * fraction / t["fraction"] for t in trials if match(t)]
        if seen:
            return max(seen)
    return 0.0


def _over_budget(ctx: JobContext, trials: list[dict], step: tuple[int, int], turn_started: float) -> str:
    """Why the next trial may not run ("" when it may): it, its turn and the refit after it must
    fit in what is left of the wall time and the CPU-seconds."""
    from .ml import search
    from .ml.search import RUNG_FRACTIONS

    job, params = ctx.job, ctx.job.params
    rung, candidate = step
    fraction = RUNG_FRACTIONS[rung]
    algorithm = params["candidates"][candidate]["algorithm"]
    done = max(len(trials), 1)
    # After this trial the winner is the best so far or this one: the refit is sized on both.
    best = search.best(trials, params["metric"])

    spent = job.prior_cpu_seconds + (_own_cpu_seconds() - turn_started)
    left = quotas.cpu_seconds_remaining(ctx.tenant, user_id=job.created_by_id)
    cpu_cap = min(float(params["budget_cpu_seconds"]), job.prior_cpu_seconds + left)
    turn_cpu = max(job.prior_cpu_seconds - sum(t["cpu_seconds"] for t in trials), 0.0) / done
    trial_cpu = _estimate(trials, candidate, algorithm, fraction, "cpu_seconds")
    refit_cpu = REFIT_FACTOR * max(trial_cpu / fraction, best["cpu_seconds"] / best["fraction"] if best else 0.0)
    need_cpu = SAFETY * (trial_cpu + refit_cpu) + 2 * turn_cpu + REFIT_FIXED_SECONDS
    if spent + need_cpu > cpu_cap:
        which = "the workspace's or your CPU-seconds left" if cpu_cap < params["budget_cpu_seconds"] else "its CPU budget"
        return f"Stopped trying: another trial and the final fit would pass {which} ({cpu_cap:,.1f} s)."

    elapsed = (timezone.now() - job.started_at).total_seconds() if job.started_at else 0.0
    turn_wall = max(elapsed - sum(t["seconds"] for t in trials), 0.0) / done
    trial_wall = _estimate(trials, candidate, algorithm, fraction, "seconds")
    refit_wall = REFIT_FACTOR * max(trial_wall / fraction, best["seconds"] / best["fraction"] if best else 0.0)
    if elapsed + SAFETY * (trial_wall + refit_wall) + 2 * turn_wall + REFIT_FIXED_SECONDS > params["budget_seconds"]:
        return f"Stopped trying: another trial and the final fit would pass its time budget ({params['budget_seconds']:,} s)."
    return ""


def _read_split(ctx: JobContext, dataset: Dataset, spec):
    from . import ml
    from .ml import search

    columns = [spec.target, *spec.features]
    types = {c["name"]: c["type"] for c in dataset_profile(tenant=ctx.tenant, dataset=dataset)["columns"]}
    try:
        with storage.open_object(ctx.tenant, DATASETS, str(dataset.object_id)) as stream:
            frame = ml.read_frame(stream, dataset.format, columns, {n: types[n] for n in columns},
                                  encoding=dataset.encoding)
        return search.validation_split(frame, spec, types), types
    except ml.MLError as exc:
        raise JobFailed(str(exc))
    except storage.StorageError as exc:
        raise JobFailed(f"The dataset could not be read: {exc}")


def _run_trial(ctx: JobContext, dataset: Dataset, spec, trials: list[dict], step: tuple[int, int]) -> None:
    from . import ml
    from .ml import search

    params = ctx.job.params
    rung, candidate_index = step
    candidate = params["candidates"][candidate_index]
    planned = search.planned_trials(len(params["candidates"]))
    number = len(trials) + 1
    label = ml.ALGORITHMS[candidate["algorithm"]].label
    ctx.progress(85 * len(trials) / max(planned, number), f"Trial {number} of about {planned}: {label}", force=True)
    split, types = _read_split(ctx, dataset, spec)
    cpu_before = _own_cpu_seconds()
    outcome = {"status": SearchTrial.Status.SUCCEEDED, "error": "", "metrics": {}, "rows": 0, "seconds": 0.0}
    try:
        found = search.run_trial(split, spec, types, candidate, search.RUNG_FRACTIONS[rung])
        outcome.update(metrics=found["metrics"], rows=found["rows"], seconds=found["seconds"])
    except ml.TrainingError as exc:
        outcome.update(status=SearchTrial.Status.FAILED, error=str(exc)[:500])
    score = outcome["metrics"].get(params["metric"])
    if outcome["status"] == SearchTrial.Status.SUCCEEDED and search.higher_is_better_score(params["metric"], score) is None:
        outcome.update(status=SearchTrial.Status.FAILED, error=f"No {params['metric']} on the validation rows.")
    SearchTrial.objects.get_or_create(job=ctx.job, rung=rung, candidate=candidate_index, defaults=dict(
        number=number, fraction=search.RUNG_FRACTIONS[rung], rows=outcome["rows"],
        algorithm=candidate["algorithm"], params=candidate["params"], status=outcome["status"],
        metric=params["metric"], score=score if outcome["status"] == SearchTrial.Status.SUCCEEDED else None,
        metrics=outcome["metrics"], error=outcome["error"], seconds=outcome["seconds"],
        cpu_seconds=round(_own_cpu_seconds() - cpu_before, 3)))


def _refit_best(ctx: JobContext, dataset: Dataset, spec, trials: list[dict], stop: str) -> None:
    from .ml import search

    params = ctx.job.params
    winner = search.best(trials, params["metric"])
    if winner is None:
        first_error = SearchTrial.objects.filter(job=ctx.job).exclude(error="").values_list("error", flat=True).first()
        raise JobFailed("No trial succeeded, so there is no model to keep."
                        + (f" The first trial's error: {first_error}" if first_error else " The budget allowed no trial."))
    ctx.progress(86, f"Refitting the best trial (#{winner['number']}) on the whole training split", force=True)
    chosen = params["candidates"][winner["candidate"]]
    best_spec = replace(spec, algorithm=chosen["algorithm"], params=dict(chosen["params"]))
    train_and_register(ctx, dataset, best_spec, start=86,
                       result_extra={"best_trial": winner["number"], "trials": len(trials), "stop_reason": stop})
