"""E-mail to a job's owner when a long job ends (succeeded or failed).

The worker that finished the job only decides whether an e-mail is due (one query) and queues the
`mlcore.job_notify` task; the task sends it. So a slow or unreachable mail server never holds a
worker, and a send that fails is retried by Celery. `Job.notified_at` makes the e-mail go once:
it is set in the transaction that holds the job's row while the message is sent.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.accounts.hosts import tenant_url
from tenants.models import Tenant

from ..models import Job

logger = logging.getLogger(__name__)

NOTIFY_TASK = "mlcore.job_notify"
ENDED = (Job.Status.SUCCEEDED, Job.Status.FAILED)


def _due(job: Job) -> bool:
    if job.status not in ENDED or job.notified_at is not None or job.finished_at is None:
        return False
    began = job.started_at or job.created_at
    if (job.finished_at - began).total_seconds() < settings.PORTAL_JOB_NOTIFY_AFTER_SECONDS:
        return False
    owner = job.created_by
    return owner is not None and owner.is_active and owner.notify_job_emails and bool(owner.email)


def job_ended(*, tenant: Tenant, job_id: int) -> bool:
    """After a job ended (its transaction committed): queue the owner's e-mail if one is due."""
    from celery import current_app

    with tenant_context(tenant):
        job = Job.objects.select_related("created_by").filter(pk=job_id).first()
        if job is None or not _due(job):
            return False
    try:
        current_app.send_task(NOTIFY_TASK, args=[tenant.schema_name, job_id])
    except Exception:  # the broker is down: losing a courtesy e-mail must not fail the job
        logger.exception("could not queue a job e-mail", extra={"tenant": tenant.slug, "job": job_id})
        return False
    return True


def job_notify(*, tenant: Tenant, job_id: int) -> bool:
    """Send the e-mail of an ended job once (a retried or duplicate task finds it sent)."""
    with tenant_context(tenant), transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("created_by", "dataset").filter(pk=job_id).first()
        if job is None or not _due(job):
            return False
        subject, body = _message(tenant, job)
        send_mail(subject, body, None, [job.created_by.email], fail_silently=False)
        Job.objects.filter(pk=job.pk).update(notified_at=timezone.now())
    logger.info("job e-mail sent", extra={"tenant": tenant.slug, "job": job_id})
    return True


def _message(tenant: Tenant, job: Job) -> tuple[str, str]:
    params, result = job.params or {}, job.result or {}
    if job.kind == Job.Kind.TRAINING:
        what = f"Training of {params.get('model_name', 'a model')}"
        if job.status == Job.Status.SUCCEEDED and result.get("version"):
            what += f" (version {result['version']})"
    elif job.kind == Job.Kind.SEARCH:
        what = f"The search for the best {params.get('model_name', 'model')}"
        if job.status == Job.Status.SUCCEEDED and result.get("version"):
            what += f" (version {result['version']}, best of {result.get('trials', '?')} trials)"
    else:
        what = (f"Batch prediction of {params.get('dataset_name', 'a dataset')} with "
                f"{params.get('model_name', 'a model')} v{params.get('version', '?')}")
    outcome = "finished" if job.status == Job.Status.SUCCEEDED else "failed"
    seconds = int((job.finished_at - (job.started_at or job.created_at)).total_seconds())
    minutes, secs = divmod(seconds, 60)
    lines = [f"{what} {outcome} in {tenant.name} after {minutes} min {secs:02d} s.", ""]
    if job.status == Job.Status.FAILED and job.error:
        lines += [f"Why: {job.error}", ""]
    lines += [f"Job #{job.id}: {tenant_url(tenant, reverse('job_detail', args=[job.id]))}", "",
              "You get this e-mail for jobs that run longer than "
              f"{settings.PORTAL_JOB_NOTIFY_AFTER_SECONDS} s. Turn it off: "
              f"{tenant_url(tenant, reverse('notification_settings'))}"]
    return f"[{tenant.name}] Job #{job.id} {outcome}: {what}", "\n".join(lines)
