"""Reads and small writes about jobs that pages and the API share."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from tenants.limits import scheduler
from tenants.models import JobTicket, Tenant

from ..models import Job

# A running job's worker sends a heartbeat every 2 s; after this long without one the job's page
# says the worker was lost, well before the reaper (PORTAL_JOB_STALE_SECONDS) acts on it.
WORKER_SILENT_SECONDS = 10


def wait_reason(*, tenant: Tenant, job: Job) -> str:
    """Why a queued job has not started (a limit, or its place in the line), or, for a running job
    whose worker has gone silent, that the worker was lost and what happens next."""
    if job.status not in (Job.Status.QUEUED, Job.Status.RUNNING):
        return ""
    ticket = JobTicket.objects.filter(tenant=tenant, job_id=job.id).first()
    if ticket is None:
        return ""
    if job.status == Job.Status.RUNNING:
        return _worker_lost_note(ticket)
    if ticket.wait_reason:
        return ticket.wait_reason
    ahead = scheduler.queue_position(ticket)
    return "waiting for a free worker" + (f" ({ahead} jobs ahead)" if ahead else "")


def _worker_lost_note(ticket: JobTicket) -> str:
    silent = timedelta(seconds=min(WORKER_SILENT_SECONDS, settings.PORTAL_JOB_STALE_SECONDS))
    if ticket.state != JobTicket.State.RUNNING or ticket.heartbeat_at is None:
        return ""
    if timezone.now() - ticket.heartbeat_at < silent:
        return ""
    return scheduler.lost_note(ticket, what="The worker running this job stopped")


# Below this share done, or this soon after the start, a projection says little.
ESTIMATE_MIN_PERCENT = 5.0
ESTIMATE_MIN_SECONDS = 3.0


def job_timing(*, job: Job, now=None) -> dict:
    """Time the job has run (so far, or in all), and for a running job an estimate of the time
    left: the time spent, scaled by the share of the work still to do. Training reports its
    stages in proportion to the rows each fits on (ml.training.stage_fractions), so the progress
    fraction tracks the work; the estimate is None while too little is done to project."""
    if job.started_at is None:
        return {"elapsed_seconds": None, "remaining_seconds": None}
    end = job.finished_at if job.is_finished and job.finished_at else (now or timezone.now())
    elapsed = max(0.0, (end - job.started_at).total_seconds())
    remaining = None
    percent = job.progress or 0.0
    if (job.status == Job.Status.RUNNING and ESTIMATE_MIN_PERCENT <= percent < 100
            and elapsed >= ESTIMATE_MIN_SECONDS):
        remaining = elapsed * (100.0 - percent) / percent
    return {"elapsed_seconds": elapsed, "remaining_seconds": remaining}


def search_best_trial(job: Job):
    """The leading trial of a model search (its trials prefetched): the best score on the highest
    rung reached, as the search itself picks its winner (ml.search.best)."""
    from ..ml import search

    trials = list(job.trials.all())
    rows = [{"number": t.number, "rung": t.rung, "candidate": t.candidate, "status": t.status,
             "score": t.score} for t in trials]
    winner = search.best(rows, job.params.get("metric", ""))
    return next((t for t in trials if winner and t.number == winner["number"]), None)
