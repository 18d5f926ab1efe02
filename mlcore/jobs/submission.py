"""Submitting and cancelling jobs (what services call), and waking a worker for a queue."""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.auditing import audit
from tenants.limits import quotas, scheduler
from tenants.models import Tenant

from ..models import Job

logger = logging.getLogger(__name__)

# A model search runs its trials on the training queue, one turn at a time (mlcore/automl.py).
KIND_QUEUES = {Job.Kind.TRAINING: "training", Job.Kind.PREDICTION: "prediction", Job.Kind.SEARCH: "training"}
# Sent by name, so that submitting a job does not import the tasks that run it (mlcore.tasks).
RUN_JOBS_TASK = "mlcore.run_jobs"


def queue_for(kind: str) -> str:
    """Separate queues: long training never blocks scoring."""
    return settings.PORTAL_QUEUE_PREFIX + KIND_QUEUES[kind]


def all_queues() -> list[str]:
    return list(dict.fromkeys(queue_for(kind) for kind in KIND_QUEUES))


def job_submit(*, tenant: Tenant, user, kind: str, params: dict, dataset=None, message: str = "") -> Job:
    """Create the job and its ticket (call inside the service's transaction); the worker is woken
    once the transaction commits. Refused when the month's CPU budget is spent."""
    quotas.cpu_budget_check(tenant, user_id=user.pk)
    job = Job.objects.create(kind=kind, params=params, created_by_id=user.pk, dataset=dataset,
                             message=message or "Waiting for a worker")
    queue = queue_for(kind)
    scheduler.ticket_create(tenant=tenant, user_id=user.pk, job_id=job.id, kind=kind, queue=queue)
    transaction.on_commit(lambda: wake(queue))
    return job


def wake(queue: str) -> None:
    try:
        current_app.send_task(RUN_JOBS_TASK, args=[queue], queue=queue)
    except Exception:  # the broker is down: the periodic kick will wake a worker later
        logger.exception("could not send a wake-up", extra={"queue": queue})


def job_cancel(*, tenant: Tenant, job: Job) -> Job:
    """Queued jobs are cancelled at once; running ones are stopped by their worker within seconds."""
    if job.is_finished:
        return job
    with transaction.atomic():
        ticket = scheduler.request_cancel(tenant=tenant, job_id=job.id)
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status == Job.Status.QUEUED:
            locked.status = Job.Status.CANCELLED
            locked.message = "Cancelled before it started"
            locked.finished_at = timezone.now()
            locked.save(update_fields=["status", "message", "finished_at"])
            if ticket is not None:
                scheduler.ticket_finish(ticket.id)
        else:
            locked.message = "Stopping…"
            locked.save(update_fields=["message"])
        audit.record("job.cancel", tenant=tenant, object_type="job", object_id=job.id,
                     details={"kind": job.kind, "status_before": job.status})
    job.refresh_from_db()
    return job
