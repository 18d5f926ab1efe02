"""Jobs whose process died (mlcore/jobs/runner.py): one policy whether the job's own process or the
worker running it died, and what the user sees meanwhile. The drills that kill real processes are
in test_worker.py (slow)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from mlcore.jobs import queue_for, runner
from mlcore.models import Job
from tenants.limits import scheduler
from tenants.models import JobTicket

pytestmark = pytest.mark.django_db


def _started_job(bob, dataset_id: int) -> tuple[dict, JobTicket]:
    body = {"dataset": dataset_id, "model_name": "Churn", "target": "churned", "algorithm": "logistic_regression"}
    job = bob.post("/api/v1/training-jobs/", body, format="json").json()
    ticket = scheduler.claim_next(queue_for("training"), "w1")  # a worker took it...
    assert ticket.job_id == job["id"]
    with tenant_context(ticket.tenant):
        Job.objects.filter(pk=job["id"]).update(status=Job.Status.RUNNING, progress=0.4, message="Training")
    return job, ticket


def _silence(ticket: JobTicket, seconds: float) -> None:
    JobTicket.objects.filter(pk=ticket.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_a_job_whose_own_process_was_killed_is_queued_again_and_says_so(api_as, churn):
    bob = api_as("bob")
    job, ticket = _started_job(bob, churn["id"])

    runner._finish(ticket, runner.Outcome(status=runner.LOST, error="The job's process stopped unexpectedly "
                                                                    "(signal 9)"))

    shown = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert (shown["status"], shown["progress"]) == ("queued", 0.0)
    assert shown["message"] == ("The job's process stopped unexpectedly (signal 9); it will be retried "
                                "(attempt 2 of 2)")
    assert JobTicket.objects.get(pk=ticket.pk).state == JobTicket.State.QUEUED


def test_a_job_whose_process_dies_on_its_last_attempt_fails_saying_the_process_was_lost(api_as, churn):
    bob = api_as("bob")
    job, ticket = _started_job(bob, churn["id"])
    runner._finish(ticket, runner.Outcome(status=runner.LOST, error="The job's process stopped unexpectedly"))
    again = scheduler.claim_next(queue_for("training"), "w2")

    runner._finish(again, runner.Outcome(status=runner.LOST, error="The job's process stopped unexpectedly"))

    shown = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert shown["status"] == "failed"
    assert shown["error"] == ("The job's process stopped unexpectedly on its last attempt (2 of 2); "
                              "it will not be retried.")


def test_a_job_whose_worker_went_silent_says_the_worker_stopped_and_what_comes_next(api_as, page_as, churn):
    bob = api_as("bob")
    job, ticket = _started_job(bob, churn["id"])
    assert bob.get(f"/api/v1/jobs/{job['id']}/").json()["wait_reason"] == ""

    _silence(ticket, seconds=runner.HEARTBEAT_SECONDS * 5)

    shown = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert shown["status"] == "running"
    assert shown["wait_reason"] == "The worker running this job stopped; it will be retried (attempt 2 of 2)"
    page = page_as("bob").get(f"/jobs/{job['id']}/")
    assert "The worker running this job stopped; it will be retried" in page.content.decode()


def test_the_reaper_queues_a_job_of_a_lost_worker_again_with_the_reason(api_as, churn, settings):
    bob = api_as("bob")
    job, ticket = _started_job(bob, churn["id"])
    _silence(ticket, seconds=settings.PORTAL_JOB_STALE_SECONDS + 1)

    assert runner.reap_stale_jobs() == 1

    shown = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert (shown["status"], shown["progress"]) == ("queued", 0.0)
    assert shown["message"] == ("The worker running this job stopped unexpectedly; it will be retried "
                                "(attempt 2 of 2)")
    assert shown["wait_reason"] == "waiting to be retried"
