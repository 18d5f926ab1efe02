"""Celery tasks: thin wake-ups. The work and its state live in PostgreSQL (mlcore/jobs.py)."""

from celery import shared_task

from tenants import scheduler

from . import jobs


@shared_task(name="mlcore.run_jobs", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_jobs(queue: str) -> int:
    """Run whatever may start on this queue now; a duplicate or stale wake-up finds nothing."""
    return jobs.run_available(queue)


@shared_task(name="mlcore.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> int:
    return jobs.reap_stale_jobs()


@shared_task(name="mlcore.kick_queues", ignore_result=True)
def kick_queues() -> None:
    for queue in jobs.all_queues():
        if scheduler.has_queued(queue):
            jobs.wake(queue)


@shared_task(name="mlcore.sweep_partial_files", ignore_result=True)
def sweep_partial_files() -> int:
    from . import storage

    return storage.sweep_partial_files()
