"""Idempotency-Key on the API's creating POSTs (tenants/web/idempotency.py), through HTTP."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.test.client import encode_multipart
from django.utils import timezone
from django_tenants.utils import tenant_context

from tests.mlcore.conftest import churn_csv, upload_dataset


@pytest.fixture
def churn(api_as):
    return upload_dataset(api_as("bob"), churn_csv(), filename="churn.csv")


def train(client, dataset_id: int, key: str | None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {"dataset": dataset_id, "model_name": "Churn", "target": "churned",
            "algorithm": "logistic_regression", **extra}
    return client.post("/api/v1/training-jobs/", body, format="json", **headers)


def jobs_in(tenant) -> int:
    from mlcore.models import Job

    with tenant_context(tenant):
        return Job.objects.count()


def test_a_retry_with_the_same_key_gets_the_first_answer_and_makes_no_second_job(api_as, churn, acme):
    bob = api_as("bob")
    first = train(bob, churn["id"], "job-1")
    again = train(bob, churn["id"], "job-1")
    assert first.status_code == 202
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert jobs_in(acme) == 1
    # Without a key, or with another one, it is a new request.
    assert train(bob, churn["id"], None).status_code == 202
    assert train(bob, churn["id"], "job-2").json()["id"] != first.json()["id"]
    assert jobs_in(acme) == 3


def test_the_same_key_with_another_body_or_operation_is_refused_422(api_as, churn, acme):
    bob = api_as("bob")
    assert train(bob, churn["id"], "k-1").status_code == 202
    other_body = train(bob, churn["id"], "k-1", model_name="Another")
    assert other_body.status_code == 422
    assert other_body["Content-Type"] == "application/problem+json"
    assert other_body.json()["type"] == "/problems/idempotency-key-reused"
    assert "different request body" in other_body.json()["detail"]
    other_operation = bob.post("/api/v1/prediction-jobs/", {"dataset": churn["id"], "model": 1},
                               format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other_operation.status_code == 422
    assert "POST /api/v1/training-jobs/" in other_operation.json()["detail"]
    assert jobs_in(acme) == 1


def test_an_upload_retried_with_a_new_multipart_boundary_is_one_dataset(api_as, acme):
    from mlcore.models import Dataset
    from tenants.models import TenantUsage

    bob = api_as("bob")
    content = churn_csv(50)

    def send(boundary: str):
        from django.core.files.uploadedfile import SimpleUploadedFile

        body = encode_multipart(boundary, {"file": SimpleUploadedFile("churn.csv", content)})
        return bob.generic("POST", "/api/v1/datasets/", body, content_type=f"multipart/form-data; boundary={boundary}",
                           HTTP_IDEMPOTENCY_KEY="upload-1")

    first, again = send("first-boundary-123"), send("second-boundary-456")
    assert first.status_code == 201, first.content
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    with tenant_context(acme):
        assert Dataset.objects.count() == 1
    assert TenantUsage.objects.get(tenant=acme).datasets == 1
    # A different file under the same key is another request.
    changed = bob.post("/api/v1/datasets/", {"file": _file(churn_csv(51))}, format="multipart",
                       HTTP_IDEMPOTENCY_KEY="upload-1")
    assert changed.status_code == 422


def _file(content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("churn.csv", content)


def test_keys_belong_to_one_person_in_one_tenant(api_as, acme, globex):
    bob, dana_acme, dana_globex = api_as("bob"), api_as("dana", "acme"), api_as("dana", "globex")
    bob_data = upload_dataset(bob, churn_csv(60))
    globex_data = upload_dataset(dana_globex, churn_csv(61))
    assert train(bob, bob_data["id"], "shared-key").status_code == 202
    # Dana's key of the same name in acme is hers, not Bob's: a new job, not Bob's answer.
    dana_job = train(dana_acme, bob_data["id"], "shared-key")
    assert dana_job.status_code in (202, 404)  # (she may not see Bob's dataset: never a replay)
    assert "Idempotent-Replayed" not in dana_job
    # ...and in globex it is another tenant's key: globex's own job, never acme's answer.
    in_globex = train(dana_globex, globex_data["id"], "shared-key")
    assert in_globex.status_code == 202
    assert "Idempotent-Replayed" not in in_globex
    assert in_globex.json()["dataset"] == globex_data["id"]
    assert jobs_in(globex) == 1


def test_a_refusal_is_replayed_too_and_an_invalid_key_is_400(api_as, churn):
    bob = api_as("bob")
    refused = train(bob, churn["id"], "bad-1", algorithm="no_such_algorithm")
    assert refused.status_code == 422
    assert train(bob, churn["id"], "bad-1", algorithm="no_such_algorithm").json() == refused.json()
    for key in ("has space", "x" * 256, "é"):
        response = train(bob, churn["id"], key)
        assert response.status_code == 400, key
        assert response.json()["type"] == "/problems/invalid-idempotency-key"


def test_a_token_is_replayed_with_its_secret_which_is_stored_sealed(api_as):
    from tenants.models import ApiToken, IdempotentRequest

    bob = api_as("bob")
    first = bob.post("/api/v1/tokens/", {"name": "ci", "scope": "read"}, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    again = bob.post("/api/v1/tokens/", {"name": "ci", "scope": "read"}, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    assert first.status_code == again.status_code == 201
    assert again.json()["token"] == first.json()["token"]
    assert ApiToken.objects.filter(name="ci").count() == 1
    stored = bytes(IdempotentRequest.objects.get(key="t-1").sealed_body)
    assert first.json()["token"].encode() not in stored


def test_a_first_request_whose_process_died_leaves_the_key_answered_409(api_as, bob, acme, churn):
    from tenants.models import IdempotentRequest

    # What a process killed mid-request leaves: the pending row, no answer (its lock went with it).
    IdempotentRequest.objects.create(tenant=acme, user=bob, key="died-1", operation="POST /api/v1/training-jobs/",
                                     sealed_body=b"")
    response = train(api_as("bob"), churn["id"], "died-1")
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/idempotency-key-interrupted"
    assert jobs_in(acme) == 0


def test_answers_are_kept_24_hours_then_purged(api_as, churn, acme):
    from tenants.models import IdempotentRequest
    from tenants.tasks import idempotency_purge

    bob = api_as("bob")
    first = train(bob, churn["id"], "old-1")
    IdempotentRequest.objects.filter(key="old-1").update(created_at=timezone.now() - timedelta(hours=23))
    assert train(bob, churn["id"], "old-1").json() == first.json()
    IdempotentRequest.objects.filter(key="old-1").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_purge() == 1
    assert train(bob, churn["id"], "old-1").json()["id"] != first.json()["id"]
    assert jobs_in(acme) == 2


def test_concurrent_retries_with_one_key_make_one_job(committed, world):
    """Four retries sent at once (committed rows: each thread has its own connection)."""
    from django.db import connection

    from mlcore.models import Job
    from tests import factories

    bob = factories.token_client(world.bob, world.acme)
    dataset = upload_dataset(bob, churn_csv(80))
    answers, barrier = [], threading.Barrier(4)

    clients = [factories.token_client(world.bob, world.acme) for _ in range(4)]

    def retry(client):
        try:
            barrier.wait()
            response = train(client, dataset["id"], "race-1")
            answers.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=retry, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 4
    assert {status for status, _ in answers} == {202}
    assert len({job_id for _, job_id in answers}) == 1
    with tenant_context(world.acme):
        assert Job.objects.count() == 1
