"""What the schemathesis run (tests/test_api_fuzz.py) found, pinned one by one as Alice.

Each rule is both enforced by the API and stated in the OpenAPI schema.
"""

from __future__ import annotations

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator(urlconf="portal.urls_tenants").get_schema(request=None, public=True)


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=AAA", "page_size=null", "page_size=0",
                                   "page_size=1.5"])
def test_a_page_or_page_size_that_is_not_a_whole_number_from_1_is_a_400(api_as, query):
    response = api_as("alice").get(f"/api/v1/datasets/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == query.split("=")[0]


def test_a_page_after_the_last_is_a_documented_404_and_big_page_sizes_are_capped(api_as, schema):
    alice = api_as("alice")
    assert alice.get("/api/v1/members/?page=99").status_code == 404
    assert alice.get("/api/v1/members/?page_size=100000000000000000000").status_code == 200
    for path in ("/api/v1/datasets/", "/api/v1/jobs/", "/api/v1/models/", "/api/v1/members/",
                 "/api/v1/tokens/", "/api/v1/audit-events/"):
        assert {"400", "404"} <= set(schema["paths"][path]["get"]["responses"]), path


@override_settings(DEBUG=True)
@pytest.mark.parametrize("path", ["/api/v1/datasets/null,null/", "/api/v1/jobs/true/cancel/",
                                  "/api/v1/nothing-here/"])
def test_a_path_no_route_matches_is_a_problem_404_even_with_debug_on(api_as, path):
    response = api_as("alice").get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/tokens/", {"name": 0}, "name"),
    ("/api/v1/tokens/", {"name": "   "}, "name"),
    ("/api/v1/training-jobs/", {"dataset": "1", "model_name": "m", "target": "t", "algorithm": "ridge"},
     "dataset"),
    ("/api/v1/training-jobs/", {"dataset": 1, "model_name": "m", "target": "t", "algorithm": "ridge",
                                "features": []}, "features"),
    ("/api/v1/members/", {"email": "x@acme.test", "role": 1}, "role"),
])
def test_json_bodies_must_have_the_documented_types_and_rules(api_as, path, body, field):
    response = api_as("alice").post(path, body, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_sharing_needs_exactly_one_of_email_and_everyone(api_as, schema):
    from tests.mlcore.conftest import churn_csv, upload_dataset

    alice = api_as("alice")
    dataset = upload_dataset(alice, churn_csv(rows=30))
    both = {"email": "bob@acme.test", "everyone": True, "permission": "view"}
    assert alice.post(f"/api/v1/datasets/{dataset['id']}/share/", both, format="json").status_code == 400
    assert alice.delete(f"/api/v1/datasets/{dataset['id']}/share/", {}, format="json").status_code == 400
    components = schema["components"]["schemas"]
    assert len(components["DatasetGrantInputRequest"]["oneOf"]) == 2
    assert len(components["ModelUngrantInputRequest"]["oneOf"]) == 2
    assert components["PredictionJobInputRequest"]["anyOf"] == [{"required": ["model"]},
                                                                {"required": ["model_version"]}]
    assert components["OnlinePredictionInputRequest"]["properties"]["rows"]["minItems"] == 1
    assert components["TrainingJobInputRequest"]["properties"]["features"]["minItems"] == 1
    assert r"\S" in components["TokenInputRequest"]["properties"]["name"]["pattern"]


def test_token_times_that_may_be_null_are_documented_nullable(api_as, schema):
    token = api_as("alice").get("/api/v1/tokens/").json()["results"][0]
    assert token["revoked_at"] is None
    properties = schema["components"]["schemas"]["Token"]["properties"]
    assert properties["revoked_at"]["nullable"] and properties["last_used_at"]["nullable"]
    assert schema["components"]["schemas"]["Job"]["properties"]["dataset"]["nullable"]


@pytest.mark.parametrize("query", ["since=5324-07-16T09:33:35-23:32", "order=sideways"])
def test_audit_filters_postgresql_cannot_take_or_unknown_orders_are_not_server_errors(api_as, query):
    response = api_as("alice").get(f"/api/v1/audit-events/?{query}")
    assert response.status_code == (200 if query.startswith("since") else 400)
