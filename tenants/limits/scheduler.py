"""Admission and weighted fair share across tenants: which queued job a free worker runs next.

Every job has a ticket in the public ledger (JobTicket). A worker that is free claims the next
ticket under one advisory lock, so concurrency limits hold across workers and machines:

- a tenant at its concurrent-jobs limit (or a member at theirs) waits, with the reason on the
  ticket ("waiting: 2 of 2 job slots in use");
- among tenants that may start a job, the one furthest below its weighted share runs next: the
  least worker time used in the recent window (FAIR_WINDOW) per unit of plan weight, then the
  fewest running jobs per weight, then the oldest waiting job. Counting recent use and not only
  what runs now (as Slurm's and Kueue's fair sharing do) means a tenant that just arrived gets
  every worker that frees up until it has had its share, so a tenant with 500 queued jobs delays
  another tenant's jobs by about one job's duration, not by half the machine;
- idle capacity is used by whoever has work: nothing is reserved for tenants that are idle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from tenants.limits.quotas import effective_limits
from tenants.models import JobTicket, Membership, Tenant

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x6A6F6273  # "jobs": one advisory lock for every claim on every queue
MAX_ATTEMPTS = 2  # a job runs once, and once more if the process running it died


@dataclass(frozen=True)
class Candidate:
    ticket_id: int
    tenant_id: int
    user_id: int | None
    created_at: datetime


FAIR_WINDOW_SECONDS = 300


@dataclass
class TenantLoad:
    """What the scheduler knows of one tenant at pick time."""

    weight: int
    limit: int
    running: int = 0
    recent_seconds: float = 0.0  # worker time used within the last FAIR_WINDOW_SECONDS
    member_running: dict[int | None, int] = field(default_factory=dict)
    member_limits: dict[int | None, int] = field(default_factory=dict)


def _slots(n: int) -> str:
    return "1 job slot" if n == 1 else f"{n} job slots"


def choose(candidates: list[Candidate], loads: dict[int, TenantLoad]) -> tuple[Candidate | None, dict[int, str]]:
    """The pick rule, free of the database (unit-tested directly).

    `candidates` are the oldest queued ticket of each (tenant, member), any order. Returns the
    ticket to run (or None) and a wait reason for each candidate that may not start now.
    """
    waits: dict[int, str] = {}
    heads: dict[int, Candidate] = {}
    for cand in sorted(candidates, key=lambda c: (c.created_at, c.ticket_id)):
        load = loads[cand.tenant_id]
        if load.running >= load.limit:
            waits[cand.ticket_id] = f"waiting: {load.running} of {_slots(load.limit)} in use"
            continue
        member_limit = load.member_limits.get(cand.user_id)
        member_running = load.member_running.get(cand.user_id, 0)
        if member_limit is not None and member_running >= member_limit:
            waits[cand.ticket_id] = (f"waiting: your limit of {_slots(member_limit)} is reached "
                                     f"({member_running} running)")
            continue
        heads.setdefault(cand.tenant_id, cand)  # oldest eligible ticket of this tenant
    if not heads:
        return None, waits
    def share(c: Candidate) -> tuple:
        load = loads[c.tenant_id]
        weight = max(load.weight, 1)
        return (round(load.recent_seconds / weight, 3), load.running / weight, c.created_at, c.ticket_id)

    return min(heads.values(), key=share), waits


def _candidates(queue: str) -> list[Candidate]:
    """The oldest queued ticket of each (tenant, member) on this queue."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT ON (tenant_id, user_id) id, tenant_id, user_id, created_at "  # noqa: S608
            f"FROM {JobTicket._meta.db_table} WHERE queue = %s AND state = %s "
            f"ORDER BY tenant_id, user_id, created_at, id",
            [queue, JobTicket.State.QUEUED],
        )
        return [Candidate(*row) for row in cursor.fetchall()]


def _loads(tenant_ids: set[int]) -> dict[int, TenantLoad]:
    loads: dict[int, TenantLoad] = {}
    for tenant in Tenant.objects.filter(pk__in=tenant_ids).select_related("plan"):
        limits = effective_limits(tenant)
        weight = tenant.plan.fair_share_weight if tenant.plan_id else 1
        weight = int((tenant.limit_overrides or {}).get("fair_share_weight", weight))
        loads[tenant.id] = TenantLoad(weight=weight, limit=limits["concurrent_jobs"])
    running = (JobTicket.objects.filter(state=JobTicket.State.RUNNING, tenant_id__in=tenant_ids)
               .values("tenant_id", "user_id").annotate(n=Count("id")))
    for row in running:
        load = loads[row["tenant_id"]]
        load.running += row["n"]
        load.member_running[row["user_id"]] = row["n"]
    for tenant_id, seconds in _recent_seconds(tenant_ids).items():
        loads[tenant_id].recent_seconds = seconds
    for m in Membership.objects.filter(tenant_id__in=tenant_ids).exclude(limits={}):
        if "concurrent_jobs" in m.limits:
            loads[m.tenant_id].member_limits[m.user_id] = int(m.limits["concurrent_jobs"])
    return loads


def _recent_seconds(tenant_ids: set[int]) -> dict[int, float]:
    """Worker time each tenant's jobs used within the fair-share window (running ones so far)."""
    table = JobTicket._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tenant_id, SUM(EXTRACT(EPOCH FROM COALESCE(finished_at, now()) "  # noqa: S608
            f"  - GREATEST(claimed_at, now() - make_interval(secs => %s)))) "
            f"FROM {table} WHERE tenant_id = ANY(%s) AND claimed_at IS NOT NULL "
            f"AND (finished_at IS NULL OR finished_at > now() - make_interval(secs => %s)) "
            f"GROUP BY tenant_id",
            [FAIR_WINDOW_SECONDS, list(tenant_ids), FAIR_WINDOW_SECONDS],
        )
        return {tenant_id: max(float(seconds or 0), 0.0) for tenant_id, seconds in cursor.fetchall()}


def claim_next(queue: str, worker: str) -> JobTicket | None:
    """Claim the next ticket for this queue, or None when nothing may start now."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        candidates = _candidates(queue)
        if not candidates:
            return None
        loads = _loads({c.tenant_id for c in candidates})
        chosen, waits = choose(candidates, loads)
        for ticket_id, reason in waits.items():
            _set_wait_reason(ticket_id, reason)
        if chosen is None:
            return None
        now = timezone.now()
        # A ticket that yielded (ticket_yield) carries its last turn's worker time into this one,
        # so the fair share still sees what the job used, not only the turn that starts now.
        carried = ExpressionWrapper(
            Coalesce(F("finished_at") - F("claimed_at"), Value(timedelta(0))), output_field=DurationField())
        JobTicket.objects.filter(pk=chosen.ticket_id).update(
            state=JobTicket.State.RUNNING, claimed_at=Value(now) - carried, finished_at=None,
            heartbeat_at=now, worker=worker[:120], wait_reason="", attempts=F("attempts") + 1)
        return JobTicket.objects.get(pk=chosen.ticket_id)


def _set_wait_reason(ticket_id: int, reason: str) -> None:
    """The reason applies to every queued ticket of that tenant/member behind the head ticket."""
    head = JobTicket.objects.filter(pk=ticket_id).values("tenant_id", "user_id", "queue").first()
    if head is None:
        return
    rows = JobTicket.objects.filter(state=JobTicket.State.QUEUED, tenant_id=head["tenant_id"],
                                    queue=head["queue"])
    if "your limit" in reason:
        rows = rows.filter(user_id=head["user_id"])
    rows.exclude(wait_reason=reason).update(wait_reason=reason)


# --- the ticket's life ------------------------------------------------------------------------
def ticket_create(*, tenant: Tenant, user_id: int | None, job_id: int, kind: str, queue: str) -> JobTicket:
    return JobTicket.objects.create(tenant=tenant, user_id=user_id, job_id=job_id, kind=kind, queue=queue)


def heartbeat(ticket_id: int) -> bool:
    """Returns whether cancellation was requested, so the runner learns it with the heartbeat."""
    JobTicket.objects.filter(pk=ticket_id, state=JobTicket.State.RUNNING).update(heartbeat_at=timezone.now())
    return JobTicket.objects.filter(pk=ticket_id, cancel_requested=True).exists()


def ticket_finish(ticket_id: int, *, cpu_ms: int = 0, peak_memory_bytes: int = 0) -> None:
    JobTicket.objects.filter(pk=ticket_id).update(
        state=JobTicket.State.FINISHED, finished_at=timezone.now(), cpu_ms=cpu_ms,
        peak_memory_bytes=peak_memory_bytes, wait_reason="")


def ticket_yield(ticket_id: int, *, cpu_ms: int = 0) -> None:
    """A job that runs in turns (a model search) gives its worker back between steps: its ticket
    goes back in line behind the tenant's other queued jobs, and the next claim is a fair pick
    again. The turn just ended stays counted (claimed_at..finished_at) for the fair share, and the
    attempt is given back: a job may lose its process twice per turn, not twice in all."""
    JobTicket.objects.filter(pk=ticket_id).update(
        state=JobTicket.State.QUEUED, finished_at=timezone.now(), created_at=timezone.now(),
        worker="", heartbeat_at=None, wait_reason="", cpu_ms=F("cpu_ms") + cpu_ms,
        attempts=Greatest(F("attempts") - 1, 0))


def retry_after_loss(ticket: JobTicket) -> bool:
    """The one policy for a job whose process died, whatever died: the job's own process (killed
    by a signal, the kernel's OOM killer, a crash) or the worker running it (noticed by the reaper
    when its heartbeats stop). The job runs again while attempts remain and nobody asked to cancel
    it; then it fails with a message saying so. A job stopped for overrunning its memory or time
    limit did not die by accident: it fails at once, as running it again would overrun again."""
    return ticket.attempts < MAX_ATTEMPTS and not ticket.cancel_requested


def lost_note(ticket: JobTicket, *, what: str) -> str:
    """What the user reads about a job whose process died (`what` says which process)."""
    if retry_after_loss(ticket):
        return f"{what}; it will be retried (attempt {ticket.attempts + 1} of {MAX_ATTEMPTS})"
    if ticket.cancel_requested:
        return f"{what}; it was being cancelled, so it will not be retried"
    return f"{what} on its last attempt ({ticket.attempts} of {MAX_ATTEMPTS}); it will not be retried"


def ticket_requeue(ticket_id: int, reason: str) -> None:
    JobTicket.objects.filter(pk=ticket_id).update(
        state=JobTicket.State.QUEUED, worker="", heartbeat_at=None, claimed_at=None, wait_reason=reason)


def request_cancel(*, tenant: Tenant, job_id: int) -> JobTicket | None:
    ticket = JobTicket.objects.filter(tenant=tenant, job_id=job_id).first()
    if ticket is not None and ticket.state != JobTicket.State.FINISHED:
        JobTicket.objects.filter(pk=ticket.pk).update(cancel_requested=True)
        ticket.cancel_requested = True
    return ticket


def stale_tickets(*, older_than: timedelta) -> list[JobTicket]:
    """Running tickets whose worker stopped sending heartbeats."""
    cutoff = timezone.now() - older_than
    return list(JobTicket.objects.filter(state=JobTicket.State.RUNNING, heartbeat_at__lt=cutoff)
                .select_related("tenant"))


def has_queued(queue: str | None = None) -> bool:
    rows = JobTicket.objects.filter(state=JobTicket.State.QUEUED)
    return rows.filter(queue=queue).exists() if queue else rows.exists()


def queue_position(ticket: JobTicket) -> int:
    """How many tickets on the same queue were queued before this one (any tenant)."""
    return JobTicket.objects.filter(queue=ticket.queue, state=JobTicket.State.QUEUED,
                                    created_at__lt=ticket.created_at).count()
