"""E-mail when a long job ends: queued by the worker that finished it, sent once by the task,
off when the owner says so, never for short jobs."""

from __future__ import annotations

import pytest
from django.core import mail

from mlcore import tasks
from mlcore.models import Job
from mlcore.services import notifications
from tests.mlcore.conftest import run_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """The tasks the worker queued for e-mails (the broker is real, but nothing consumes them here)."""
    from celery import current_app

    sent = []
    real = current_app.send_task

    def send_task(name, args=None, **kwargs):
        if name == notifications.NOTIFY_TASK:
            sent.append(tuple(args))
            return None
        return real(name, args=args, **kwargs)

    monkeypatch.setattr(current_app, "send_task", send_task)
    return sent


def start_training(client, dataset_id) -> int:
    response = client.post("/api/v1/training-jobs/", {"dataset": dataset_id, "model_name": "Churn",
                                                      "target": "churned", "algorithm": "logistic_regression"},
                           format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_bob_gets_one_email_with_a_link_when_his_long_job_finishes(api_as, churn, acme, settings, queued):
    settings.PORTAL_JOB_NOTIFY_AFTER_SECONDS = 0  # every job counts as long here
    job_id = start_training(api_as("bob"), churn["id"])
    run_jobs("training")
    assert queued == [(acme.schema_name, job_id)]

    assert tasks.job_notify(acme.schema_name, job_id) is True
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["bob@acme.test"]
    assert message.subject.startswith(f"[Acme Corp] Job #{job_id} finished: Training of Churn (version 1)")
    assert "http://acme.localhost" in message.body and f"/jobs/{job_id}/" in message.body
    assert "/account/notifications/" in message.body
    # A retried or duplicated task sends nothing more.
    assert tasks.job_notify(acme.schema_name, job_id) is False
    assert len(mail.outbox) == 1


def test_a_failed_job_says_why(api_as, churn, acme, settings, queued):
    from django_tenants.utils import tenant_context

    settings.PORTAL_JOB_NOTIFY_AFTER_SECONDS = 0
    bob = api_as("bob")
    job_id = start_training(bob, churn["id"])
    with tenant_context(acme):  # the data goes while the job waits: it fails with a reason
        from mlcore.models import Dataset

        Dataset.objects.filter(pk=churn["id"]).delete()
    run_jobs("training")
    with tenant_context(acme):
        assert Job.objects.get(pk=job_id).status == Job.Status.FAILED
    assert queued == [(acme.schema_name, job_id)]
    tasks.job_notify(acme.schema_name, job_id)
    assert " failed: " in mail.outbox[0].subject
    assert "Why: " in mail.outbox[0].body


def test_bob_turns_the_emails_off(api_as, page_as, churn, acme, settings, queued, bob):
    settings.PORTAL_JOB_NOTIFY_AFTER_SECONDS = 0
    page = page_as("bob")
    assert 'name="notify_job_emails"' in page.get("/account/notifications/").content.decode()
    assert page.post("/account/notifications/", {}).status_code == 302  # unticked
    bob.refresh_from_db()
    assert bob.notify_job_emails is False
    job_id = start_training(api_as("bob"), churn["id"])
    run_jobs("training")
    assert queued == []
    assert tasks.job_notify(acme.schema_name, job_id) is False and mail.outbox == []


def test_short_jobs_send_nothing(api_as, churn, settings, queued):
    settings.PORTAL_JOB_NOTIFY_AFTER_SECONDS = 3600
    start_training(api_as("bob"), churn["id"])
    run_jobs("training")
    assert queued == [] and mail.outbox == []
