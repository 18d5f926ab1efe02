"""What a job kind is written against: its registration, its context and the ways it ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from django.utils import timezone

from tenants.limits.quotas import QuotaExceeded
from tenants.models import JobTicket, Tenant

from .. import storage
from ..models import Job

_handlers: dict[str, Callable[[JobContext], None]] = {}


class JobFailed(Exception):
    """Ends the job as failed; the message is shown to the user as is, so write it for them."""


class JobCancelled(Exception):
    pass


class JobYield(Exception):  # noqa: N818 - a way to end a turn, not an error
    """Ends this turn of a job that runs in turns (a model search) after committing its step: the
    worker goes back to the fair scheduler and the job is queued again for its next step. The
    message is what the job's page shows while it waits."""


@contextmanager
def outputs_kept_only_if_registered(tenant: Tenant, kind: str, object_ids: Iterable[str]):
    """A job's stored files outlive it only if the block that registers them ends normally.

    A quota refusal at registration (storage, model versions) fails the job with its message,
    no retry; any other error (or a kill signal turned exception) propagates, files removed.
    """
    try:
        yield
    except QuotaExceeded as exc:
        _remove(tenant, kind, object_ids)
        raise JobFailed(exc.message)
    except BaseException:
        _remove(tenant, kind, object_ids)
        raise


def _remove(tenant: Tenant, kind: str, object_ids: Iterable[str]) -> None:
    for object_id in object_ids:
        storage.delete_object(tenant, kind, object_id)


def job_handler(kind: str):
    def register(func):
        _handlers[kind] = func
        return func

    return register


def handler_for(kind: str) -> Callable[[JobContext], None]:
    return _handlers[kind]


@dataclass
class JobContext:
    tenant: Tenant
    job: Job
    ticket_id: int
    attempt: int
    _last_progress: float = 0.0

    def progress(self, percent: float, message: str, *, force: bool = False) -> None:
        """Within a stage, throttled to ~4 writes a second; a stage change must pass force=True so
        that it is written at once (a throttled stage change is lost until the next one: the page
        showed "Checking columns" through a 35-second evaluation)."""
        now = time.monotonic()
        if not force and now - self._last_progress < 0.25:
            return
        self._last_progress = now
        Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING).update(
            progress=max(0.0, min(100.0, round(percent, 1))), message=message[:300])

    def should_stop(self) -> bool:
        return JobTicket.objects.filter(pk=self.ticket_id, cancel_requested=True).exists()

    def succeed(self, result: dict, message: str = "Done") -> None:
        """Call inside the transaction that writes the job's results: both commit or neither."""
        updated = Job.objects.filter(pk=self.job.pk, status=Job.Status.RUNNING, attempts=self.attempt).update(
            status=Job.Status.SUCCEEDED, progress=100.0, message=message, result=result,
            finished_at=timezone.now(), error="")
        if updated != 1:
            raise JobCancelled()  # someone else finished or re-queued this job meanwhile
