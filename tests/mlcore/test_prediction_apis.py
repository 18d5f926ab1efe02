"""Predictions through the API: batch jobs, online calls, receipts, caches and quotas."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from django_tenants.utils import tenant_context

from mlcore import batch_scoring, serving
from mlcore.models import ModelVersion
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

pytestmark = pytest.mark.django_db

FEATURES = ["tenure", "monthly", "plan", "autopay"]


@pytest.fixture(autouse=True)
def _fresh_serving_cache():
    serving.forget_all()
    yield
    serving.forget_all()


def train_model(client, dataset_id, name="Churn", **overrides) -> dict:
    body = {"dataset": dataset_id, "model_name": name, "target": "churned",
            "algorithm": "logistic_regression", **overrides}
    job = client.post("/api/v1/training-jobs/", body, format="json").json()
    run_jobs("training")
    return client.get(f"/api/v1/jobs/{job['id']}/").json()["result"]


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


def sklearn_pipeline(tenant, version_id):
    with tenant_context(tenant):
        return batch_scoring.load_pipeline(tenant, ModelVersion.objects.get(pk=version_id))


@pytest.fixture
def trained(api_as, churn):
    return train_model(api_as("bob"), churn["id"])


# --- batch -------------------------------------------------------------------------------------
def test_batch_predictions_equal_scikit_learns_and_come_as_csv_and_parquet(api_as, acme, churn, trained):
    bob = api_as("bob")
    scoring = churn_csv(rows=120, seed=99).replace(b"tenure,", b"customer,tenure,", 1)
    lines = scoring.decode().splitlines()
    scoring = ("\n".join([lines[0]] + [f"c{i},{line}" for i, line in enumerate(lines[1:], 1)]) + "\n").encode()
    dataset = upload_dataset(bob, scoring, filename="to-score.csv")
    response = bob.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": dataset["id"],
                                                     "id_column": "customer"}, format="json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["kind"] == "prediction"
    assert run_jobs("prediction") == 1
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["status"] == "succeeded", done
    assert done["result"]["rows_scored"] == 120 and done["result"]["rows_rejected"] == 0

    out = pd.read_csv(io.BytesIO(body_of(bob.get(f"/api/v1/jobs/{job['id']}/result/"))))
    # yes/no was profiled as boolean: its classes are the canonical false/true.
    assert list(out.columns) == ["row", "customer", "prediction", "proba_false", "proba_true"]
    frame = pd.read_csv(io.BytesIO(scoring))
    pipeline = sklearn_pipeline(acme, trained["model_version"])
    canonical = frame[FEATURES].replace({"autopay": {"yes": "true", "no": "false"}})
    expected = [str(label).lower() for label in pipeline.predict(canonical)]
    assert out["prediction"].astype(str).str.lower().tolist() == expected
    np.testing.assert_allclose(out[["proba_false", "proba_true"]].to_numpy(),
                               pipeline.predict_proba(canonical), rtol=1e-6)
    assert out["row"].tolist() == list(range(1, 121))
    assert out["customer"].tolist()[:2] == ["c1", "c2"]

    parquet = pq.read_table(io.BytesIO(body_of(bob.get(f"/api/v1/jobs/{job['id']}/result/?format=parquet"))))
    assert [str(v).lower() for v in parquet.column("prediction").to_pylist()] == expected


def test_a_file_to_score_in_windows_1252_is_read_as_declared(api_as, trained):
    bob = api_as("bob")
    scoring = churn_csv(rows=30, seed=5).decode().replace("tenure,", "client,tenure,", 1)
    lines = scoring.splitlines()
    scoring = "\n".join([lines[0]] + [f"Zoë {i},{line}" for i, line in enumerate(lines[1:], 1)]) + "\n"
    dataset = upload_dataset(bob, scoring.encode("cp1252"), filename="to-score.csv", encoding="cp1252")
    job = bob.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": dataset["id"],
                                                "id_column": "client"}, format="json").json()
    assert run_jobs("prediction") == 1
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["status"] == "succeeded", done
    out = pd.read_csv(io.BytesIO(body_of(bob.get(f"/api/v1/jobs/{job['id']}/result/"))))
    assert out["client"].tolist()[:2] == ["Zoë 1", "Zoë 2"]  # written back as UTF-8


def test_the_receipt_binds_input_model_and_output_and_is_signed(api_as, churn, trained):
    from tenants.crypto import signing

    bob = api_as("bob")
    job = bob.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": churn["id"]},
                   format="json").json()
    run_jobs("prediction")
    receipt = bob.get(f"/api/v1/jobs/{job['id']}/receipt/").json()
    assert receipt["input_sha256"] == churn["sha256"]
    assert receipt["model_version"] == trained["model_version"]
    assert receipt["rows_scored"] == 300
    import hashlib

    output = body_of(bob.get(f"/api/v1/jobs/{job['id']}/result/"))
    assert receipt["output_sha256"] == hashlib.sha256(output).hexdigest()
    assert signing.verify(receipt)
    key = bob.get("/api/v1/audit-events/signing-key/").json()
    assert key["key_id"] == receipt["key_id"]
    tampered = dict(receipt, rows_scored=1)
    assert not signing.verify(tampered)
    assert len(base64.b64decode(receipt["signature"])) == 64


def test_missing_columns_are_named_before_any_work_and_no_job_is_made(api_as, trained):
    bob = api_as("bob")
    dataset = upload_dataset(bob, b"tenure,plan\n1,basic\n2,pro\n", filename="partial.csv")
    response = bob.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": dataset["id"]},
                        format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["missing_columns"] == ["monthly", "autopay"]
    assert "'monthly', 'autopay'" in body["detail"]
    assert bob.get("/api/v1/jobs/?kind=prediction").json()["count"] == 0


def test_bad_values_go_to_the_errors_file_with_row_and_column(api_as, trained):
    bob = api_as("bob")
    rows = b"tenure,monthly,plan,autopay\n3,50.5,basic,yes\n4,50.5,plus,no\n5,60,pro,yes\n"
    dataset = upload_dataset(bob, rows, filename="mixed.csv")
    # A later file in the same format where one value is not a number: use a text column upload.
    bad = upload_dataset(bob, b"tenure,monthly,plan,autopay\n3,50.5,basic,yes\nlots,50.5,plus,no\n5,60,pro,yes\n",
                         filename="bad.csv")
    assert dataset["id"] != bad["id"]
    job = bob.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": bad["id"]},
                   format="json").json()
    run_jobs("prediction")
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert done["status"] == "succeeded"
    assert done["result"]["rows_scored"] == 2 and done["result"]["rows_rejected"] == 1
    errors = pd.read_csv(io.BytesIO(body_of(bob.get(f"/api/v1/jobs/{job['id']}/errors/"))))
    assert errors.to_dict("records")[0]["row"] == 2
    assert errors.to_dict("records")[0]["column"] == "tenure"
    assert "not a number" in errors.to_dict("records")[0]["message"]


def test_output_cells_are_neutralised_against_formula_injection(api_as, trained):
    bob = api_as("bob")
    content = b"ref,tenure,monthly,plan,autopay\n=cmd|' /C calc'!A0,3,50.5,basic,yes\n-12,4,50,plus,no\n"
    dataset = upload_dataset(bob, content, filename="evil.csv")
    job = bob.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": dataset["id"],
                                                "id_column": "ref"}, format="json").json()
    run_jobs("prediction")
    text = body_of(bob.get(f"/api/v1/jobs/{job['id']}/result/")).decode()
    assert "'=cmd" in text
    assert '\n2,"-12",' in text  # a plain number is never prefixed


def test_viewers_and_auditors_cannot_run_prediction_jobs(api_as, churn, trained):
    body = {"model": trained["model"], "dataset": churn["id"]}
    assert api_as("vera").post("/api/v1/prediction-jobs/", body, format="json").status_code == 403
    assert api_as("audrey").post("/api/v1/prediction-jobs/", body, format="json").status_code == 403


def test_dana_needs_use_on_the_model(api_as, churn, trained):
    bob, dana = api_as("bob"), api_as("dana")
    bob.post(f"/api/v1/datasets/{churn['id']}/share/", {"email": "dana@example.test", "permission": "view"},
             format="json")
    body = {"model": trained["model"], "dataset": churn["id"]}
    assert dana.post("/api/v1/prediction-jobs/", body, format="json").status_code == 404
    bob.post(f"/api/v1/models/{trained['model']}/share/", {"email": "dana@example.test", "permission": "view"},
             format="json")
    assert dana.post("/api/v1/prediction-jobs/", body, format="json").status_code == 403
    bob.post(f"/api/v1/models/{trained['model']}/share/", {"email": "dana@example.test", "permission": "use"},
             format="json")
    assert dana.post("/api/v1/prediction-jobs/", body, format="json").status_code == 202


# --- online ------------------------------------------------------------------------------------
ROWS = [{"tenure": 2, "monthly": 95.0, "plan": "basic", "autopay": "no"},
        {"tenure": 60, "monthly": 30.0, "plan": "pro", "autopay": "yes"},
        {"tenure": 10, "monthly": None, "plan": "plus", "autopay": "yes"}]


def test_online_predictions_equal_scikit_learns(api_as, acme, trained):
    bob = api_as("bob")
    response = bob.post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model_version"] == trained["model_version"] and body["version"] == 1
    pipeline = sklearn_pipeline(acme, trained["model_version"])
    frame = pd.DataFrame(ROWS).replace({"autopay": {"yes": "true", "no": "false"}})
    assert body["predictions"] == pipeline.predict(frame).tolist()
    expected = pipeline.predict_proba(frame)
    got = np.array([[p["false"], p["true"]] for p in body["probabilities"]])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    single = bob.post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS[:1]}, format="json").json()
    assert single["predictions"] == body["predictions"][:1]


def test_online_missing_columns_and_bad_values_are_422_with_names(api_as, trained):
    bob = api_as("bob")
    url = f"/api/v1/models/{trained['model']}/predict/"
    response = bob.post(url, {"rows": [{"tenure": 1, "plan": "basic"}]}, format="json")
    assert response.status_code == 422
    assert response.json()["missing_columns"] == ["monthly", "autopay"]
    response = bob.post(url, {"rows": [dict(ROWS[0], tenure="many")]}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rows[0].tenure"
    assert bob.post(url, {"rows": []}, format="json").status_code == 400
    assert bob.post(url, {"rows": ROWS, "version": 7}, format="json").status_code == 404


def test_online_predictions_refuse_bad_json_and_answer_only_json(api_as, trained):
    bob = api_as("bob")
    url = f"/api/v1/models/{trained['model']}/predict/"
    for body in (b'{"rows": [{"tenure": NaN}]}', b'{"rows": [', '\ufeff{"rows": []}'.encode()):
        response = bob.generic("POST", url, body, content_type="application/json")
        assert response.status_code == 400, body
        assert "JSON parse error" in response.json()["detail"]
    assert bob.post(url, {"rows": ROWS}, format="json", HTTP_ACCEPT="text/html").status_code == 406
    accepted = bob.post(url, {"rows": ROWS}, format="json", HTTP_ACCEPT="application/json; indent=2")
    assert accepted.status_code == 200 and accepted["Content-Type"].startswith("application/json")


def test_a_tenant_cannot_use_another_tenants_model_id(api_as, trained):
    charlie = api_as("charlie")
    response = charlie.post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS}, format="json")
    assert response.status_code == 404


def test_cache_entries_of_two_tenants_with_equal_ids_stay_separate(api_as, acme, globex, trained):
    from tests.mlcore.test_dataset_apis import align_next_id

    charlie = api_as("charlie")
    for table, next_id in (("mlcore_dataset", 1), ("mlcore_mlmodel", trained["model"]),
                           ("mlcore_modelversion", trained["model_version"]), ("mlcore_job", 1)):
        align_next_id(globex, table, next_id if table != "mlcore_dataset" else 1_000)
    # Globex learns the opposite: churn when autopay is on.
    flipped = churn_csv(seed=5).replace(b",yes\n", b",TMP\n").replace(b",no\n", b",yes\n").replace(b",TMP\n", b",no\n")
    g_data = upload_dataset(charlie, flipped, filename="g.csv")
    g_model = train_model(charlie, g_data["id"], name="Churn")
    assert (g_model["model"], g_model["model_version"]) == (trained["model"], trained["model_version"])

    bob = api_as("bob")
    acme_answer = bob.post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS}, format="json").json()
    globex_answer = charlie.post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS},
                                 format="json").json()
    assert acme_answer["probabilities"] != globex_answer["probabilities"]
    assert sorted(serving.cached_versions(acme)) == [trained["model_version"]]
    assert sorted(serving.cached_versions(globex)) == [trained["model_version"]]
    again = bob.post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS}, format="json").json()
    assert again == acme_answer


def test_promoting_a_version_switches_online_predictions_at_once(api_as, churn, trained):
    bob = api_as("bob")
    url = f"/api/v1/models/{trained['model']}/predict/"
    assert bob.post(url, {"rows": ROWS}, format="json").json()["version"] == 1
    second = train_model(bob, churn["id"], algorithm="random_forest", params={"n_estimators": 10})
    assert bob.post(url, {"rows": ROWS}, format="json").json()["version"] == 1
    bob.post(f"/api/v1/model-versions/{second['model_version']}/promote/")
    assert bob.post(url, {"rows": ROWS}, format="json").json()["version"] == 2
    assert bob.post(url, {"rows": ROWS, "version": 1}, format="json").json()["version"] == 1


def test_a_revoked_token_is_refused_on_the_very_next_prediction(api_as, world, trained):
    from tenants.models import ApiToken
    from tenants.services import api_token_revoke

    bob = api_as("bob")
    url = f"/api/v1/models/{trained['model']}/predict/"
    assert bob.post(url, {"rows": ROWS}, format="json").status_code == 200
    for token in ApiToken.objects.filter(user=world.bob, revoked_at__isnull=True):
        api_token_revoke(token=token, actor=world.bob)
    assert bob.post(url, {"rows": ROWS}, format="json").status_code == 401


def test_a_read_scoped_token_may_predict_but_viewers_may_not(api_as, trained):
    url = f"/api/v1/models/{trained['model']}/predict/"
    assert api_as("bob", scope="read").post(url, {"rows": ROWS}, format="json").status_code == 200
    assert api_as("vera").post(url, {"rows": ROWS}, format="json").status_code == 403


def test_online_predictions_are_metered_and_audited_as_counted_entries(api_as, acme, trained):
    from tenants.auditing import online as audit_online
    from tenants.limits import metering
    from tenants.models import AuditEvent

    bob = api_as("bob")
    url = f"/api/v1/models/{trained['model']}/predict/"
    for _ in range(3):
        assert bob.post(url, {"rows": ROWS}, format="json").status_code == 200
    metering.online_buffer.flush()
    audit_online.online_flush(tenant_id=acme.id)
    assert bob.get("/api/v1/usage/").json()["usage"]["predicted_rows"] == 9
    entry = AuditEvent.objects.filter(tenant_id=acme.id, action="prediction.online").get()
    assert entry.details["count"] == 3 and entry.details["rows"] == 9
    assert entry.object_id == str(trained["model_version"])


def test_the_monthly_prediction_budget_is_enforced_online(api_as, acme, trained):
    from tenants.limits.quotas import tenant_limits_set

    tenant_limits_set(tenant=acme, overrides={"predicted_rows": 2})
    response = api_as("bob").post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS}, format="json")
    assert response.status_code == 403
    assert response.json()["type"].endswith("quota-exceeded")


# --- a member's own predicted-rows limit -------------------------------------------------------
def limit_predicted_rows(api_as, world, name: str, rows: int) -> None:
    """Alice, the admin, gives one member a monthly predicted-rows limit through the API."""
    from tenants.models import Membership

    member = Membership.objects.get(tenant=world.acme, user=getattr(world, name))
    response = api_as("alice").patch(f"/api/v1/members/{member.id}/", {"limits": {"predicted_rows": rows}},
                                     format="json")
    assert response.status_code == 200, response.content


def test_bobs_own_predicted_rows_limit_refuses_his_next_online_prediction(api_as, world, trained):
    from tenants.limits import metering

    limit_predicted_rows(api_as, world, "bob", 4)
    bob, url = api_as("bob"), f"/api/v1/models/{trained['model']}/predict/"
    assert bob.post(url, {"rows": ROWS}, format="json").status_code == 200
    metering.online_buffer.flush()
    assert bob.post(url, {"rows": ROWS[:1]}, format="json").status_code == 200  # 3 + 1 fits in 4
    metering.online_buffer.flush()

    refused = bob.post(url, {"rows": ROWS[:1]}, format="json")

    assert refused.status_code == 403
    body = refused.json()
    assert body["type"].endswith("quota-exceeded")
    assert (body["quota"], body["used"], body["limit"]) == ("predicted_rows", 4, 4)
    assert body["detail"] == ("You have used 4 of your 4 predicted rows this month; "
                              "ask Alice (alice@acme.test) to raise your limit.")
    # The workspace's own budget is not spent: a member without a limit of their own goes on.
    assert api_as("alice").post(url, {"rows": ROWS}, format="json").status_code == 200


def test_bobs_own_limit_counts_the_rows_of_the_request_itself(api_as, world, trained):
    limit_predicted_rows(api_as, world, "bob", 2)

    refused = api_as("bob").post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS}, format="json")

    assert refused.status_code == 403
    assert (refused.json()["used"], refused.json()["limit"]) == (0, 2)


def test_bobs_own_predicted_rows_limit_refuses_a_batch_job(api_as, world, churn, trained):
    limit_predicted_rows(api_as, world, "bob", churn["rows"] - 1)
    body = {"model": trained["model"], "dataset": churn["id"]}

    refused = api_as("bob").post("/api/v1/prediction-jobs/", body, format="json")

    assert refused.status_code == 403
    assert refused.json()["type"].endswith("quota-exceeded")
    assert "your " + f"{churn['rows'] - 1:,}" + " predicted rows" in refused.json()["detail"]
    assert api_as("alice").post("/api/v1/prediction-jobs/", body, format="json").status_code == 202


def test_a_warm_online_prediction_runs_no_sql_statement(api_as, world, trained, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.PORTAL_TENANT_CACHE_SECONDS = 30  # as in production (tests look the host up each time)
    limit_predicted_rows(api_as, world, "bob", 1_000)  # the member's limit is checked too
    bob, url = api_as("bob"), f"/api/v1/models/{trained['model']}/predict/"
    for _ in range(2):
        assert bob.post(url, {"rows": ROWS}, format="json").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert bob.post(url, {"rows": ROWS}, format="json").status_code == 200

    assert "\n".join(q["sql"] for q in queries.captured_queries) == ""
