"""A change of plan, override or member limit applies on the next request of every process,
although each process caches the host -> tenant lookup (PORTAL_TENANT_CACHE_SECONDS)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tenants.limits.quotas import meter_job, tenant_limits_set
from tenants.models import Membership, Tenant, TenantUsage
from tests.mlcore.conftest import churn_csv, upload_dataset

pytestmark = pytest.mark.django_db

SALES = (b"region,units,price\n"
         b"north,10,2.5\n"
         b"south,7,3.0\n")


@pytest.fixture(autouse=True)
def _production_tenant_cache(settings):
    settings.PORTAL_TENANT_CACHE_SECONDS = 30  # as in production (tests look the host up each time)


def upload(client, name: str):
    return client.post("/api/v1/datasets/", {"file": SimpleUploadedFile(f"{name}.csv", SALES), "name": name},
                       format="multipart")


def operator_sets(acme, **overrides) -> None:
    """What an operator does from another process: the tenant row read afresh, then changed."""
    tenant_limits_set(tenant=Tenant.objects.get(pk=acme.pk), overrides=overrides)


def test_a_lowered_storage_limit_refuses_bobs_next_upload_with_413(api_as, acme):
    bob = api_as("bob")
    assert upload(bob, "first").status_code == 201  # the routing cache now holds acme
    operator_sets(acme, storage_bytes=len(SALES) + 10)
    response = upload(bob, "second")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("quota-exceeded")
    assert response.json()["limit"] == len(SALES) + 10
    assert TenantUsage.objects.get(tenant=acme).storage_bytes == len(SALES)


def test_a_limit_lowered_below_usage_refuses_every_reservation(api_as, acme):
    bob = api_as("bob")
    assert upload(bob, "first").status_code == 201
    operator_sets(acme, storage_bytes=1)
    assert upload(bob, "second").status_code == 413
    assert TenantUsage.objects.get(tenant=acme).storage_bytes == len(SALES)


def test_a_lowered_dataset_count_limit_refuses_bobs_next_upload_with_403(api_as, acme):
    bob = api_as("bob")
    assert upload(bob, "first").status_code == 201
    operator_sets(acme, datasets=1)
    response = upload(bob, "second")
    assert response.status_code == 403
    assert response.json()["type"].endswith("quota-exceeded")
    assert TenantUsage.objects.get(tenant=acme).datasets == 1


def test_a_raised_limit_applies_on_the_next_request_too(api_as, acme):
    operator_sets(acme, datasets=1)
    bob = api_as("bob")
    assert upload(bob, "first").status_code == 201
    assert upload(bob, "second").status_code == 403
    operator_sets(acme, datasets=2)
    assert upload(bob, "third").status_code == 201


def start(client, dataset_id):
    body = {"dataset": dataset_id, "model_name": "Churn", "target": "churned",
            "algorithm": "logistic_regression"}
    return client.post("/api/v1/training-jobs/", body, format="json")


def test_a_lowered_cpu_budget_refuses_bobs_next_training_start(api_as, acme, world):
    bob = api_as("bob")
    dataset = upload_dataset(bob, churn_csv(), filename="churn.csv")  # also warms the routing cache
    meter_job(acme, user_id=world.bob.id, cpu_ms=6_000, peak_memory_bytes=0)
    operator_sets(acme, cpu_seconds=5)
    response = start(bob, dataset["id"])
    assert response.status_code == 403
    assert response.json()["limit"] == 5


def test_a_member_cpu_limit_applies_to_bobs_next_training_start(api_as, acme, world):
    from tenants.services import membership_update

    bob = api_as("bob")
    dataset = upload_dataset(bob, churn_csv(), filename="churn.csv")  # also warms the routing cache
    meter_job(acme, user_id=world.bob.id, cpu_ms=6_000, peak_memory_bytes=0)
    membership_update(membership=Membership.objects.get(user=world.bob, tenant=acme),
                      limits={"cpu_seconds": 5}, actor=world.alice)
    response = start(bob, dataset["id"])
    assert response.status_code == 403
    assert response.json()["limit"] == 5
    assert "your 5 CPU-seconds" in response.json()["detail"]

