"""Jobs in a real Celery worker with the real broker: tenancy, kills, memory limits.

Slow drills (`make test-slow` runs them alone): each starts worker processes against the test
database; the data they need is committed (the `committed` fixture cleans it up).
"""

from __future__ import annotations

import time

import psutil
import pytest
from django_tenants.utils import tenant_context

from mlcore.models import Job, MLModel, ModelVersion
from tests.mlcore.conftest import churn_csv, upload_dataset
from tests.servers import Worker

pytestmark = [pytest.mark.slow]


def wait_for(client, job_id: int, statuses=("succeeded", "failed", "cancelled"), timeout=90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/jobs/{job_id}/").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} still {body['status']} after {timeout}s: {body}")


def recorded(job, timeout: float = 15) -> Job:
    """The job once its worker has recorded CPU and memory: the forked child commits its success,
    and the worker writes what the child used only after it has exited, a moment later."""
    deadline = time.monotonic() + timeout
    while not job.cpu_seconds and time.monotonic() < deadline:
        time.sleep(0.1)
        job.refresh_from_db()
    return job


def wait_until(probe, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not seen within {timeout}s")


def train(client, dataset_id, **overrides) -> dict:
    body = {"dataset": dataset_id, "model_name": "Churn", "target": "churned",
            "algorithm": "logistic_regression", **overrides}
    response = client.post("/api/v1/training-jobs/", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def big_csv(rows: int) -> bytes:
    return churn_csv(rows=rows, seed=3)


def test_each_tenants_job_runs_in_its_own_schema_and_makes_its_own_model(worker, api_as, world):
    bob, charlie = api_as("bob"), api_as("charlie")
    acme_data = upload_dataset(bob, churn_csv())
    globex_data = upload_dataset(charlie, churn_csv(seed=11))
    acme_job = train(bob, acme_data["id"], model_name="Acme churn")
    globex_job = train(charlie, globex_data["id"], model_name="Globex churn")
    assert wait_for(bob, acme_job["id"])["status"] == "succeeded"
    assert wait_for(charlie, globex_job["id"])["status"] == "succeeded"
    with tenant_context(world.acme):
        assert list(MLModel.objects.values_list("name", flat=True)) == ["Acme churn"]
        job = recorded(Job.objects.get(pk=acme_job["id"]))
        assert job.cpu_seconds > 0 and job.peak_memory_bytes > 0
    with tenant_context(world.globex):
        assert list(MLModel.objects.values_list("name", flat=True)) == ["Globex churn"]
    assert "Acme churn" not in str(charlie.get("/api/v1/models/").json())


@pytest.mark.alone
def test_a_worker_killed_mid_training_leaves_no_stuck_job(committed, api_as, world):
    first = Worker("doomed")
    try:
        bob = api_as("bob")
        dataset = upload_dataset(bob, big_csv(40_000))
        job = train(bob, dataset["id"], algorithm="random_forest",
                    params={"n_estimators": 150, "min_samples_leaf": 1})
        wait_for(bob, job["id"], statuses=("running",), timeout=60)
        time.sleep(1.5)
        orphans = first.job_processes()
        assert orphans, "the job should be running in a forked process"
        first.kill()
    finally:
        first.stop()
    # The job process dies with its parent (PR_SET_PDEATHSIG), it does not train on unseen.
    time.sleep(1)
    assert not [p for p in orphans if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert bob.get(f"/api/v1/jobs/{job['id']}/").json()["status"] == "running"  # not yet noticed

    second = Worker("rescuer", beat=True)  # runs the reaper on its schedule
    try:
        # The reaper notices the lost job within a minute and it runs again (or fails for good)...
        assert _taken_up_again(job["id"], world, timeout=60)
        # ...and it ends: retraining 150 trees takes its time on a busy 2-core machine.
        done = wait_for(bob, job["id"], timeout=300)
    finally:
        second.stop()
    assert done["status"] in ("succeeded", "failed")
    with tenant_context(world.acme):
        attempts = Job.objects.get(pk=job["id"]).attempts
        versions = ModelVersion.objects.filter(job_id=job["id"]).count()
    if done["status"] == "succeeded":
        assert attempts == 2  # retried once
        assert versions == 1  # and only one version came of it
    else:
        assert "stopped unexpectedly" in done["error"]
        assert versions == 0


def _taken_up_again(job_id: int, world, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with tenant_context(world.acme):
            job = Job.objects.get(pk=job_id)
        if job.attempts >= 2 or job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED):
            return True
        time.sleep(0.25)
    return False


def test_a_job_over_its_memory_limit_is_stopped_and_the_worker_keeps_serving(worker, api_as, world):
    from tenants.limits.quotas import tenant_limits_set

    bob = api_as("bob")
    dataset = upload_dataset(bob, big_csv(60_000))
    tenant_limits_set(tenant=world.acme, overrides={"memory_per_job_bytes": 64 * 1024 * 1024})
    heavy = train(bob, dataset["id"], model_name="Heavy", algorithm="random_forest",
                  params={"n_estimators": 300})
    done = wait_for(bob, heavy["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("Stopped: the job used more than 64 MB")

    tenant_limits_set(tenant=world.acme, overrides={})
    small = upload_dataset(bob, churn_csv(), filename="small.csv")
    light = train(bob, small["id"], model_name="Light")
    assert wait_for(bob, light["id"])["status"] == "succeeded"
    assert worker.proc.poll() is None


@pytest.mark.alone
def test_cancel_stops_a_running_job_within_seconds(worker, api_as):
    bob = api_as("bob")
    dataset = upload_dataset(bob, big_csv(40_000))
    job = train(bob, dataset["id"], algorithm="random_forest", params={"n_estimators": 500})
    wait_for(bob, job["id"], statuses=("running",), timeout=60)
    # While it runs, the worker reports the child's CPU and memory with its heartbeat (every 2 s)
    # and the page names the stage running: the forest is still being evaluated.
    def usage_reported():
        body = bob.get(f"/api/v1/jobs/{job['id']}/").json()
        return body if body["cpu_seconds"] > 0 else None

    running = wait_until(usage_reported, timeout=6)
    assert running["status"] == "running" and running["peak_memory_bytes"] > 0
    assert running["message"].startswith("Evaluating")
    asked = time.monotonic()
    assert bob.post(f"/api/v1/jobs/{job['id']}/cancel/").status_code == 202
    done = wait_for(bob, job["id"], timeout=30)
    assert done["status"] == "cancelled"
    assert time.monotonic() - asked < 8
    assert bob.get("/api/v1/models/").json()["count"] == 0


@pytest.mark.alone
def test_a_job_over_its_wall_time_is_stopped_with_that_reason(worker, api_as, world):
    from tenants.limits.quotas import tenant_limits_set

    bob = api_as("bob")
    dataset = upload_dataset(bob, big_csv(40_000))
    tenant_limits_set(tenant=world.acme, overrides={"wall_seconds_per_job": 2})
    job = train(bob, dataset["id"], model_name="Slow", algorithm="random_forest", params={"n_estimators": 400})
    done = wait_for(bob, job["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("Stopped: the job ran longer than 2 seconds")
    assert worker.proc.poll() is None


def test_a_search_runs_its_trials_in_turns_in_a_real_worker_and_meters_each(worker, api_as, world):
    from mlcore.models import SearchTrial
    from tenants.limits.usage import member_month_totals

    bob = api_as("bob")
    dataset = upload_dataset(bob, churn_csv(rows=600))
    response = bob.post("/api/v1/searches/", {"dataset": dataset["id"], "target": "churned", "budget_seconds": 120,
                                              "budget_cpu_seconds": 60, "algorithms": ["logistic_regression", "random_forest"]},
                        format="json")
    assert response.status_code == 202, response.content
    search = response.json()
    deadline = time.monotonic() + 120
    while (body := bob.get(f"/api/v1/searches/{search['id']}/").json())["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, body
        time.sleep(0.25)
    assert body["status"] == "succeeded", body["error"]
    assert body["trials"] and body["best_trial"] == body["result"]["best_trial"]
    # Each turn ran in its own forked process and was metered when it ended: the month's CPU of
    # Bob is exactly what the search says it used, and within its budget. (The worker meters the
    # last turn once its process has exited, a moment after the success the child committed.)
    from tenants.models import JobTicket

    wait_until(lambda: JobTicket.objects.filter(tenant=world.acme, job_id=search["id"], state="finished").exists(), 15)
    with tenant_context(world.acme):
        job = Job.objects.get(pk=search["id"])
        assert 0 < job.cpu_seconds <= 60 and job.prior_cpu_seconds > 0
        assert SearchTrial.objects.filter(job=job).count() == len(body["trials"])
        assert ModelVersion.objects.get(job=job).algorithm == next(
            t["algorithm"] for t in body["trials"] if t["number"] == body["best_trial"])
    assert member_month_totals(world.acme, world.bob.id)["cpu_ms"] / 1000 == pytest.approx(job.cpu_seconds, abs=0.01)
