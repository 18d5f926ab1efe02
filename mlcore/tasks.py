"""Celery tasks: thin wake-ups. The work and its state live in PostgreSQL (mlcore/jobs/)."""

from celery import shared_task

from tenants.limits import scheduler

from .jobs import runner
from .jobs.submission import RUN_JOBS_TASK, all_queues, wake


@shared_task(name=RUN_JOBS_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_jobs(queue: str) -> int:
    """Run whatever may start on this queue now; a duplicate or stale wake-up finds nothing."""
    return runner.run_available(queue)


@shared_task(name="mlcore.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> int:
    return runner.reap_stale_jobs()


@shared_task(name="mlcore.kick_queues", ignore_result=True)
def kick_queues() -> None:
    for queue in all_queues():
        if scheduler.has_queued(queue):
            wake(queue)


@shared_task(name="mlcore.sweep_partial_files", ignore_result=True)
def sweep_partial_files() -> int:
    from . import storage

    return storage.sweep_partial_files()


@shared_task(name="mlcore.job_notify", ignore_result=True, autoretry_for=(OSError,), retry_backoff=30,
             retry_backoff_max=3600, max_retries=8)
def job_notify(schema_name: str, job_id: int) -> bool:
    """E-mail a long job's owner that it ended (mlcore.services.notifications)."""
    from tenants.models import Tenant

    from .services import notifications

    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant is None:
        return False
    return notifications.job_notify(tenant=tenant, job_id=job_id)


@shared_task(name="mlcore.reap_upload_leases", ignore_result=True)
def reap_upload_leases() -> int:
    from .services import usage

    return len(usage.reap_upload_leases())


@shared_task(name="mlcore.reconcile_usage", ignore_result=True)
def reconcile_usage() -> int:
    from .services import usage

    return len(usage.usage_reconcile())


@shared_task(name="mlcore.monitoring_daily", ignore_result=True)
def monitoring_daily(day: str | None = None) -> int:
    """Beat (public schema): one monitoring_report task per tenant's production version, for
    yesterday unless `day` (YYYY-MM-DD) is given."""
    from datetime import timedelta

    from celery import current_app
    from django.utils import timezone
    from django_tenants.utils import get_public_schema_name, tenant_context

    from tenants.models import Tenant

    from .services import monitoring

    day = day or (timezone.now().date() - timedelta(days=1)).isoformat()
    sent = 0
    for tenant in Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("id"):
        with tenant_context(tenant):
            version_ids = monitoring.production_version_ids()
        for version_id in version_ids:
            current_app.send_task("mlcore.monitoring_report", args=[tenant.schema_name, version_id, day])
            sent += 1
    return sent


@shared_task(name="mlcore.monitoring_report", ignore_result=True, autoretry_for=(OSError,), retry_backoff=60,
             max_retries=5)
def monitoring_report(schema_name: str, version_id: int, day: str) -> bool:
    """One version's day (mlcore.services.monitoring); run again, it replaces the day's report."""
    from datetime import date

    from tenants.models import Tenant

    from .services import monitoring

    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant is None:
        return False
    report = monitoring.monitoring_report_run(tenant=tenant, version_id=version_id, day=date.fromisoformat(day))
    return report is not None


@shared_task(name="mlcore.fire_due_schedules", ignore_result=True)
def fire_due_schedules() -> int:
    """Every minute (beat, in public): each tenant's due schedules, as their makers."""
    from .services import schedules

    return schedules.schedules_fire_all_tenants()
