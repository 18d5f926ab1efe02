"""The OpenAPI schema behind /api/docs/: complete, valid, and true to what the API answers.

The API views build their bodies by hand, so the schema is declared beside them (@extend_schema,
tenants/web/openapi.py). These tests keep it from drifting: it generates with no warning, and real
answers to Alice, Bob and Audrey have exactly the keys it documents.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator(urlconf="portal.urls_tenants").get_schema(request=None, public=True)


def properties(schema: dict, component: str) -> tuple[set[str], set[str]]:
    """(every documented key, the required ones) of a component."""
    body = schema["components"]["schemas"][component]
    return set(body["properties"]), set(body.get("required", []))


def assert_documented(schema: dict, component: str, body: dict) -> None:
    documented, required = properties(schema, component)
    assert set(body) <= documented, f"{component} does not document {set(body) - documented}"
    assert required <= set(body), f"{component} requires {required - set(body)}, not answered"


def response_component(schema: dict, path: str, method: str, status: str) -> str:
    content = schema["paths"][path][method]["responses"][status]["content"]
    return content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


def test_the_schema_generates_and_validates_without_a_single_warning(tmp_path):
    # --fail-on-warn turns any guess drf-spectacular has to make into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"),
                 "--urlconf", "portal.urls_tenants")
    assert (tmp_path / "s.yaml").read_text().startswith("openapi: 3")


def test_every_api_operation_documents_its_answers_and_errors(schema):
    operations = [(path, method, op) for path, item in schema["paths"].items()
                  for method, op in item.items()]
    assert len(operations) >= 40
    for path, method, op in operations:
        codes = set(op["responses"])
        assert any(code.startswith("2") for code in codes), (path, method)
        assert "401" in codes, f"{method.upper()} {path} does not say it needs authentication"
        assert op.get("summary"), (path, method)
        assert op["security"] == [{"bearerAuth": []}], (path, method)


def test_the_upload_documents_its_multipart_fields(schema):
    upload = schema["paths"]["/api/v1/datasets/"]["post"]["requestBody"]["content"]
    fields, required = properties(schema, upload["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1])
    assert fields == {"file", "name", "description", "encoding"}
    assert required == {"file"}


def test_bobs_dataset_job_model_and_version_answers_match_the_schema(api_as, schema):
    bob = api_as("bob")
    created = upload_dataset(bob, churn_csv(), filename="churn.csv")
    assert_documented(schema, response_component(schema, "/api/v1/datasets/", "post", "201"), created)
    for column in created["columns"]:
        assert_documented(schema, "ColumnProfile", column)
    detail = bob.get(f"/api/v1/datasets/{created['id']}/").json()
    assert_documented(schema, response_component(schema, "/api/v1/datasets/{dataset_id}/", "get", "200"), detail)
    listed = bob.get("/api/v1/datasets/").json()
    assert_documented(schema, "PaginatedDatasetList", listed)
    assert_documented(schema, "Dataset", listed["results"][0])
    preview = bob.get(f"/api/v1/datasets/{created['id']}/preview/").json()
    assert_documented(schema, "DatasetPreview", preview)

    job = bob.post("/api/v1/training-jobs/", {"dataset": created["id"], "model_name": "Churn",
                                              "target": "churned", "algorithm": "logistic_regression"},
                   format="json").json()
    assert_documented(schema, "Job", job)
    run_jobs()
    done = bob.get(f"/api/v1/jobs/{job['id']}/").json()
    assert_documented(schema, "Job", done)
    model = bob.get(f"/api/v1/models/{done['result']['model']}/").json()
    assert_documented(schema, "ModelDetail", model)
    version = bob.get(f"/api/v1/model-versions/{done['result']['model_version']}/").json()
    assert_documented(schema, "ModelVersion", version)
    online = bob.post(f"/api/v1/models/{model['id']}/predict/",
                      {"rows": [{"tenure": 3, "monthly": 70.0, "plan": "basic", "autopay": "no"}]},
                      format="json").json()
    assert_documented(schema, "OnlinePrediction", online)
    explained = bob.post(f"/api/v1/models/{model['id']}/predict/",
                         {"rows": [{"tenure": 3, "monthly": 70.0, "plan": "basic", "autopay": "no"}],
                          "explain": True}, format="json").json()
    assert_documented(schema, "OnlinePrediction", explained)
    assert_documented(schema, "PredictionExplanation", explained["explanations"][0])
    assert_documented(schema, "FeatureContribution", explained["explanations"][0]["contributions"][0])
    refused = bob.post(f"/api/v1/models/{model['id']}/predict/", {"rows": []}, format="json").json()
    assert_documented(schema, "Problem", refused)


def test_people_usage_tokens_and_audit_answers_match_the_schema(api_as, schema):
    alice = api_as("alice")
    assert_documented(schema, "Me", alice.get("/api/v1/me/").json())
    assert_documented(schema, "Usage", alice.get("/api/v1/usage/").json())
    assert_documented(schema, "UsageNow", alice.get("/api/v1/usage/").json()["usage"])
    members = alice.get("/api/v1/members/").json()
    assert_documented(schema, "PaginatedMemberList", members)
    assert_documented(schema, "Member", members["results"][0])
    added = alice.post("/api/v1/members/", {"email": "newcomer@acme.test", "role": "viewer"},
                       format="json").json()
    assert_documented(schema, "MemberAdded", added)
    token = alice.post("/api/v1/tokens/", {"name": "ci"}, format="json").json()
    assert_documented(schema, "TokenCreated", token)
    assert_documented(schema, "Token", alice.get("/api/v1/tokens/").json()["results"][0])
    events = api_as("audrey").get("/api/v1/audit-events/").json()
    assert_documented(schema, "AuditEvent", events["results"][0])
    assert_documented(schema, "SigningKey", alice.get("/api/v1/audit-events/signing-key/").json())


def test_a_searchs_answers_and_its_trials_match_the_schema(api_as, schema):
    bob = api_as("bob")
    created = upload_dataset(bob, churn_csv(), filename="churn.csv")
    body = {"dataset": created["id"], "target": "churned", "budget_seconds": 60, "budget_cpu_seconds": 30,
            "algorithms": ["logistic_regression"]}
    started = bob.post("/api/v1/searches/", body, format="json").json()
    assert_documented(schema, response_component(schema, "/api/v1/searches/", "post", "202"), started)
    run_jobs()
    done = bob.get(f"/api/v1/searches/{started['id']}/").json()
    assert_documented(schema, response_component(schema, "/api/v1/searches/{search_id}/", "get", "200"), done)
    assert done["trials"]
    for trial in done["trials"]:
        assert_documented(schema, "SearchTrial", trial)
    refused = bob.post("/api/v1/searches/", {**body, "metric": "rmse"}, format="json").json()
    assert_documented(schema, "Problem", refused)
    cancelled = bob.post(f"/api/v1/searches/{started['id']}/cancel/").json()
    assert_documented(schema, response_component(schema, "/api/v1/searches/{search_id}/cancel/", "post", "202"),
                      cancelled)
