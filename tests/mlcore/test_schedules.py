"""Schedules (mlcore/services/schedules.py): made through the API and pages, fired by the beat's
service as the member who made them, with that member's rights and limits at run time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tenants.utils import tenant_context

from mlcore.models import Dataset, Job, MLModel, Schedule, ScheduleRun
from mlcore.services.schedules import (
    next_run_after,
    schedules_due_refresh,
    schedules_fire_all_tenants,
    schedules_fire_due,
)
from tenants.models import Membership
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset
from tests.mlcore.test_prediction_apis import train_model

pytestmark = pytest.mark.django_db


def new_version(client, dataset_id: int, rows: int, seed: int = 9) -> dict:
    response = client.post(f"/api/v1/datasets/{dataset_id}/versions/",
                           {"file": SimpleUploadedFile("next.csv", churn_csv(rows=rows, seed=seed))},
                           format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def make_schedule(client, **body) -> dict:
    response = client.post("/api/v1/schedules/", {"frequency": "daily", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def make_due(tenant, schedule_id: int) -> None:
    with tenant_context(tenant):
        Schedule.objects.filter(pk=schedule_id).update(next_run_at=timezone.now() - timedelta(minutes=1))
        schedules_due_refresh(tenant=tenant)  # written behind the services' back, as a restore does


def fire(tenant) -> int:
    with tenant_context(tenant):
        return schedules_fire_due(tenant=tenant)


@pytest.fixture
def bobs_model(api_as, churn):
    """Bob's dataset (version 1) and the model he trained on it: {dataset, model, model_version}."""
    trained = train_model(api_as("bob"), churn["id"], name="Churn")
    return {"dataset": churn, **trained}


def test_a_due_scoring_schedule_fires_once_and_scores_the_latest_version(api_as, acme, bobs_model):
    bob = api_as("bob")
    schedule = make_schedule(bob, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    assert schedule["paused"] is False and schedule["created_by"] == "bob@acme.test"
    second = new_version(bob, bobs_model["dataset"]["id"], rows=123)
    make_due(acme, schedule["id"])

    assert fire(acme) == 1
    assert fire(acme) == 0  # moved to its next time as it fired

    runs = bob.get(f"/api/v1/schedules/{schedule['id']}/runs/").json()["results"]
    assert len(runs) == 1 and runs[0]["outcome"] == "started" and runs[0]["dataset"] == second["id"]
    job = bob.get(f"/api/v1/jobs/{runs[0]['job']}/").json()
    assert job["kind"] == "prediction" and job["dataset"] == second["id"]
    assert run_jobs("prediction") == 1
    assert bob.get(f"/api/v1/jobs/{runs[0]['job']}/").json()["result"]["rows_scored"] == 123
    after = bob.get(f"/api/v1/schedules/{schedule['id']}/").json()
    assert after["last_run_at"] is not None
    assert datetime.fromisoformat(after["next_run_at"].replace("Z", "+00:00")) > timezone.now()


def test_a_retraining_schedule_proposes_a_version_and_never_promotes_it(api_as, acme, bobs_model):
    bob = api_as("bob")
    schedule = make_schedule(bob, action="retrain", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    second = new_version(bob, bobs_model["dataset"]["id"], rows=260, seed=3)
    make_due(acme, schedule["id"])

    assert fire(acme) == 1
    assert run_jobs("training") == 1

    model = bob.get(f"/api/v1/models/{bobs_model['model']}/").json()
    assert model["production_version"] == 1
    assert sorted(v["version"] for v in model["versions"]) == [1, 2]
    with tenant_context(acme):
        proposed = MLModel.objects.get(pk=bobs_model["model"]).versions.get(version=2)
        assert proposed.dataset_id == second["id"] and proposed.dataset_version == 2
        assert proposed.job.params["propose_only"] is True


def test_a_retraining_schedule_does_not_promote_even_a_model_without_production(api_as, acme, bobs_model):
    bob = api_as("bob")
    schedule = make_schedule(bob, action="retrain", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    with tenant_context(acme):
        MLModel.objects.filter(pk=bobs_model["model"]).update(production_version=None)
    make_due(acme, schedule["id"])
    assert fire(acme) == 1
    assert run_jobs("training") == 1
    assert bob.get(f"/api/v1/models/{bobs_model['model']}/").json()["production_version"] is None


def test_removing_bob_from_the_workspace_pauses_his_schedules(api_as, acme, bob, bobs_model):
    schedule = make_schedule(api_as("bob"), action="score", dataset=bobs_model["dataset"]["id"],
                             model=bobs_model["model"])
    alice = api_as("alice")
    member_id = Membership.objects.get(user=bob, tenant=acme).id

    assert alice.delete(f"/api/v1/members/{member_id}/").status_code == 204

    paused = alice.get(f"/api/v1/schedules/{schedule['id']}/").json()
    assert paused["paused"] is True and "left the workspace" in paused["paused_reason"]
    make_due(acme, schedule["id"])
    assert fire(acme) == 0
    resumed = alice.post(f"/api/v1/schedules/{schedule['id']}/resume/")
    assert resumed.status_code == 409 and "no longer in the workspace" in resumed.json()["detail"]


def test_a_member_who_lost_the_right_gets_a_failed_run_with_the_reason(api_as, acme, churn):
    alice, bob = api_as("alice"), api_as("bob")
    alices = train_model(alice, upload_dataset(alice, churn_csv(seed=21))["id"], name="Alice churn")
    shared = alice.post(f"/api/v1/models/{alices['model']}/share/", {"email": "bob@acme.test", "permission": "use"},
                        format="json")
    assert shared.status_code == 201
    schedule = make_schedule(bob, action="score", dataset=churn["id"], model=alices["model"])
    alice.delete(f"/api/v1/models/{alices['model']}/share/", {"email": "bob@acme.test"}, format="json")
    make_due(acme, schedule["id"])

    assert fire(acme) == 1

    run = bob.get(f"/api/v1/schedules/{schedule['id']}/runs/").json()["results"][0]
    assert run["outcome"] == "failed" and run["job"] is None
    assert "can no longer see" in run["reason"]
    with tenant_context(acme):
        assert not Job.objects.filter(kind="prediction").exists()


def test_a_member_over_their_limit_gets_a_failed_run_naming_it(api_as, acme, bob, bobs_model):
    bob_api = api_as("bob")
    schedule = make_schedule(bob_api, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    member_id = Membership.objects.get(user=bob, tenant=acme).id
    limited = api_as("alice").patch(f"/api/v1/members/{member_id}/", {"limits": {"predicted_rows": 10}}, format="json")
    assert limited.status_code == 200, limited.content
    make_due(acme, schedule["id"])

    assert fire(acme) == 1

    run = bob_api.get(f"/api/v1/schedules/{schedule['id']}/runs/").json()["results"][0]
    assert run["outcome"] == "failed" and "predicted rows" in run["reason"].lower()


@pytest.mark.parametrize(("cron", "says"), [
    ("61 * * * *", "minute field '61'"),
    ("0 25 * * *", "hour field '25'"),
    ("* * *", "five fields"),
    ("", "five fields"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 * * mon-fry", "day of week field"),
])
def test_cron_expressions_are_checked_with_a_message_naming_the_fault(api_as, acme, bobs_model, cron, says):
    response = api_as("bob").post("/api/v1/schedules/", {
        "action": "score", "dataset": bobs_model["dataset"]["id"], "model": bobs_model["model"],
        "frequency": "cron", "cron": cron}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert says in body["detail"] and body["errors"][0]["field"] == "cron"
    with tenant_context(acme):
        assert not Schedule.objects.exists()


def test_a_cron_timetable_fires_at_the_times_it_names_in_utc():
    at = datetime(2026, 12, 7, 6, 31, 12, tzinfo=UTC)  # a Monday
    assert next_run_after("30 6 * * 1-5", at) == datetime(2026, 12, 8, 6, 30, tzinfo=UTC)
    assert next_run_after("*/15 * * * *", at) == datetime(2026, 12, 7, 6, 45, tzinfo=UTC)
    assert next_run_after("0 0 29 2 *", at) == datetime(2028, 2, 29, 0, 0, tzinfo=UTC)


def test_charlie_can_neither_see_nor_change_acmes_schedules(api_as, bobs_model):
    bob = api_as("bob")
    schedule = make_schedule(bob, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    path = f"/api/v1/schedules/{schedule['id']}/"
    charlie = api_as("charlie")  # admin of globex, on globex's host: every schedule there is his to see
    assert charlie.get("/api/v1/schedules/").json()["count"] == 0
    assert charlie.get(path).status_code == 404
    assert charlie.patch(path, {"frequency": "weekly"}, format="json").status_code == 404
    assert charlie.post(f"{path}pause/").status_code == 404
    assert charlie.get(f"{path}runs/").status_code == 404
    assert charlie.delete(path).status_code == 404
    assert bob.get(path).json()["paused"] is False


def test_charlie_on_acmes_host_gets_404_like_any_stranger(world, bobs_model, api_as):
    from tests import factories

    schedule = make_schedule(api_as("bob"), action="score", dataset=bobs_model["dataset"]["id"],
                             model=bobs_model["model"])
    charlie = factories.token_client(world.charlie, world.globex, host_slug="acme")
    assert charlie.get(f"/api/v1/schedules/{schedule['id']}/").status_code == 404
    assert charlie.get("/api/v1/schedules/").status_code == 404


def test_bob_sees_only_his_own_schedules_and_alice_sees_all(api_as, bobs_model):
    bob, alice = api_as("bob"), api_as("alice")
    mine = make_schedule(bob, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    assert [s["id"] for s in alice.get("/api/v1/schedules/").json()["results"]] == [mine["id"]]
    alices = make_schedule(alice, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    assert [s["id"] for s in bob.get("/api/v1/schedules/").json()["results"]] == [mine["id"]]
    assert bob.get(f"/api/v1/schedules/{alices['id']}/").status_code == 404
    assert api_as("vera").get("/api/v1/schedules/").status_code == 403


def test_bob_pauses_and_resumes_and_a_paused_schedule_does_not_fire(api_as, acme, bobs_model):
    bob = api_as("bob")
    schedule = make_schedule(bob, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    paused = bob.post(f"/api/v1/schedules/{schedule['id']}/pause/").json()
    assert paused["paused"] is True and paused["paused_reason"] == "Paused by bob@acme.test."
    make_due(acme, schedule["id"])
    assert fire(acme) == 0
    resumed = bob.post(f"/api/v1/schedules/{schedule['id']}/resume/").json()
    assert resumed["paused"] is False
    assert datetime.fromisoformat(resumed["next_run_at"].replace("Z", "+00:00")) > timezone.now()
    changed = bob.patch(f"/api/v1/schedules/{schedule['id']}/", {"frequency": "cron", "cron": "0 6 * * 1"},
                        format="json").json()
    assert changed["cron"] == "0 6 * * 1" and changed["frequency"] == "cron"
    assert bob.delete(f"/api/v1/schedules/{schedule['id']}/").status_code == 204
    with tenant_context(acme):
        assert not ScheduleRun.objects.exists() and not Schedule.objects.exists()


def test_bob_makes_and_pauses_a_schedule_from_the_dataset_page(page_as, acme, bobs_model):
    bob = page_as("bob")
    dataset_id = bobs_model["dataset"]["id"]
    assert f'href="/schedules/?dataset={dataset_id}"' in bob.get(f"/datasets/{dataset_id}/").content.decode()
    page = bob.get(f"/schedules/?dataset={dataset_id}")
    assert page.status_code == 200 and 'data-testid="schedule-form"' in page.content.decode()

    refused = bob.post(f"/schedules/?dataset={dataset_id}", {
        "action": "score", "dataset": dataset_id, "model": bobs_model["model"], "frequency": "cron", "cron": "99 * * * *"})
    assert refused.status_code == 400 and "minute field" in refused.content.decode()
    made = bob.post(f"/schedules/?dataset={dataset_id}", {
        "action": "score", "dataset": dataset_id, "model": bobs_model["model"], "frequency": "weekly"})
    assert made.status_code == 302
    with tenant_context(acme):
        schedule = Schedule.objects.get()
    assert schedule.frequency == "weekly" and len(schedule.cron.split()) == 5
    assert bob.post(f"/schedules/{schedule.id}/pause/").status_code == 302
    detail = bob.get(f"/schedules/{schedule.id}/").content.decode()
    assert 'data-testid="resume"' in detail and "Paused by bob@acme.test." in detail


def test_a_retried_create_with_the_same_idempotency_key_makes_one_schedule(api_as, acme, bobs_model):
    bob = api_as("bob")
    body = {"action": "score", "dataset": bobs_model["dataset"]["id"], "model": bobs_model["model"],
            "frequency": "daily"}
    first = bob.post("/api/v1/schedules/", body, format="json", HTTP_IDEMPOTENCY_KEY="sched-1")
    again = bob.post("/api/v1/schedules/", body, format="json", HTTP_IDEMPOTENCY_KEY="sched-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    with tenant_context(acme):
        assert Schedule.objects.count() == 1


def test_an_unexpected_error_in_one_run_is_recorded_and_the_others_still_fire(api_as, acme, bobs_model, caplog):
    from mlcore import storage
    from mlcore.services import datasets as dataset_services

    bob = api_as("bob")
    other = upload_dataset(bob, churn_csv(rows=90, seed=5), filename="other.csv")
    broken = make_schedule(bob, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    fine = make_schedule(bob, action="score", dataset=other["id"], model=bobs_model["model"])
    with tenant_context(acme):  # its profile is lost from storage: not a refusal, an error
        object_id = Dataset.objects.get(pk=bobs_model["dataset"]["id"]).object_id
        storage.delete_object(acme, storage.PROFILES, str(object_id))
    dataset_services._profile_cache.clear()
    make_due(acme, broken["id"])
    make_due(acme, fine["id"])

    assert fire(acme) == 2

    failed = bob.get(f"/api/v1/schedules/{broken['id']}/runs/").json()["results"][0]
    assert failed["outcome"] == "failed" and "unexpected error" in failed["reason"]
    assert bob.get(f"/api/v1/schedules/{fine['id']}/runs/").json()["results"][0]["outcome"] == "started"
    assert "schedule run failed" in caplog.text


def due_index(tenant) -> datetime | None:
    tenant.refresh_from_db(fields=["schedules_due_at"])
    return tenant.schedules_due_at


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_tenants_due_index_follows_every_change_to_its_schedules(api_as, acme, globex, bobs_model):
    bob = api_as("bob")
    assert due_index(acme) is None
    first = make_schedule(bob, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    assert due_index(acme) == moment(first["next_run_at"])
    weekly = make_schedule(bob, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"],
                           frequency="cron", cron="0 6 * * 1")
    assert due_index(acme) == min(moment(first["next_run_at"]), moment(weekly["next_run_at"]))

    bob.post(f"/api/v1/schedules/{first['id']}/pause/")
    assert due_index(acme) == moment(weekly["next_run_at"])  # a paused schedule is not due
    resumed = bob.post(f"/api/v1/schedules/{first['id']}/resume/").json()
    assert due_index(acme) == min(moment(resumed["next_run_at"]), moment(weekly["next_run_at"]))
    changed = bob.patch(f"/api/v1/schedules/{weekly['id']}/", {"frequency": "cron", "cron": "*/5 * * * *"},
                        format="json").json()
    assert due_index(acme) == moment(changed["next_run_at"])

    make_due(acme, first["id"])
    assert due_index(acme) < timezone.now()
    assert fire(acme) == 1  # it moves on to its next time, and the index with it
    with tenant_context(acme):
        nexts = sorted(Schedule.objects.values_list("next_run_at", flat=True))
    assert due_index(acme) == nexts[0] > timezone.now()

    for schedule in (first, weekly):
        assert bob.delete(f"/api/v1/schedules/{schedule['id']}/").status_code == 204
    assert due_index(acme) is None
    assert due_index(globex) is None  # another tenant's row is never touched


def test_removing_bob_clears_the_index_of_his_paused_schedules(api_as, acme, bob, bobs_model):
    make_schedule(api_as("bob"), action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    assert due_index(acme) is not None
    membership = Membership.objects.get(tenant=acme, user=bob)
    assert api_as("alice").delete(f"/api/v1/members/{membership.id}/").status_code == 204
    assert due_index(acme) is None


def test_the_beats_tick_visits_only_the_tenants_with_something_due(api_as, acme, globex, bobs_model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    bob = api_as("bob")
    schedule = make_schedule(bob, action="score", dataset=bobs_model["dataset"]["id"], model=bobs_model["model"])
    with CaptureQueriesContext(connection) as nothing_due:
        assert schedules_fire_all_tenants(sweep=False) == 0
    assert len(nothing_due.captured_queries) == 1  # the tenants whose index is due: none

    make_due(acme, schedule["id"])
    with CaptureQueriesContext(connection) as one_due:
        assert schedules_fire_all_tenants(sweep=False) == 1
    statements = " ".join(q["sql"] for q in one_due.captured_queries)
    assert acme.schema_name in statements and globex.schema_name not in statements


def test_the_hourly_sweep_fires_a_schedule_whose_index_was_lost(api_as, acme, bobs_model):
    schedule = make_schedule(api_as("bob"), action="score", dataset=bobs_model["dataset"]["id"],
                             model=bobs_model["model"])
    with tenant_context(acme):  # due, but its tenant's index never heard of it
        Schedule.objects.filter(pk=schedule["id"]).update(next_run_at=timezone.now() - timedelta(minutes=1))
    type(acme).objects.filter(pk=acme.pk).update(schedules_due_at=None)
    assert schedules_fire_all_tenants(sweep=False) == 0
    on_the_hour = timezone.now().replace(minute=0, second=5)
    assert schedules_fire_all_tenants(now=on_the_hour + timedelta(hours=1)) == 1  # sweep: minute 0
    assert due_index(acme) > timezone.now()


def test_the_upgrade_fills_the_index_from_the_schedules_already_there(api_as, acme, globex, bobs_model):
    import importlib

    from django.apps import apps
    from django.db import connection

    made = make_schedule(api_as("bob"), action="score", dataset=bobs_model["dataset"]["id"],
                         model=bobs_model["model"])
    type(acme).objects.update(schedules_due_at=None)  # as before the migration
    migration = importlib.import_module("tenants.migrations.0014_tenant_schedules_due_at")
    with connection.schema_editor() as editor:
        migration.fill(apps, editor)
    assert due_index(acme) == moment(made["next_run_at"])
    assert due_index(globex) is None
