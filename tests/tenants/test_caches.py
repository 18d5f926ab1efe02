"""Per-process caches keyed by tenant, user or token stay within their bound (tenants/caches.py):
a process that has served thousands of tenants holds no more entries than PER_PROCESS_ENTRIES."""

from __future__ import annotations

import pytest

from mlcore import serving
from tenants import caches
from tenants.accounts import access
from tenants.caches import cache_put
from tenants.limits import quotas
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

pytestmark = pytest.mark.django_db


def test_a_full_cache_drops_its_oldest_entries_first():
    cache: dict[str, int] = {}
    for i, key in enumerate("abcde"):
        cache_put(cache, key, i, limit=3)
    assert cache == {"c": 2, "d": 3, "e": 4}

    cache_put(cache, "c", 9, limit=3)  # refreshed: now the newest
    cache_put(cache, "f", 5, limit=3)
    assert list(cache) == ["e", "c", "f"]


def test_serving_bob_in_acme_then_charlie_in_globex_keeps_one_entry_per_cache(api_as, monkeypatch, settings):
    settings.PORTAL_TENANT_CACHE_SECONDS = 30  # as in production
    monkeypatch.setattr(caches, "PER_PROCESS_ENTRIES", 1)
    access.forget_cached_credentials()
    access.forget_tenant_hosts()
    quotas.forget_cached_limits()
    serving.forget_all()
    bob, charlie = api_as("bob"), api_as("charlie")

    assert bob.get("/api/v1/datasets/").status_code == 200
    assert charlie.get("/api/v1/datasets/").status_code == 200

    assert [host for host in access._tenants_by_host] == [charlie.defaults["HTTP_HOST"]]
    assert len(access._memberships) == 1
    assert len(access._tokens) == 1
    assert len(quotas._limits_cache) == 1


def test_predicting_with_bobs_model_then_charlies_keeps_one_grant(api_as, monkeypatch):
    """The serving cache of who may use which model: one entry per (tenant, model, user)."""
    monkeypatch.setattr(caches, "PER_PROCESS_ENTRIES", 1)
    serving.forget_all()
    models = []
    for name in ("bob", "charlie"):
        client = api_as(name)
        dataset = upload_dataset(client, churn_csv())
        job = client.post("/api/v1/training-jobs/", {"dataset": dataset["id"], "model_name": "Churn",
                                                      "target": "churned", "algorithm": "logistic_regression"},
                          format="json").json()
        run_jobs()
        models.append((client, client.get(f"/api/v1/jobs/{job['id']}/").json()["result"]["model"]))
    row = {"tenure": 3, "monthly": 20.5, "plan": "basic", "autopay": "yes"}

    for client, model_id in models:
        assert client.post(f"/api/v1/models/{model_id}/predict/", {"rows": [row]}, format="json").status_code == 200

    assert len(serving._grants) == 1
