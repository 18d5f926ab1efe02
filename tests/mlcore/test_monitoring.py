"""Monitoring of production versions: inputs sampled from online and batch predictions (encrypted,
counted in storage), daily drift reports, the owner told once per crossing, and who may read them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import tenant_context

from mlcore import sampling, storage
from mlcore.models import MonitoringReport, PredictionSample
from mlcore.services import monitoring, usage
from mlcore.storage import SAMPLES
from tenants.limits import quotas
from tenants.models import AuditEvent, TenantUsage, WebhookDelivery
from tests import factories
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset
from tests.mlcore.test_prediction_apis import train_model

pytestmark = pytest.mark.django_db


def rows_of(content: bytes) -> list[dict]:
    """The CSV's rows as an API client sends them (numbers as numbers), without the target."""
    rows = []
    for row in csv.DictReader(io.StringIO(content.decode())):
        rows.append({"tenure": int(row["tenure"]), "monthly": float(row["monthly"]), "plan": row["plan"],
                     "autopay": row["autopay"]})
    return rows


def shifted(content: bytes) -> bytes:
    """The same kind of data with `monthly` moved up by 3 standard deviations (its std is 20)
    and the plans' shares flipped: 80 % basic where training had a third each."""
    out = io.StringIO()
    reader = csv.DictReader(io.StringIO(content.decode()))
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(reader):
        row["monthly"] = f"{float(row['monthly']) + 60:.2f}"
        row["plan"] = "basic" if i % 5 else "pro"
        writer.writerow(row)
    return out.getvalue().encode()


def predict_online(client, model_id: int, rows: list[dict]) -> None:
    for start in range(0, len(rows), 500):
        response = client.post(f"/api/v1/models/{model_id}/predict/", {"rows": rows[start:start + 500]},
                               format="json")
        assert response.status_code == 200, response.content


def reports_of(client, version_id: int) -> list[dict]:
    response = client.get(f"/api/v1/model-versions/{version_id}/monitoring/")
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def trained(api_as, churn):
    return train_model(api_as("bob"), churn["id"])


@pytest.fixture
def drift_endpoint(api_as, settings):
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    response = api_as("alice").post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook",
                                                          "events": ["model.drift_detected"]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_web_worker_leaving_gracefully_stores_the_samples_it_holds(api_as, acme, trained):
    # gunicorn calls worker_exit when a worker is replaced (max_requests) or stopped: the
    # reservoir is written then, not lost with the process.
    from portal import gunicorn_conf

    predict_online(api_as("bob"), trained["model"], rows_of(churn_csv(rows=40, seed=5)))
    with tenant_context(acme):
        assert not PredictionSample.objects.exists()  # still in the process's reservoir
    gunicorn_conf.worker_exit(server=None, worker=None)
    with tenant_context(acme):
        (sample,) = PredictionSample.objects.all()
    assert (sample.source, sample.rows, sample.model_version_id) == ("online", 40, trained["model_version"])
    assert sampling.online_samples.flush() == 0  # nothing left behind, nothing stored twice


def test_a_resample_of_the_training_data_is_not_drift(api_as, acme, trained):
    bob = api_as("bob")
    predict_online(bob, trained["model"], rows_of(churn_csv(rows=600, seed=11)))
    assert sampling.online_samples.flush() == 600

    call_command("monitor_models", "--tenant", "acme", stdout=io.StringIO())
    (report,) = reports_of(bob, trained["model_version"])
    assert report["rows"] == 600 and report["drifted"] is False
    assert report["max_psi"] < 0.1
    assert set(report["features"]) == {"tenure", "monthly", "plan", "autopay"}
    assert all(f["psi"] is not None and f["psi"] < 0.1 for f in report["features"].values())
    assert report["predictions"]["rows"] == 600 and set(report["predictions"]["shares"]) == {"false", "true"}
    assert len(mail.outbox) == 0


def test_a_shifted_batch_is_drift_and_the_owner_is_told_once_per_crossing(
        api_as, acme, trained, drift_endpoint, django_capture_on_commit_callbacks):
    bob = api_as("bob")
    data = upload_dataset(bob, shifted(churn_csv(rows=500, seed=11)), filename="shifted.csv")
    job = bob.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": data["id"]}, format="json")
    assert job.status_code == 202, job.content
    run_jobs("prediction")
    with tenant_context(acme):
        (sample,) = PredictionSample.objects.all()
    assert (sample.source, sample.rows) == ("batch", 500)

    today = timezone.now().date()
    for _ in range(2):  # the day's report run twice (the beat task retried, or the command): told once
        with django_capture_on_commit_callbacks(execute=True):  # the audit entry is appended on commit
            report = monitoring.monitoring_report_run(tenant=acme, version_id=trained["model_version"], day=today)
    assert report.drifted and report.max_psi > 1.0
    features = report.details["features"]
    assert features["monthly"]["psi"] > 0.2 and features["plan"]["psi"] > 0.2
    assert features["tenure"]["psi"] < 0.2  # what did not move is not blamed
    assert features["monthly"]["out_of_range"] > 0.3

    (message,) = mail.outbox
    assert message.to == ["bob@acme.test"] and "Drift detected on Churn v1" in message.subject
    (delivery,) = WebhookDelivery.objects.filter(tenant=acme)
    assert delivery.event_type == "model.drift_detected"
    assert delivery.payload["data"]["model_version"]["id"] == trained["model_version"]
    assert delivery.payload["data"]["report"]["max_psi"] == pytest.approx(report.max_psi)
    (entry,) = AuditEvent.objects.filter(action="model.drift_detected", tenant_id=acme.id)
    assert entry.details["max_psi"] == pytest.approx(report.max_psi) and entry.details["feature"] == report.max_psi_feature

    # The next day drifts too: the same crossing, nobody is told again.
    with tenant_context(acme):
        rows, predictions = monitoring.samples_read(tenant=acme, version=report.model_version, day=today)
    monitoring.samples_store(tenant=acme, version_id=trained["model_version"], day=today + timedelta(days=1),
                             rows=rows, predictions=predictions, source="batch")
    later = monitoring.monitoring_report_run(tenant=acme, version_id=trained["model_version"],
                                             day=today + timedelta(days=1))
    assert later.drifted and later.notified_at is None
    assert len(mail.outbox) == 1 and WebhookDelivery.objects.filter(tenant=acme).count() == 1
    assert [r["day"] for r in reports_of(bob, trained["model_version"])] == [
        (today + timedelta(days=1)).isoformat(), today.isoformat()]


def test_out_of_range_and_missing_values_are_counted_on_known_rows(api_as, acme, trained):
    bob = api_as("bob")
    base = {"tenure": 12, "monthly": 55.0, "plan": "plus", "autopay": "yes"}
    rows = ([base] * 70 + [{**base, "monthly": 5000.0}] * 10 + [{**base, "monthly": None}] * 20)
    rows = [{**row, "plan": None} if i % 4 == 0 else row for i, row in enumerate(rows)]  # 25 missing
    predict_online(bob, trained["model"], rows)
    sampling.online_samples.flush()
    monitoring.monitoring_report_run(tenant=acme, version_id=trained["model_version"], day=timezone.now().date())
    (report,) = reports_of(bob, trained["model_version"])
    monthly, plan = report["features"]["monthly"], report["features"]["plan"]
    assert monthly["missing_rate"] == pytest.approx(0.2)
    assert monthly["out_of_range"] == pytest.approx(10 / 80)
    assert plan["missing_rate"] == pytest.approx(0.25) and plan["out_of_range"] == 0
    assert report["missing_rate"] == pytest.approx(0.25) and report["out_of_range"] == pytest.approx(10 / 80)


def test_samples_are_encrypted_and_count_in_storage(api_as, acme, trained, django_capture_on_commit_callbacks):
    bob = api_as("bob")
    before = TenantUsage.objects.get(tenant=acme).storage_bytes
    predict_online(bob, trained["model"], [{"tenure": 7, "monthly": 87654.321, "plan": "basic",
                                            "autopay": "no"}] * 3)
    sampling.online_samples.flush()
    with tenant_context(acme):
        (sample,) = PredictionSample.objects.all()
        path = storage.object_path(acme, SAMPLES, sample.object_id)
        with storage.open_object(acme, SAMPLES, sample.object_id) as stream:
            assert b"87654.321" in stream.read()
    assert b"87654.321" not in path.read_bytes() and b"basic" not in path.read_bytes()
    assert sample.size_bytes > 0
    assert TenantUsage.objects.get(tenant=acme).storage_bytes == before + sample.size_bytes
    assert usage.tenant_usage_reconcile(tenant=acme) == []  # the reconciler counts samples too

    # Deleting the model gives the sample's bytes back (with the model's) and deletes its file.
    with django_capture_on_commit_callbacks(execute=True):
        assert bob.delete(f"/api/v1/models/{trained['model']}/").status_code == 204
    assert usage.tenant_usage_reconcile(tenant=acme) == []
    assert not path.exists()


def test_a_full_storage_skips_the_sample_not_the_prediction(api_as, acme, trained):
    bob = api_as("bob")
    used = TenantUsage.objects.get(tenant=acme).storage_bytes
    folder = storage.object_path(acme, SAMPLES, "00000000-0000-0000-0000-000000000000").parent
    files_before = set(folder.glob("*"))
    quotas.tenant_limits_set(tenant=acme, overrides={"storage_bytes": used})
    predict_online(bob, trained["model"], [{"tenure": 7, "monthly": 40.0, "plan": "basic", "autopay": "no"}])
    assert sampling.online_samples.flush() == 0
    with tenant_context(acme):
        assert not PredictionSample.objects.exists()
    assert TenantUsage.objects.get(tenant=acme).storage_bytes == used
    assert set(folder.glob("*")) == files_before  # the object written before the refusal is gone


def test_a_non_production_version_is_not_sampled(api_as, acme, trained, churn):
    bob = api_as("bob")
    second = train_model(bob, churn["id"])  # v2, not promoted
    response = bob.post(f"/api/v1/models/{trained['model']}/predict/", {"rows": rows_of(churn_csv(rows=5)),
                                                                         "version": 2}, format="json")
    assert response.status_code == 200 and response.json()["model_version"] == second["model_version"]
    assert sampling.online_samples.flush() == 0


def test_only_those_who_may_see_the_model_read_its_reports(api_as, world, acme, globex, trained):
    monitoring.monitoring_report_run(tenant=acme, version_id=trained["model_version"], day=timezone.now().date())
    url = f"/api/v1/model-versions/{trained['model_version']}/monitoring/"
    assert len(reports_of(api_as("alice"), trained["model_version"])) == 1
    assert api_as("vera").get(url).status_code == 404  # not shared with her
    assert api_as("audrey").get(url).status_code == 403  # auditors read the audit trail, not models
    # Charlie's own (globex) token on acme's host: the membership check answers before anything.
    charlie_on_acme = factories.token_client(world.charlie, globex, host_slug="acme")
    response = charlie_on_acme.get(url)
    assert response.status_code == 404 and b"max_psi" not in response.content
    # On his own workspace, acme's version id names nothing.
    assert api_as("charlie").get(url).status_code == 404
    with tenant_context(globex):
        assert not MonitoringReport.objects.exists()


def test_the_model_page_shows_the_reports_as_a_chart_and_a_table(api_as, page_as, acme, trained):
    bob = api_as("bob")
    predict_online(bob, trained["model"], rows_of(churn_csv(rows=200, seed=3)))
    sampling.online_samples.flush()
    monitoring.monitoring_report_run(tenant=acme, version_id=trained["model_version"], day=timezone.now().date())
    page = page_as("bob").get(f"/models/{trained['model']}/").content.decode()
    assert 'data-testid="monitoring-chart"' in page and 'class="threshold"' in page
    assert page.count('data-testid="monitoring-row"') == 1 and "drift threshold 0.2" in page
    assert 'data-testid="monitoring-features"' in page and "<th scope=\"row\">monthly</th>" in page


def test_the_model_page_says_when_there_is_no_report_yet(page_as, trained):
    page = page_as("bob").get(f"/models/{trained['model']}/").content.decode()
    assert 'data-testid="monitoring-empty"' in page and 'data-testid="monitoring-chart"' not in page


def test_monitoring_goes_on_after_the_training_dataset_is_deleted(api_as, acme, trained, churn):
    bob = api_as("bob")
    assert bob.delete(f"/api/v1/datasets/{churn['id']}/").status_code == 204
    predict_online(bob, trained["model"], rows_of(churn_csv(rows=100, seed=5)))
    sampling.online_samples.flush()
    report = monitoring.monitoring_report_run(tenant=acme, version_id=trained["model_version"],
                                              day=timezone.now().date())
    assert report.rows == 100 and report.max_psi is not None


def test_a_versions_day_keeps_at_most_the_sample_size(api_as, acme, trained, settings):
    settings.PORTAL_MONITORING_SAMPLE_ROWS = 50
    bob = api_as("bob")
    for seed in (1, 2):  # two flush intervals: 100 rows offered each time
        predict_online(bob, trained["model"], rows_of(churn_csv(rows=100, seed=seed)))
        sampling.online_samples.flush()
    with tenant_context(acme):
        assert [s.rows for s in PredictionSample.objects.order_by("id")] == [50]


def test_the_daily_task_sends_one_task_per_production_version_and_that_task_reports(
        api_as, acme, trained, monkeypatch):
    from celery import current_app

    from mlcore import tasks

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args=None, **kw: sent.append((name, args)))
    yesterday = (timezone.now().date() - timedelta(days=1)).isoformat()
    assert tasks.monitoring_daily() == 1
    assert sent == [("mlcore.monitoring_report", [acme.schema_name, trained["model_version"], yesterday])]

    assert tasks.monitoring_report(*sent[0][1]) is True
    (report,) = reports_of(api_as("bob"), trained["model_version"])
    assert report["day"] == yesterday and report["rows"] == 0 and report["max_psi"] is None
    assert tasks.monitoring_report("no_such_schema", trained["model_version"], yesterday) is False


def test_the_command_refuses_a_bad_day_or_tenant():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--day must be a date"):
        call_command("monitor_models", "--day", "yesterday")
    with pytest.raises(CommandError, match="No tenant with the slug 'nope'"):
        call_command("monitor_models", "--tenant", "nope")
