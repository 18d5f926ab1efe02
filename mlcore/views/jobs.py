"""HTML pages: jobs, with a live progress bar (htmx polling of a small partial)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tenants.accounts.access import WRITER_ROLES
from tenants.web.middleware import audit_exempt
from tenants.web.pages import member_page

from .. import jobs
from ..models import ModelVersion
from ..selectors import get_job_for_user, job_list
from ..services.jobs import job_timing, wait_reason
from .listing import JobFilterForm, filtered_page


def _job(request, job_id):
    return get_job_for_user(membership=request.membership, user_id=request.user.pk, job_id=job_id)


@member_page(roles=WRITER_ROLES)
def jobs_page(request):
    context, status = filtered_page(request, JobFilterForm, lambda **filters: job_list(
        membership=request.membership, user_id=request.user.pk, **filters))
    return render(request, "mlcore/jobs/list.html", context, status=status)


def _status_context(request, job) -> dict:
    version = getattr(job, "model_version", None) if job.kind in (job.Kind.TRAINING, job.Kind.SEARCH) else None
    return {"job": job, "wait_reason": wait_reason(tenant=request.tenant, job=job),
            "version": version if job.status == job.Status.SUCCEEDED else None,
            "timing": job_timing(job=job)}


@member_page(roles=WRITER_ROLES)
def job_detail(request, job_id: int):
    job = _job(request, job_id)
    context = _status_context(request, job)
    if job.kind == job.Kind.PREDICTION:
        # Linked only while the version exists (its page says who may open it).
        context["scored_version_exists"] = ModelVersion.objects.filter(pk=job.params.get("model_version")).exists()
    return render(request, "mlcore/jobs/detail.html", context)


@audit_exempt  # polled every second while the job runs; the job page itself is logged
@member_page(roles=WRITER_ROLES)
def job_status(request, job_id: int):
    job = _job(request, job_id)
    return render(request, "mlcore/jobs/_status.html", _status_context(request, job))


@require_POST
@member_page(roles=WRITER_ROLES)
def job_cancel(request, job_id: int):
    job = jobs.job_cancel(tenant=request.tenant, job=_job(request, job_id))
    if job.status == job.Status.CANCELLED:
        messages.success(request, "The job was cancelled.")
    elif job.is_finished:
        messages.info(request, f"The job had already {job.status}.")
    else:
        messages.info(request, "Stopping the job; this takes a few seconds.")
    return redirect("job_detail", job_id=job.id)
