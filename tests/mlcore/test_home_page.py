"""The overview page (mlcore/views/home.py): recent datasets, models and jobs, as each may see them."""

import re

import pytest
from django_tenants.utils import tenant_context

from mlcore.models import Job, MLModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_work(acme, alice, bob):
    with tenant_context(acme):
        MLModel.objects.create(name="Alice private", owner=alice, task="classification")
        MLModel.objects.create(name="Alice shared", owner=alice, task="regression", everyone_permission="view")
        MLModel.objects.create(name="Bob churn", owner=bob, task="classification")
        Job.objects.create(created_by=alice, kind="training", status="failed", params={"model_name": "Alice run"})
        Job.objects.create(created_by=bob, kind="training", status="succeeded", params={"model_name": "Bob run"})
        Job.objects.create(created_by=bob, kind="prediction", status="running", params={})


def _section(html: bytes, testid: str) -> str:
    return re.search(rf'data-testid="{testid}".*?</section>', html.decode(), re.S).group(0)


def test_bob_sees_his_recent_jobs_and_the_models_he_may_open(page_as, acme_work):
    html = page_as("bob").get("/").content
    models = _section(html, "recent-models")
    assert "Bob churn" in models and "Alice shared" in models
    assert "Alice private" not in models
    jobs = _section(html, "recent-jobs")
    assert "Bob run" in jobs and "Batch prediction" in jobs and "running" in jobs
    assert "Alice run" not in jobs


def test_alice_sees_every_recent_job_and_model(page_as, acme_work):
    html = page_as("alice").get("/").content
    assert "Alice private" in _section(html, "recent-models")
    assert "Alice run" in _section(html, "recent-jobs") and "Bob run" in _section(html, "recent-jobs")


def test_the_overview_lists_only_the_five_latest_jobs(page_as, acme, bob):
    with tenant_context(acme):
        for i in range(7):
            Job.objects.create(created_by=bob, kind="training", status="queued", params={"model_name": f"run {i}"})
    jobs = _section(page_as("bob").get("/").content, "recent-jobs")
    assert jobs.count("<li>") == 5 and "run 6" in jobs and "run 1" not in jobs


def test_vera_sees_models_but_no_jobs_and_audrey_neither(page_as, acme_work):
    vera = page_as("vera").get("/").content
    assert "Alice shared" in _section(vera, "recent-models")
    assert b'data-testid="recent-jobs"' not in vera
    audrey = page_as("audrey").get("/").content
    assert b'data-testid="recent-models"' not in audrey and b'data-testid="recent-jobs"' not in audrey
