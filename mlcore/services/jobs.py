"""Reads and small writes about jobs that pages and the API share."""

from __future__ import annotations

from tenants.limits import scheduler
from tenants.models import JobTicket, Tenant

from ..models import Job


def wait_reason(*, tenant: Tenant, job: Job) -> str:
    """Why a queued job has not started: a limit, or its place in the line."""
    if job.status != Job.Status.QUEUED:
        return ""
    ticket = JobTicket.objects.filter(tenant=tenant, job_id=job.id).first()
    if ticket is None:
        return ""
    if ticket.wait_reason:
        return ticket.wait_reason
    ahead = scheduler.queue_position(ticket)
    return "waiting for a free worker" + (f" ({ahead} jobs ahead)" if ahead else "")
