"""Webhook events of the tenant's schema (jobs, models): built here, sent by tenants.webhooks.

Each is emitted inside the transaction of the change it announces (the job's final write, the
promotion), so a change that rolls back announces nothing.
"""

from __future__ import annotations

from tenants.models import Tenant
from tenants.webhooks import events
from tenants.webhooks.services import event_emit

from ..models import Job, ModelVersion


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def job_ended(*, tenant: Tenant, job: Job) -> None:
    """job.succeeded / job.failed for a job that has just ended (cancelled jobs announce nothing)."""
    event_type = {Job.Status.SUCCEEDED: events.JOB_SUCCEEDED, Job.Status.FAILED: events.JOB_FAILED}.get(job.status)
    if event_type is None:
        return
    event_emit(tenant=tenant, event_type=event_type, data={"job": {
        "id": job.id, "kind": job.kind, "status": job.status, "error": job.error,
        "result": job.result or {}, "dataset": job.dataset_id, "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at),
        "cpu_seconds": job.cpu_seconds}})


def model_version_promoted(*, tenant: Tenant, version: ModelVersion, previous: int | None) -> None:
    event_emit(tenant=tenant, event_type=events.MODEL_VERSION_PROMOTED, data={
        "model": {"id": version.model_id, "name": version.model.name},
        "model_version": {"id": version.id, "version": version.version, "algorithm": version.algorithm,
                          "metrics": version.metrics},
        "previous_version": previous})
