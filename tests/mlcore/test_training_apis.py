"""Training jobs through the API (mlcore/apis/, services/models.py, training.py, jobs/).

Jobs run in-process here (PORTAL_JOB_ISOLATION=inline); tests/mlcore/test_worker.py runs them in
a real Celery worker with forked job processes.
"""

from __future__ import annotations

import pickle  # noqa: S403 - only to look inside a model this test trained

import numpy as np
import pandas as pd
import pytest
from django_tenants.utils import tenant_context
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlcore import batch_scoring
from mlcore.models import Job, MLModel, ModelVersion
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

pytestmark = pytest.mark.django_db


def start(client, dataset_id, **overrides):
    body = {"dataset": dataset_id, "model_name": "Churn", "target": "churned",
            "algorithm": "logistic_regression", **overrides}
    return client.post("/api/v1/training-jobs/", body, format="json")


def test_bob_trains_a_model_and_gets_version_one_in_production(api_as, churn):
    bob = api_as("bob")
    response = start(bob, churn["id"])
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "queued" and job["kind"] == "training"
    assert run_jobs() == 1
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["status"] == "succeeded", done
    assert done["progress"] == 100.0
    assert done["result"]["version"] == 1
    model = bob.get(f"/api/v1/models/{done['result']['model']}/").json()
    assert model["name"] == "Churn"
    assert model["production_version"] == 1
    version = bob.get(f"/api/v1/model-versions/{done['result']['model_version']}/").json()
    assert version["target"] == "churned"
    assert version["features"] == ["tenure", "monthly", "plan", "autopay"]
    assert version["task"] == "classification"
    assert set(version["metrics"]) >= {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert {f["feature"] if "feature" in f else f["column"] for f in version["feature_importance"]} == {
        "tenure", "monthly", "plan", "autopay"}


def test_a_dataset_saved_in_windows_1252_trains_like_any_other(api_as, acme):
    bob = api_as("bob")
    text = churn_csv().decode().replace("basic", "básico")
    dataset = upload_dataset(bob, text.encode("cp1252"), filename="churn.csv", encoding="cp1252")
    job = start(bob, dataset["id"]).json()
    assert run_jobs() == 1
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["status"] == "succeeded", done
    with tenant_context(acme):
        pipeline = batch_scoring.load_pipeline(acme, ModelVersion.objects.get(pk=done["result"]["model_version"]))
    # The plan category was learnt as the text it is, not as mis-decoded bytes.
    assert "básico".encode() in pickle.dumps(pipeline)


def test_training_again_adds_the_next_version_and_promotion_moves_production(api_as, churn):
    bob = api_as("bob")
    start(bob, churn["id"])
    start(bob, churn["id"], algorithm="random_forest", params={"n_estimators": 20})
    assert run_jobs() == 2
    model = bob.get("/api/v1/models/").json()["results"][0]
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["production_version"] == 1
    v2 = next(v for v in model["versions"] if v["version"] == 2)
    assert bob.post(f"/api/v1/model-versions/{v2['id']}/promote/").json()["production_version"] == 2
    v1 = next(v for v in model["versions"] if v["version"] == 1)
    assert bob.delete(f"/api/v1/model-versions/{v2['id']}/").status_code == 409  # production
    assert bob.delete(f"/api/v1/model-versions/{v1['id']}/").status_code == 204


def test_the_stored_accuracy_equals_what_scikit_learn_computes_directly(api_as, churn, acme):
    bob = api_as("bob")
    job = start(bob, churn["id"], params={"C": 1.0, "max_iter": 1000},
                evaluation={"method": "holdout", "test_size": 0.25}).json()
    run_jobs()
    result = bob.get(f"/api/v1/jobs/{job['id']}/").json()["result"]
    stored = bob.get(f"/api/v1/model-versions/{result['model_version']}/").json()["metrics"]["accuracy"]

    import io

    frame = pd.read_csv(io.BytesIO(churn_csv()))
    X, y = frame[["tenure", "monthly", "plan", "autopay"]], frame["churned"].to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)
    direct = Pipeline([
        ("prep", ColumnTransformer([
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
             ["tenure", "monthly"]),
            ("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                              ("onehot", OneHotEncoder(handle_unknown="ignore"))]), ["plan", "autopay"]),
        ])),
        ("model", LogisticRegression(C=1.0, max_iter=1000)),
    ]).fit(X_train, y_train)
    assert stored == pytest.approx(accuracy_score(y_test, direct.predict(X_test)), abs=1e-12)


# --- refused at submission: 422 and no job ------------------------------------------------------


@pytest.mark.parametrize("content, overrides, words", [
    (churn_csv(), {"target": "nope"}, "no column named 'nope'"),
    (b"a,b,label\n" + b"".join(f"{i},{i * 2},\n".encode() for i in range(30)), {"target": "label"},
     "has no values"),
    (b"a,b,label\n" + b"".join(f"{i},{i * 2},same\n".encode() for i in range(30)), {"target": "label"},
     "one"),
    (b"a,b,label\n" + b"".join(f"{i},{i * 2},{i % 2}\n".encode() for i in range(6)), {"target": "label"},
     "rows"),
    (b"a,note\n" + b"".join(f"{i},free text number {i} about things\n".encode() for i in range(40)),
     {"target": "note", "task": "regression", "algorithm": "linear_regression"}, "words, not numbers"),
])
def test_what_the_profile_already_shows_is_refused_with_422_and_no_job(api_as, content, overrides, words):
    bob = api_as("bob")
    dataset = upload_dataset(bob, content)
    response = start(bob, dataset["id"], **overrides)
    assert response.status_code == 422, response.content
    body = response.json()
    assert words.lower() in body["detail"].lower()
    assert body["type"].endswith("training-refused")
    assert bob.get("/api/v1/jobs/").json()["count"] == 0


def test_a_dataset_deleted_while_queued_fails_the_job_with_a_reason(api_as, churn):
    bob = api_as("bob")
    job = start(bob, churn["id"]).json()
    assert bob.delete(f"/api/v1/datasets/{churn['id']}/").status_code == 204
    run_jobs()
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["status"] == "failed"
    assert "was deleted before training started" in done["error"]


def test_a_category_with_thousands_of_values_fails_the_job_in_plain_language(api_as):
    bob = api_as("bob")
    rows = "".join(f"cust-{i},{i % 7},{'yes' if i % 3 else 'no'}\n" for i in range(2500))
    dataset = upload_dataset(bob, ("customer,visits,bought\n" + rows).encode())
    job = start(bob, dataset["id"], target="bought").json()
    run_jobs()
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["status"] == "failed"
    assert "customer" in done["error"] and "too many" in done["error"]
    assert bob.get("/api/v1/models/").json()["count"] == 0


def test_no_version_when_the_plan_has_no_room_left(api_as, churn, acme):
    from tenants.limits.quotas import tenant_limits_set

    # Through the operator's service, which bumps the tenant epoch: the upload above already
    # cached acme's limits in this process, and a bare save() would go behind the epoch's back.
    tenant_limits_set(tenant=acme, overrides={"model_versions": 0})
    response = start(api_as("bob"), churn["id"])
    assert response.status_code == 403
    assert response.json()["type"].endswith("quota-exceeded")


def test_a_job_that_finds_no_room_when_it_registers_fails_and_leaves_no_model_file(api_as, churn, acme):
    from mlcore import storage

    def model_files():  # other tests' files stay on disk when their transaction rolls back
        return {info.object_id for info in storage.iter_objects(acme) if info.kind == storage.MODELS}

    bob = api_as("bob")
    before = model_files()
    job = start(bob, churn["id"]).json()
    acme.limit_overrides = {"model_versions": 0}  # lowered while the job waited for a worker
    acme.save(update_fields=["limit_overrides"])
    run_jobs()
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["status"] == "failed"
    assert "0 model versions" in done["error"]
    assert model_files() == before
    assert bob.get("/api/v1/usage/").json()["usage"]["model_versions"] == 0


# --- who may do what --------------------------------------------------------------------------
def test_vera_and_audrey_cannot_train(api_as, churn):
    api_as("bob").post(f"/api/v1/datasets/{churn['id']}/share/", {"email": "vera@acme.test",
                                                                  "permission": "view"}, format="json")
    assert start(api_as("vera"), churn["id"]).status_code == 403
    assert start(api_as("audrey"), churn["id"]).status_code == 403


def test_dana_needs_view_on_the_dataset_to_train_on_it(api_as, churn):
    dana = api_as("dana")
    assert start(dana, churn["id"]).status_code == 404
    api_as("bob").post(f"/api/v1/datasets/{churn['id']}/share/", {"email": "dana@example.test",
                                                                  "permission": "view"}, format="json")
    assert start(dana, churn["id"], model_name="Dana's churn").status_code == 202


def test_charlie_gets_404_for_acmes_jobs_models_and_versions(api_as, churn):
    bob = api_as("bob")
    job = start(bob, churn["id"]).json()
    run_jobs()
    result = bob.get(f"/api/v1/jobs/{job['id']}/").json()["result"]
    charlie = api_as("charlie")
    assert charlie.get(f"/api/v1/jobs/{job['id']}/").status_code == 404
    assert charlie.get(f"/api/v1/models/{result['model']}/").status_code == 404
    assert charlie.get(f"/api/v1/model-versions/{result['model_version']}/").status_code == 404
    assert charlie.post(f"/api/v1/model-versions/{result['model_version']}/promote/").status_code == 404
    assert start(charlie, churn["id"]).status_code == 404


def test_members_see_their_own_jobs_and_admins_see_all(api_as, churn):
    start(api_as("bob"), churn["id"])
    assert api_as("bob").get("/api/v1/jobs/").json()["count"] == 1
    assert api_as("dana").get("/api/v1/jobs/").json()["count"] == 0
    assert api_as("alice").get("/api/v1/jobs/").json()["count"] == 1
    assert api_as("vera").get("/api/v1/jobs/").status_code == 403


def test_a_model_shared_for_view_shows_metrics_but_cannot_be_promoted(api_as, churn):
    bob = api_as("bob")
    start(bob, churn["id"])
    run_jobs()
    model = bob.get("/api/v1/models/").json()["results"][0]
    assert api_as("dana").get(f"/api/v1/models/{model['id']}/").status_code == 404
    grants = bob.post(f"/api/v1/models/{model['id']}/share/", {"email": "dana@example.test",
                                                              "permission": "view"}, format="json")
    assert grants.json() == [{"email": "dana@example.test", "permission": "view"}]
    dana = api_as("dana")
    assert dana.get(f"/api/v1/models/{model['id']}/").status_code == 200
    version_id = model["versions"][0]["id"]
    assert dana.post(f"/api/v1/model-versions/{version_id}/promote/").status_code == 403
    response = bob.post(f"/api/v1/models/{model['id']}/share/", {"email": "vera@acme.test",
                                                                 "permission": "use"}, format="json")
    assert response.status_code == 400


def test_cancelling_a_queued_job_cancels_it_at_once(api_as, churn):
    bob = api_as("bob")
    job = start(bob, churn["id"]).json()
    response = bob.post(f"/api/v1/jobs/{job['id']}/cancel/")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert run_jobs() == 0
    assert api_as("dana").post(f"/api/v1/jobs/{job['id']}/cancel/").status_code == 404


def test_a_finished_job_is_never_run_twice(api_as, churn, acme):
    from mlcore.jobs import runner
    from tenants.models import JobTicket

    bob = api_as("bob")
    job = start(bob, churn["id"]).json()
    run_jobs()
    ticket = JobTicket.objects.get(tenant=acme, job_id=job["id"])
    JobTicket.objects.filter(pk=ticket.pk).update(state=JobTicket.State.RUNNING)  # a re-delivery
    ticket.refresh_from_db()
    runner.execute(ticket)
    with tenant_context(acme):
        assert ModelVersion.objects.count() == 1
        assert Job.objects.get(pk=job["id"]).status == "succeeded"
        assert MLModel.objects.count() == 1


def test_cpu_seconds_are_metered_for_the_job_and_the_month(api_as, churn, acme):
    bob = api_as("bob")
    job = start(bob, churn["id"], algorithm="random_forest", params={"n_estimators": 50}).json()
    run_jobs()
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["cpu_seconds"] > 0
    usage = bob.get("/api/v1/usage/").json()["usage"]
    assert usage["cpu_seconds"] == pytest.approx(done["cpu_seconds"], abs=0.002)
    assert usage["model_versions"] == 1
    with tenant_context(acme):
        version = ModelVersion.objects.get()
    assert usage["storage_bytes"] == churn["size_bytes"] + version.artifact_bytes + version.onnx_bytes
    assert np.isfinite(done["cpu_seconds"])


def test_a_job_the_months_cpu_budget_cannot_cover_is_refused_with_usage_and_limit(api_as, churn, acme, world):
    from tenants.limits.quotas import meter_job, tenant_limits_set

    tenant_limits_set(tenant=acme, overrides={"cpu_seconds": 10})
    meter_job(acme, user_id=world.bob.id, cpu_ms=10_500, peak_memory_bytes=0)
    response = start(api_as("bob"), churn["id"])
    assert response.status_code == 403
    body = response.json()
    assert body["type"].endswith("quota-exceeded")
    assert "10 of its 10 CPU-seconds" in body["detail"] or "used 10 of" in body["detail"]
    assert body["used"] == 10 and body["limit"] == 10
    assert api_as("bob").get("/api/v1/jobs/").json()["count"] == 0


def test_a_job_beyond_the_concurrency_limit_waits_and_says_why(api_as, churn, acme):
    from tenants.limits.quotas import tenant_limits_set
    from tenants.limits.scheduler import claim_next
    from tenants.models import JobTicket

    tenant_limits_set(tenant=acme, overrides={"concurrent_jobs": 1})
    bob = api_as("bob")
    first, second = start(bob, churn["id"]).json(), start(bob, churn["id"]).json()
    from mlcore.jobs import queue_for

    assert claim_next(queue_for("training"), "w1").job_id == first["id"]  # a worker took the first
    assert claim_next(queue_for("training"), "w2") is None
    waiting = bob.get(f"/api/v1/jobs/{second['id']}/").json()
    assert waiting["status"] == "queued"
    assert waiting["wait_reason"] == "waiting: 1 of 1 job slot in use"
    assert JobTicket.objects.get(tenant=acme, job_id=second["id"]).state == JobTicket.State.QUEUED


def test_bobs_own_cpu_limit_refuses_his_training_and_names_the_admin_to_ask(api_as, churn, acme, world):
    from tenants.limits.quotas import meter_job
    from tenants.models import Membership

    member = Membership.objects.get(tenant=acme, user=world.bob)
    assert api_as("alice").patch(f"/api/v1/members/{member.id}/", {"limits": {"cpu_seconds": 2}},
                                 format="json").status_code == 200
    meter_job(acme, user_id=world.bob.id, cpu_ms=4_000, peak_memory_bytes=0)

    response = start(api_as("bob"), churn["id"])

    assert response.status_code == 403
    body = response.json()
    assert body["detail"] == ("You have used 4 of your 2 CPU-seconds this month; "
                              "ask Alice (alice@acme.test) to raise your limit.")
    assert (body["quota"], body["used"], body["limit"]) == ("cpu_seconds", 4, 2)
