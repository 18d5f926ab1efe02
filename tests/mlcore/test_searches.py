"""Model searches ("Find the best model") through the API: budgets, metering, yielding, cancel, who
sees what (mlcore/automl.py, mlcore/ml/search.py, services/searches.py, apis/searches.py).

Jobs run in-process here (PORTAL_JOB_ISOLATION=inline), each turn of a search claimed through the
fair scheduler like any job; tests/mlcore/test_worker.py runs a search in a real Celery worker.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django_tenants.utils import tenant_context

from mlcore.jobs import queue_for
from mlcore.jobs.runner import execute
from mlcore.management.commands.seed_demo_data import churn_csv as demo_churn_csv
from mlcore.models import Job, ModelVersion
from tenants.limits import scheduler
from tenants.limits.usage import member_month_totals
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

pytestmark = pytest.mark.django_db

FEATURES = ["tenure_months", "monthly_fee", "plan", "autopay", "support_calls", "signed_up"]


def start(client, dataset_id, **overrides):
    body = {"dataset": dataset_id, "target": "churned", "budget_seconds": 300, "budget_cpu_seconds": 300,
            **overrides}
    return client.post("/api/v1/searches/", body, format="json")


def one_turn() -> int:
    """A worker claims the next ticket of the training queue (a fair pick) and runs that one turn."""
    return tenant_turn()[1]


def train(client, dataset_id: int, model_name: str, algorithm: str) -> dict:
    response = client.post("/api/v1/training-jobs/", {
        "dataset": dataset_id, "model_name": model_name, "target": "churned", "algorithm": algorithm,
        "features": FEATURES}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def version_of(client, job: dict) -> dict:
    done = client.get(f"/api/v1/jobs/{job['id']}/").json()
    return client.get(f"/api/v1/model-versions/{done['result']['model_version']}/").json()


@pytest.fixture
def demo(api_as):
    """The demo tenant's bundled churn dataset (seed_demo_data), uploaded by Bob."""
    return upload_dataset(api_as("bob"), demo_churn_csv(), filename="churn.csv")


def test_a_full_search_ranks_its_trials_and_its_best_beats_the_default_model(api_as, demo, acme, world):
    bob = api_as("bob")
    response = start(bob, demo["id"], model_name="Churn search")
    assert response.status_code == 202, response.content
    search = response.json()
    assert (search["status"], search["metric"], search["trials"], search["best_trial"]) == ("queued", "roc_auc", [], None)
    assert search["algorithms"] == ["logistic_regression", "random_forest", "hist_gradient_boosting"]
    # The demo's own model of this dataset (seed_demo_data), and the training form's default.
    demo_default = train(bob, demo["id"], "Churn (demo)", "hist_gradient_boosting")
    form_default = train(bob, demo["id"], "Default", "logistic_regression")
    run_jobs()

    done = bob.get(f"/api/v1/searches/{search['id']}/").json()
    assert done["status"] == "succeeded", done["error"]
    trials = done["trials"]
    assert len(trials) == done["result"]["trials"] >= 10
    assert [t["fraction"] for t in trials[:10]] == [0.25] * 10 and trials[-1]["fraction"] == 1.0
    assert {t["algorithm"] for t in trials[:10]} == set(search["algorithms"])
    assert all(t["cpu_seconds"] > 0 and t["seconds"] > 0 and t["status"] == "succeeded" for t in trials)
    last_rung = [t for t in trials if t["fraction"] == 1.0]
    best = max(last_rung, key=lambda t: t["score"])
    assert done["best_trial"] == done["result"]["best_trial"] == best["number"]
    # The winner went through the training path: a version with the same card as a hand-trained one.
    version = bob.get(f"/api/v1/model-versions/{done['result']['model_version']}/").json()
    assert (version["algorithm"], version["params"]) == (best["algorithm"], best["params"])
    assert version["features"] == FEATURES
    with tenant_context(acme):
        row = ModelVersion.objects.get(pk=version["id"])
        assert row.job_id == search["id"] and row.charts["roc_curve"] and row.feature_importance
    demo_version, form_version = (version_of(bob, job) for job in (demo_default, form_default))
    assert version["metrics"]["roc_auc"] >= demo_version["metrics"]["roc_auc"]
    # Against logistic regression's defaults (one of the candidates) the winner is chosen on
    # validation rows and reported on the hold-out rows: it matches within sampling noise.
    assert version["metrics"]["roc_auc"] == pytest.approx(form_version["metrics"]["roc_auc"], abs=0.002)
    # Every turn of the search was metered to Bob like his training jobs.
    trained = sum(bob.get(f"/api/v1/jobs/{job['id']}/").json()["cpu_seconds"] for job in (demo_default, form_default))
    assert member_month_totals(acme, world.bob.id)["cpu_ms"] / 1000 == pytest.approx(
        done["cpu_seconds"] + trained, abs=0.005)


def test_a_small_cpu_budget_stops_the_search_within_it(api_as, demo, acme, world):
    bob = api_as("bob")
    search = start(bob, demo["id"], budget_cpu_seconds=2).json()
    run_jobs()
    done = bob.get(f"/api/v1/searches/{search['id']}/").json()
    assert done["status"] == "succeeded", done["error"]
    assert 1 <= len(done["trials"]) < 18  # it stopped trying before the plan was done
    assert done["result"]["stop_reason"].startswith("Stopped trying") and "CPU budget" in done["result"]["stop_reason"]
    assert 0 < done["cpu_seconds"] <= 2
    assert member_month_totals(acme, world.bob.id)["cpu_ms"] / 1000 == pytest.approx(done["cpu_seconds"], abs=0.002)


def test_a_small_time_budget_stops_the_search_within_it_plus_one_trial(api_as, demo, acme):
    """The first trial runs; then the search has been going for 12 of its 15 s (its start moved
    back, as a slow machine would have it): no further trial fits, whatever this machine's speed."""
    bob = api_as("bob")
    search = start(bob, demo["id"], budget_seconds=15, algorithms=["random_forest", "hist_gradient_boosting"]).json()
    assert one_turn() == search["id"]
    with tenant_context(acme):
        job = Job.objects.get(pk=search["id"])
        Job.objects.filter(pk=job.pk).update(started_at=job.started_at - timedelta(seconds=12))
    run_jobs()
    done = bob.get(f"/api/v1/searches/{search['id']}/").json()
    assert done["status"] == "succeeded", done["error"]
    assert "time budget" in done["result"]["stop_reason"]
    assert len(done["trials"]) == 1  # of the 6 + 3 + 2 planned for two algorithms
    took = (datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(done["started_at"])).total_seconds()
    assert took <= 15 + max(t["seconds"] for t in done["trials"])


def test_between_trials_the_search_gives_its_worker_back_to_the_fair_scheduler(api_as, demo, world):
    bob, charlie = api_as("bob"), api_as("charlie")
    search = start(bob, demo["id"]).json()
    assert one_turn() == search["id"]
    waiting = bob.get(f"/api/v1/searches/{search['id']}/").json()
    assert (waiting["status"], len(waiting["trials"])) == ("queued", 1)
    assert waiting["message"] == "Waiting for its next turn (1 trials done)"
    globex_data = upload_dataset(charlie, churn_csv(seed=11))
    training = charlie.post("/api/v1/training-jobs/", {"dataset": globex_data["id"], "model_name": "G", "target": "churned",
                                                       "algorithm": "logistic_regression"}, format="json").json()
    # Globex's job arrived after the search's next turn was queued, yet it runs first: acme has
    # just used worker time, globex none.
    assert one_turn() == training["id"]
    assert one_turn() == search["id"]
    assert len(bob.get(f"/api/v1/searches/{search['id']}/").json()["trials"]) == 2


def test_two_tenants_searches_at_once_leave_each_tenants_training_job_its_fair_turn(api_as, demo, acme, globex):
    """Acme's and globex's searches both hold the queue; each tenant then asks for one training job.
    One worker runs turn after turn: each training job starts within the next four turns (its own
    tenant's search turn queued before it, the other tenant's search turn and job), and both
    searches go on afterwards."""
    bob, charlie = api_as("bob"), api_as("charlie")
    globex_data = upload_dataset(charlie, demo_churn_csv(), filename="churn.csv")
    searches = {(acme.id, start(bob, demo["id"]).json()["id"]),
                (globex.id, start(charlie, globex_data["id"]).json()["id"])}
    assert {tenant_turn(), tenant_turn()} == searches  # one trial each, then back in the queue
    jobs = {(acme.id, train(bob, demo["id"], "Churn", "logistic_regression")["id"]),
            (globex.id, train(charlie, globex_data["id"], "Churn", "logistic_regression")["id"])}

    order = [tenant_turn() for _ in range(4)]

    assert jobs <= set(order), order
    assert set(order) - jobs <= searches
    assert tenant_turn() in searches  # the searches go on
    for tenant_id, search_id in searches:
        client = bob if tenant_id == acme.id else charlie
        assert len(client.get(f"/api/v1/searches/{search_id}/").json()["trials"]) >= 2


def tenant_turn() -> tuple[int, int]:
    """One turn; returns (tenant id, job id): job ids repeat across schemas."""
    ticket = scheduler.claim_next(queue_for("training"), "test-worker")
    assert ticket is not None
    execute(ticket)
    return ticket.tenant_id, ticket.job_id


def test_cancel_stops_the_search_and_keeps_its_finished_trials(api_as, demo, acme):
    bob = api_as("bob")
    search = start(bob, demo["id"]).json()
    for _ in range(3):
        one_turn()
    response = bob.post(f"/api/v1/searches/{search['id']}/cancel/")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert run_jobs() == 0
    done = bob.get(f"/api/v1/searches/{search['id']}/").json()
    assert (done["status"], [t["number"] for t in done["trials"]]) == ("cancelled", [1, 2, 3])
    assert done["best_trial"] in (1, 2, 3) and done["result"] == {}
    with tenant_context(acme):
        assert not ModelVersion.objects.exists()


def test_a_member_with_no_cpu_seconds_left_is_refused_at_the_start(api_as, demo, acme, world):
    from tenants.limits.quotas import meter_job
    from tenants.models import Membership

    member = Membership.objects.get(tenant=acme, user=world.bob)
    assert api_as("alice").patch(f"/api/v1/members/{member.id}/", {"limits": {"cpu_seconds": 3}},
                                 format="json").status_code == 200
    meter_job(acme, user_id=world.bob.id, cpu_ms=3_000, peak_memory_bytes=0)
    response = start(api_as("bob"), demo["id"])
    assert response.status_code == 403
    body = response.json()
    assert body["type"].endswith("quota-exceeded") and (body["quota"], body["limit"]) == ("cpu_seconds", 3)
    assert "your 3 CPU-seconds" in body["detail"]
    with tenant_context(acme):
        assert not Job.objects.exists()


def test_the_cpu_budget_is_capped_at_what_the_member_has_left(api_as, demo, acme, world):
    from tenants.limits.quotas import meter_job
    from tenants.models import Membership

    Membership.objects.filter(tenant=acme, user=world.bob).update(limits={"cpu_seconds": 10})
    meter_job(acme, user_id=world.bob.id, cpu_ms=7_500, peak_memory_bytes=0)
    search = start(api_as("bob"), demo["id"], budget_cpu_seconds=100).json()
    assert search["budget_cpu_seconds"] == pytest.approx(2.5)


def test_another_tenants_member_can_neither_see_nor_cancel_a_search(api_as, demo, acme, globex):
    bob = api_as("bob")
    search = start(bob, demo["id"]).json()
    charlie_in_acme, charlie_at_home = api_as("charlie"), api_as("charlie", "globex")
    for client in (charlie_in_acme, charlie_at_home):
        assert client.get(f"/api/v1/searches/{search['id']}/").status_code == 404
        assert client.post(f"/api/v1/searches/{search['id']}/cancel/").status_code == 404
    assert api_as("dana").get(f"/api/v1/searches/{search['id']}/").status_code == 404  # another member's
    assert api_as("vera").get(f"/api/v1/searches/{search['id']}/").status_code == 403
    assert api_as("alice").get(f"/api/v1/searches/{search['id']}/").status_code == 200  # the admin
    assert bob.get(f"/api/v1/searches/{search['id']}/").json()["status"] == "queued"


def test_a_search_elsewhere_is_not_a_search_here(api_as, demo, churn):
    bob = api_as("bob")
    training = bob.post("/api/v1/training-jobs/", {"dataset": churn["id"], "model_name": "T", "target": "churned",
                                                   "algorithm": "logistic_regression"}, format="json").json()
    assert bob.get(f"/api/v1/searches/{training['id']}/").status_code == 404  # a job, not a search


@pytest.mark.parametrize(("overrides", "status", "field"), [
    ({"algorithms": ["magic"]}, 400, "algorithms"),
    ({"algorithms": ["ridge"]}, 422, "algorithms"),
    ({"metric": "rmse"}, 400, "metric"),
    ({"budget_seconds": 1}, 400, "budget_seconds"),
    ({"budget_cpu_seconds": 0}, 400, "budget_cpu_seconds"),
    ({"target": "nope"}, 422, "target"),
])
def test_a_search_that_cannot_work_is_refused_naming_the_field(api_as, demo, acme, overrides, status, field):
    response = start(api_as("bob"), demo["id"], **overrides)
    assert response.status_code == status, response.content
    assert field in [e["field"] for e in response.json()["errors"]]
    with tenant_context(acme):
        assert not Job.objects.exists()


def test_a_retried_start_with_the_same_key_makes_one_search(api_as, demo, acme):
    bob = api_as("bob")
    body = {"dataset": demo["id"], "target": "churned", "budget_seconds": 60, "budget_cpu_seconds": 30}
    first = bob.post("/api/v1/searches/", body, format="json", HTTP_IDEMPOTENCY_KEY="search-1")
    again = bob.post("/api/v1/searches/", body, format="json", HTTP_IDEMPOTENCY_KEY="search-1")
    assert first.status_code == again.status_code == 202
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    with tenant_context(acme):
        assert Job.objects.filter(kind="search").count() == 1


def test_a_member_with_too_few_cpu_seconds_left_to_try_anything_is_refused(api_as, demo, acme, world):
    from tenants.limits.quotas import meter_job
    from tenants.models import Membership

    Membership.objects.filter(tenant=acme, user=world.bob).update(limits={"cpu_seconds": 10})
    meter_job(acme, user_id=world.bob.id, cpu_ms=8_500, peak_memory_bytes=0)
    response = start(api_as("bob"), demo["id"])
    assert response.status_code == 403 and response.json()["type"].endswith("quota-exceeded")
    assert response.json()["detail"].startswith("You have used 8 of your 10 CPU-seconds this month")
