"""tenants/limits/scheduler.py: the fair-share pick rule (pure) and claiming from the ledger."""

from datetime import UTC, datetime, timedelta

import pytest

from tenants.limits.scheduler import Candidate, TenantLoad, choose, claim_next, ticket_create
from tenants.models import JobTicket

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cand(ticket_id, tenant_id, user_id=1, minutes=0):
    return Candidate(ticket_id=ticket_id, tenant_id=tenant_id, user_id=user_id,
                     created_at=T0 + timedelta(minutes=minutes))


def test_a_tenant_with_nothing_running_goes_before_a_flooding_tenant():
    # A queued 500 jobs long ago and runs 2; B queued one job just now and runs none.
    loads = {1: TenantLoad(weight=1, limit=4, running=2), 2: TenantLoad(weight=1, limit=4, running=0)}
    chosen, waits = choose([cand(10, 1, minutes=0), cand(99, 2, minutes=30)], loads)
    assert chosen.ticket_id == 99
    assert waits == {}


def test_weights_scale_the_share():
    # A (weight 4) runs 3 -> 0.75 per weight; B (weight 1) runs 1 -> 1.0: A is further below its share.
    loads = {1: TenantLoad(weight=4, limit=8, running=3), 2: TenantLoad(weight=1, limit=8, running=1)}
    chosen, _ = choose([cand(10, 1, minutes=5), cand(20, 2, minutes=0)], loads)
    assert chosen.ticket_id == 10


def test_recent_use_counts_so_a_newcomer_gets_freed_workers_first():
    # A and B run one job each, but A has used 250 worker-seconds lately and B only 3.
    loads = {1: TenantLoad(weight=1, limit=4, running=1, recent_seconds=250.0),
             2: TenantLoad(weight=1, limit=4, running=1, recent_seconds=3.0)}
    chosen, _ = choose([cand(10, 1, minutes=0), cand(20, 2, minutes=9)], loads)
    assert chosen.ticket_id == 20


def test_recent_use_is_weighted_by_the_plan():
    # A (weight 4) used 100 s -> 25 per weight; B (weight 1) used 30 s -> 30 per weight.
    loads = {1: TenantLoad(weight=4, limit=4, running=0, recent_seconds=100.0),
             2: TenantLoad(weight=1, limit=4, running=0, recent_seconds=30.0)}
    chosen, _ = choose([cand(10, 1, minutes=5), cand(20, 2, minutes=0)], loads)
    assert chosen.ticket_id == 10


def test_equal_shares_go_to_the_oldest_waiting_job():
    loads = {1: TenantLoad(weight=1, limit=4, running=1), 2: TenantLoad(weight=1, limit=4, running=1)}
    chosen, _ = choose([cand(10, 1, minutes=5), cand(20, 2, minutes=1)], loads)
    assert chosen.ticket_id == 20


def test_a_tenant_at_its_limit_waits_with_the_reason_and_idle_capacity_goes_to_others():
    loads = {1: TenantLoad(weight=1, limit=2, running=2), 2: TenantLoad(weight=1, limit=2, running=1)}
    chosen, waits = choose([cand(10, 1), cand(20, 2, minutes=9)], loads)
    assert chosen.ticket_id == 20
    assert waits == {10: "waiting: 2 of 2 job slots in use"}


def test_nothing_may_start_when_every_tenant_is_at_its_limit():
    loads = {1: TenantLoad(weight=1, limit=1, running=1)}
    chosen, waits = choose([cand(10, 1)], loads)
    assert chosen is None
    assert waits == {10: "waiting: 1 of 1 job slot in use"}


def test_a_member_at_their_own_limit_waits_while_a_colleague_runs():
    load = TenantLoad(weight=1, limit=4, running=1, member_running={7: 1}, member_limits={7: 1})
    chosen, waits = choose([cand(10, 1, user_id=7), cand(11, 1, user_id=8, minutes=3)], {1: load})
    assert chosen.ticket_id == 11
    assert waits == {10: "waiting: your limit of 1 job slot is reached (1 running)"}


@pytest.mark.django_db
def test_claiming_takes_the_fair_ticket_and_marks_it_running(world):
    flood = [ticket_create(tenant=world.acme, user_id=world.bob.id, job_id=i, kind="training",
                           queue="training") for i in range(1, 6)]
    single = ticket_create(tenant=world.globex, user_id=world.charlie.id, job_id=1, kind="training",
                           queue="training")
    first = claim_next("training", "w1")
    second = claim_next("training", "w2")
    assert first.id == flood[0].id  # oldest, both tenants idle
    assert second.id == single.id   # globex now furthest below its share
    assert second.state == JobTicket.State.RUNNING
    assert second.worker == "w2" and second.attempts == 1


@pytest.mark.django_db
def test_claiming_respects_the_concurrency_limit_and_says_why(world):
    world.acme.limit_overrides = {"concurrent_jobs": 1}
    world.acme.save(update_fields=["limit_overrides"])
    a = ticket_create(tenant=world.acme, user_id=world.bob.id, job_id=1, kind="training", queue="training")
    b = ticket_create(tenant=world.acme, user_id=world.bob.id, job_id=2, kind="training", queue="training")
    assert claim_next("training", "w1").id == a.id
    assert claim_next("training", "w1") is None
    b.refresh_from_db()
    assert b.state == JobTicket.State.QUEUED
    assert b.wait_reason == "waiting: 1 of 1 job slot in use"


@pytest.mark.django_db
def test_queues_are_separate(world):
    ticket_create(tenant=world.acme, user_id=world.bob.id, job_id=1, kind="training", queue="training")
    assert claim_next("prediction", "w1") is None


@pytest.mark.django_db
def test_a_tenant_that_just_used_the_workers_yields_to_one_that_did_not(world):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    done = ticket_create(tenant=world.acme, user_id=world.bob.id, job_id=1, kind="training", queue="training")
    JobTicket.objects.filter(pk=done.pk).update(state=JobTicket.State.FINISHED,
                                                claimed_at=now - timedelta(seconds=120), finished_at=now)
    acme_next = ticket_create(tenant=world.acme, user_id=world.bob.id, job_id=2, kind="training",
                              queue="training")
    globex_next = ticket_create(tenant=world.globex, user_id=world.charlie.id, job_id=1, kind="training",
                                queue="training")
    assert acme_next.created_at < globex_next.created_at
    assert claim_next("training", "w1").id == globex_next.id
    assert claim_next("training", "w1").id == acme_next.id


def test_a_job_whose_process_died_runs_again_once_then_fails():
    from tenants.limits.scheduler import MAX_ATTEMPTS, lost_note, retry_after_loss

    first, last = JobTicket(attempts=1), JobTicket(attempts=MAX_ATTEMPTS)
    assert (retry_after_loss(first), retry_after_loss(last)) == (True, False)
    assert lost_note(first, what="It died") == "It died; it will be retried (attempt 2 of 2)"
    assert lost_note(last, what="It died") == "It died on its last attempt (2 of 2); it will not be retried"


def test_a_job_being_cancelled_is_not_run_again_when_its_process_dies():
    from tenants.limits.scheduler import retry_after_loss

    assert not retry_after_loss(JobTicket(attempts=1, cancel_requested=True))
