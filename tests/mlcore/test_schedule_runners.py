"""Schedules fired by more than one runner at once (two beats, or a beat and a worker), on
committed rows each runner's own connection can see; and by the beat's task in a real worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from mlcore.models import Job, Schedule, ScheduleRun
from mlcore.services.schedules import schedules_due_refresh, schedules_fire_due
from tests.mlcore.conftest import churn_csv, upload_dataset


def _schedule(api_as, acme, *, train) -> int:
    bob = api_as("bob")
    dataset = upload_dataset(bob, churn_csv(rows=150))
    trained = train(bob, dataset["id"])
    response = bob.post("/api/v1/schedules/", {"action": "score", "dataset": dataset["id"], "model": trained["model"],
                                               "frequency": "daily"}, format="json")
    assert response.status_code == 201, response.content
    with tenant_context(acme):
        Schedule.objects.filter(pk=response.json()["id"]).update(next_run_at=timezone.now() - timedelta(minutes=1))
        schedules_due_refresh(tenant=acme)  # the beat's tick finds it through the tenant's index
    return response.json()["id"]


def _in_thread(acme, results: list, barrier: threading.Barrier | None = None):
    def run():
        try:
            with tenant_context(acme):
                if barrier is not None:
                    barrier.wait(timeout=10)
                results.append(schedules_fire_due(tenant=acme))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _train_inline(client, dataset_id):
    from tests.mlcore.test_prediction_apis import train_model

    return train_model(client, dataset_id, name="Churn")


def test_two_runners_at_once_fire_a_due_schedule_once(committed, api_as, acme):
    schedule_id = _schedule(api_as, acme, train=_train_inline)
    results: list[int] = []
    barrier = threading.Barrier(2)
    threads = [_in_thread(acme, results, barrier) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [0, 1]
    with tenant_context(acme):
        assert ScheduleRun.objects.filter(schedule_id=schedule_id).count() == 1
        assert Job.objects.filter(kind="prediction").count() == 1


def test_a_runner_skips_a_schedule_another_holds_instead_of_waiting_or_firing_it(committed, api_as, acme):
    schedule_id = _schedule(api_as, acme, train=_train_inline)
    results: list[int] = []
    with tenant_context(acme), transaction.atomic():
        Schedule.objects.select_for_update().get(pk=schedule_id)  # another runner is firing it
        thread = _in_thread(acme, results)
        thread.join(timeout=10)
        assert not thread.is_alive() and results == [0]
    with tenant_context(acme):
        assert not ScheduleRun.objects.exists()
        assert schedules_fire_due(tenant=acme) == 1


@pytest.mark.slow
def test_the_beat_task_in_a_real_worker_scores_as_the_member(worker, api_as, acme):
    from celery import current_app

    from tests.mlcore.test_worker import train, wait_for

    def train_in_worker(client, dataset_id):
        job = train(client, dataset_id)
        return wait_for(client, job["id"])["result"]

    schedule_id = _schedule(api_as, acme, train=train_in_worker)
    current_app.send_task("mlcore.fire_due_schedules")

    deadline = time.monotonic() + 60
    run = None
    while run is None and time.monotonic() < deadline:
        with tenant_context(acme):
            run = ScheduleRun.objects.filter(schedule_id=schedule_id).first()
        time.sleep(0.25)
    assert run is not None and run.outcome == "started", run and run.reason
    done = wait_for(api_as("bob"), run.job_id)
    assert done["status"] == "succeeded" and done["created_by"] == "bob@acme.test"
    assert done["result"]["rows_scored"] == 150
