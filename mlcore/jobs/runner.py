"""The worker side of jobs: claim, fork, watch (memory, time, heartbeats, cancel), finish, reap.

When a job's process dies, whatever died, one policy applies (`scheduler.retry_after_loss`): the
job's own process dying without a report (killed by a signal, the OOM killer, a crash) is noticed
by the worker at once; the worker itself dying is noticed by the reaper once its heartbeats have
stopped for PORTAL_JOB_STALE_SECONDS. Either way `_job_lost` queues the job again while attempts
remain (MAX_ATTEMPTS counts the first run), with a message saying so, and otherwise fails it with a
message saying the process was lost. Jobs stopped for overrunning their memory or time limit fail
at once: a second run would overrun too.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.auditing import audit
from tenants.limits import quotas, scheduler
from tenants.models import JobTicket, Membership, Tenant
from tenants.webhooks import delivery as webhook_delivery

from ..models import Job
from ..services import events as job_events
from ..services import notifications
from .handlers import JobCancelled, JobContext, JobFailed, JobYield, handler_for
from .submission import all_queues, wake

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
POLL_SECONDS = 0.05
DRAIN_MAX_JOBS = 50
DRAIN_MAX_SECONDS = 600
LOST = "lost"
YIELDED = "yielded"  # the job ended a turn and asked to be queued again (handlers.JobYield)


# --- the worker side -------------------------------------------------------------------------
def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_available(queue: str) -> int:
    """Claim and run jobs from `queue` until none may start (bounded, so shutdowns stay quick)."""
    started, ran = time.monotonic(), 0
    while ran < DRAIN_MAX_JOBS and time.monotonic() - started < DRAIN_MAX_SECONDS:
        ticket = scheduler.claim_next(queue, worker_name())
        if ticket is None:
            return ran
        execute(ticket)
        ran += 1
    if scheduler.has_queued(queue):
        wake(queue)
    return ran


@dataclass
class Outcome:
    status: str  # succeeded | failed | cancelled | yielded | lost (the job's process died without a report)
    error: str = ""
    cpu_ms: int = 0
    peak_memory_bytes: int = 0


def execute(ticket: JobTicket) -> Outcome:
    tenant = ticket.tenant
    with tenant_context(tenant):
        job = Job.objects.filter(pk=ticket.job_id).first()
        if job is None or job.is_finished:
            # Re-delivered or already handled: never run a finished job twice.
            scheduler.ticket_finish(ticket.id)
            return Outcome(status=job.status if job else "failed")
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.RUNNING, started_at=job.started_at or timezone.now(),
            attempts=ticket.attempts, message="Starting", error="")
    if settings.PORTAL_JOB_ISOLATION == "inline":
        outcome = _run_inline(ticket)
    else:
        outcome = _run_in_child(ticket, _job_limits(tenant, ticket.user_id))
    _finish(ticket, outcome)
    return outcome


def _job_limits(tenant: Tenant, user_id: int | None) -> dict[str, int]:
    limits = quotas.effective_limits(tenant)
    member = Membership.objects.filter(tenant=tenant, user_id=user_id).first()
    for key in ("memory_per_job_bytes", "wall_seconds_per_job"):
        if member and key in member.limits:
            limits[key] = min(limits[key], int(member.limits[key]))
    return limits


def _finish(ticket: JobTicket, outcome: Outcome) -> None:
    tenant = ticket.tenant
    now = timezone.now()
    with tenant_context(tenant), transaction.atomic():
        job = Job.objects.select_for_update().get(pk=ticket.job_id)
        if outcome.status == YIELDED and job.status == Job.Status.RUNNING and _requeue_turn(ticket, job, outcome):
            return
        fields = {"cpu_seconds": job.prior_cpu_seconds + outcome.cpu_ms / 1000,
                  "peak_memory_bytes": max(outcome.peak_memory_bytes, job.peak_memory_bytes if job.prior_cpu_seconds else 0)}
        lost = outcome.status == LOST and job.status != Job.Status.SUCCEEDED
        if job.status != Job.Status.SUCCEEDED and not lost:  # the child committed no success: say why
            cancelled = outcome.status == Job.Status.CANCELLED
            fields.update(
                status=Job.Status.CANCELLED if cancelled else Job.Status.FAILED,
                error="" if cancelled else (outcome.error or "The job ended without a result."),
                message="Cancelled" if cancelled else "Failed", finished_at=now)
        Job.objects.filter(pk=job.pk).update(**fields)
        if lost:
            _job_lost(ticket, job, what=outcome.error)
        else:
            scheduler.ticket_finish(ticket.id, cpu_ms=int(fields["cpu_seconds"] * 1000),
                                    peak_memory_bytes=fields["peak_memory_bytes"])
        quotas.meter_job(tenant, user_id=ticket.user_id, cpu_ms=outcome.cpu_ms,
                         peak_memory_bytes=outcome.peak_memory_bytes)
        job_events.job_ended(tenant=tenant, job=Job.objects.get(pk=job.pk))  # sent if this commits
    if outcome.status != Job.Status.SUCCEEDED:
        logger.info("job ended", extra={"tenant": tenant.slug, "job": ticket.job_id,
                                        "status": outcome.status, "reason": outcome.error})
    notifications.job_ended(tenant=tenant, job_id=ticket.job_id)
    # This worker's drain loop takes the next job of its own queue; a slot this job freed may let
    # a waiting job of the other queue start, so wake that one.
    for queue in set(all_queues()) - {ticket.queue}:
        if scheduler.has_queued(queue):
            wake(queue)


def _requeue_turn(ticket: JobTicket, job: Job, outcome: Outcome) -> bool:
    """A turn of a job that runs in turns ended (JobYield): meter it like any job's run, and queue
    the job again through the fair scheduler, unless a cancel arrived meanwhile (False: _finish
    then ends the job as cancelled, keeping what its turns recorded)."""
    if JobTicket.objects.filter(pk=ticket.id, cancel_requested=True).exists():
        outcome.status = Job.Status.CANCELLED
        return False
    total = job.prior_cpu_seconds + outcome.cpu_ms / 1000
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.QUEUED, message=(outcome.error or "Waiting for its next turn")[:300],
        prior_cpu_seconds=total, cpu_seconds=total,
        peak_memory_bytes=max(job.peak_memory_bytes, outcome.peak_memory_bytes))
    scheduler.ticket_yield(ticket.id, cpu_ms=outcome.cpu_ms)
    quotas.meter_job(ticket.tenant, user_id=ticket.user_id, cpu_ms=outcome.cpu_ms,
                     peak_memory_bytes=outcome.peak_memory_bytes)
    transaction.on_commit(lambda q=ticket.queue: wake(q))
    return True


# --- the child process -------------------------------------------------------------------------
def _set_parent_death_signal() -> None:
    """If the worker dies (even by SIGKILL), the job process dies with it (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        logger.warning("prctl(PR_SET_PDEATHSIG) unavailable: orphaned jobs rely on the reaper")


def _private_memory(pid: int) -> int:
    """Bytes the process owns itself (not the pages it shares with the worker it forked from)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            total = 0
            for line in fh:
                if line.startswith(("Private_Clean:", "Private_Dirty:", "Swap:")):
                    total += int(line.split()[1]) * 1024
            return total
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_ms(pid: int) -> int:
    """CPU time the running process has used so far (user + system, its reaped children too)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # The command name (field 2) may hold spaces: count fields after its closing ')'.
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return 0
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks * 1000 // _CLOCK_TICKS


def report_usage(ticket: JobTicket, *, cpu_ms: int, peak_memory_bytes: int) -> None:
    """Show a running job's CPU time and peak memory so far on its page (sent with the heartbeat;
    _finish writes the final figures)."""
    with tenant_context(ticket.tenant):
        Job.objects.filter(pk=ticket.job_id, status=Job.Status.RUNNING).update(
            cpu_seconds=F("prior_cpu_seconds") + cpu_ms / 1000,
            peak_memory_bytes=Greatest(F("peak_memory_bytes"), peak_memory_bytes))


def _vm_data_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _cap_memory(limit_bytes: int) -> None:
    """A hard cap on new allocations (the polling in the parent reports the overrun)."""
    import resource

    cap = _vm_data_bytes() + limit_bytes + 64 * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    except (ValueError, OSError):
        logger.warning("could not set RLIMIT_DATA")


def _human_mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MB"


def _run_in_child(ticket: JobTicket, limits: dict[str, int]) -> Outcome:
    mem_limit = limits["memory_per_job_bytes"]
    wall_limit = limits["wall_seconds_per_job"]
    connections.close_all()  # the child must open its own database connections
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child; covered by the worker tests
        code = 70
        try:
            os.close(read_fd)
            os.setpgid(0, 0)
            _set_parent_death_signal()
            _cap_memory(mem_limit)
            code = _child_main(ticket, write_fd)
        finally:
            os._exit(code)
    os.close(write_fd)
    return _watch_child(pid, read_fd, ticket, mem_limit, wall_limit)


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _watch_child(pid: int, read_fd: int, ticket: JobTicket, mem_limit: int, wall_limit: int) -> Outcome:
    started = time.monotonic()
    next_beat = started + HEARTBEAT_SECONDS
    peak, stop_reason, stop_status, killed_at = 0, "", "", None
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            break
        now = time.monotonic()
        peak = max(peak, _private_memory(pid))
        if not stop_status:
            if peak > mem_limit:
                stop_status = Job.Status.FAILED
                stop_reason = (f"Stopped: the job used more than {_human_mb(mem_limit)} of memory, the "
                               f"limit per job on your plan. Use fewer rows or columns, or a lighter algorithm.")
                _kill_group(pid, signal.SIGKILL)
            elif now - started > wall_limit:
                stop_status = Job.Status.FAILED
                stop_reason = (f"Stopped: the job ran longer than {wall_limit:,} seconds, the time limit "
                               f"per job on your plan.")
                _kill_group(pid, signal.SIGKILL)
            elif now >= next_beat:
                next_beat = now + HEARTBEAT_SECONDS
                report_usage(ticket, cpu_ms=_cpu_ms(pid), peak_memory_bytes=peak)
                if scheduler.heartbeat(ticket.id):
                    stop_status, killed_at = Job.Status.CANCELLED, now
                    _kill_group(pid, signal.SIGTERM)
        elif killed_at is not None and now - killed_at > 3:
            _kill_group(pid, signal.SIGKILL)
            killed_at = None
        time.sleep(POLL_SECONDS)
    report = _read_report(read_fd)
    cpu_ms = int((usage.ru_utime + usage.ru_stime) * 1000)
    peak = max(peak, 0)
    if stop_status:
        return Outcome(status=stop_status, error=stop_reason, cpu_ms=cpu_ms, peak_memory_bytes=peak)
    if report is None:
        why = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit code {os.WEXITSTATUS(status)}")
        return Outcome(status=LOST, cpu_ms=cpu_ms, peak_memory_bytes=peak,
                       error=f"The job's process stopped unexpectedly ({why})")
    return Outcome(status=report["status"], error=report.get("error", ""), cpu_ms=cpu_ms,
                   peak_memory_bytes=peak)


def _read_report(read_fd: int) -> dict | None:
    with os.fdopen(read_fd, "rb") as pipe:
        raw = pipe.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _child_main(ticket: JobTicket, write_fd: int) -> int:  # pragma: no cover - in the child
    signal.signal(signal.SIGTERM, _raise_cancelled)
    # The broker connections were inherited from the worker: publishing on them from here could
    # interleave with the worker's own messages. Webhook deliveries this job creates (a quota
    # threshold) are left to the sweep, which sends them within seconds.
    webhook_delivery.queue_only_by_sweep()
    try:
        report = _execute_handler(ticket)
    finally:
        connections.close_all()
    os.write(write_fd, json.dumps(report).encode())
    os.close(write_fd)
    return 0


def _execute_handler(ticket: JobTicket) -> dict:
    """Run the job kind's handler; the outcome as a small report (what the child sends back)."""
    try:
        with tenant_context(ticket.tenant):
            job = Job.objects.get(pk=ticket.job_id)
            ctx = JobContext(tenant=ticket.tenant, job=job, ticket_id=ticket.id, attempt=ticket.attempts)
            with audit.acting_as(_job_actor(job)):
                handler_for(job.kind)(ctx)
        return {"status": Job.Status.SUCCEEDED}
    except JobCancelled:
        return {"status": Job.Status.CANCELLED}
    except JobYield as exc:
        return {"status": YIELDED, "error": str(exc)}
    except JobFailed as exc:
        return {"status": Job.Status.FAILED, "error": str(exc)}
    except MemoryError:
        return {"status": Job.Status.FAILED,
                "error": "Stopped: the job needed more memory than the limit per job on your plan."}
    except Exception as exc:
        logger.exception("job crashed", extra={"job": ticket.job_id, "tenant": ticket.tenant.slug})
        return {"status": Job.Status.FAILED,
                "error": f"An unexpected error stopped the job ({type(exc).__name__}); it has been "
                         f"logged for the operators."}


def _run_inline(ticket: JobTicket) -> Outcome:
    """Tests only (PORTAL_JOB_ISOLATION = "inline"): the handler in this process, no limits."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    report = _execute_handler(ticket)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_ms = int(((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000)
    return Outcome(status=report["status"], error=report.get("error", ""), cpu_ms=cpu_ms)


def _raise_cancelled(signum, frame):  # pragma: no cover - in the child
    raise JobCancelled()


def _job_actor(job: Job) -> audit.Actor:
    user = job.created_by
    return audit.Actor(actor_id=user.pk if user else None, actor_email=user.email if user else "",
                       auth_method="job", request_id=f"job-{job.id}")


# --- lost jobs ---------------------------------------------------------------------------------
def _job_lost(ticket: JobTicket, job: Job, *, what: str) -> None:
    """The job's process died (`what` says which): run it again or fail it, by the one policy in
    scheduler.retry_after_loss. Called inside the transaction that holds the job's row."""
    note = scheduler.lost_note(ticket, what=what)
    if scheduler.retry_after_loss(ticket):
        scheduler.ticket_requeue(ticket.id, "waiting to be retried")
        Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED, progress=0.0, message=note)
        transaction.on_commit(lambda q=ticket.queue: wake(q))
        return
    scheduler.ticket_finish(ticket.id)
    cancelled = ticket.cancel_requested
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.CANCELLED if cancelled else Job.Status.FAILED, finished_at=timezone.now(),
        message="Cancelled" if cancelled else "Failed", error="" if cancelled else f"{note}.")
    logger.warning("job lost", extra={"tenant": ticket.tenant.slug, "job": ticket.job_id, "reason": what})


# --- the reaper --------------------------------------------------------------------------------
WORKER_LOST = "The worker running this job stopped unexpectedly"


def reap_stale_jobs() -> int:
    """Jobs whose worker stopped sending heartbeats: retried or failed by the lost-job policy."""
    reaped = 0
    stale_after = timedelta(seconds=settings.PORTAL_JOB_STALE_SECONDS)
    for ticket in scheduler.stale_tickets(older_than=stale_after):
        with tenant_context(ticket.tenant), transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=ticket.job_id).first()
            if job is None or job.is_finished:
                scheduler.ticket_finish(ticket.id)
                continue
            _job_lost(ticket, job, what=WORKER_LOST)
            job_events.job_ended(tenant=ticket.tenant, job=Job.objects.get(pk=job.pk))  # if it failed for good
        notifications.job_ended(tenant=ticket.tenant, job_id=ticket.job_id)  # if it failed for good
        reaped += 1
    if reaped:
        logger.warning("reaped stale jobs", extra={"count": reaped})
    connection.set_schema_to_public()
    return reaped
