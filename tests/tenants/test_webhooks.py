"""Webhooks: endpoints registered by admins, events sent signed to a receiver on loopback, retried,
replayed, never to another tenant, never to private addresses unless the operator allows them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django_tenants.utils import tenant_context

from mlcore.models import Dataset, Job
from tenants.limits import metering, quotas
from tenants.models import AuditEvent, QuotaAlert, WebhookDelivery, WebhookEndpoint
from tenants.webhooks import delivery, services
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

pytestmark = pytest.mark.django_db


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that answers with the given statuses in turn (then 200)."""

    def __init__(self, statuses=(), delay: float = 0.0):
        self.statuses = list(statuses)
        self.delay = delay
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(receiver.delay)
                receiver.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": body, "path": self.path})
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/portal?source=test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receivers():
    made = []

    def make(statuses=(), delay=0.0):
        made.append(Receiver(statuses, delay))
        return made[-1]

    yield make
    for receiver in made:
        receiver.stop()


@pytest.fixture
def loopback_allowed(settings):
    """The operator's allow-list, as a test on one machine needs it; the retries wait 0 s."""
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.PORTAL_WEBHOOK_RETRY_SECONDS = [0, 0]
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 3


@pytest.fixture
def eager():
    """Delivery tasks run in this process when they are queued (after the commit)."""
    import tenants.tasks  # noqa: F401 - registers the tasks, as a worker does when it starts
    from portal.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture
def churn(api_as):
    return upload_dataset(api_as("bob"), churn_csv(), filename="churn.csv")


def verify(secret: str, request: dict) -> bool:
    """What a receiver does (Standard Webhooks), written here independently of the portal's code."""
    headers = request["headers"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request["body"]
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(f"v1,{expected}", part) for part in headers["webhook-signature"].split())


def register(client, url, events=("job.succeeded", "job.failed")):
    response = client.post("/api/v1/webhooks/", {"url": url, "events": list(events)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def start_training(client, dataset_id) -> int:
    response = client.post("/api/v1/training-jobs/", {"dataset": dataset_id, "model_name": "Churn",
                                                      "target": "churned", "algorithm": "logistic_regression"},
                           format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


# --- registration ----------------------------------------------------------------------------------
def test_alice_registers_an_endpoint_and_sees_its_secret_once(api_as, acme, loopback_allowed, receivers,
                                                               django_capture_on_commit_callbacks):
    alice = api_as("alice")
    with django_capture_on_commit_callbacks(execute=True):  # the audit entry follows the commit
        created = register(alice, receivers().url)
    assert created["secret"].startswith("whsec_") and created["events"] == ["job.succeeded", "job.failed"]
    assert "secret" not in alice.get(f"/api/v1/webhooks/{created['id']}/").json()
    listed = alice.get("/api/v1/webhooks/").json()
    assert [e["id"] for e in listed["results"]] == [created["id"]] and "secret" not in listed["results"][0]
    row = WebhookEndpoint.objects.get(pk=created["id"])
    assert row.tenant == acme and created["secret"].encode() not in bytes(row.secret_encrypted)
    assert AuditEvent.objects.filter(tenant_id=acme.id, action="webhook.create", object_id=str(row.id)).exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "http://10.1.2.3/hook",
                                 "http://169.254.169.254/latest/meta-data/", "http://[::1]/hook",
                                 "http://localhost/hook", "ftp://93.184.215.14/hook"])
def test_private_addresses_are_refused_without_the_operators_setting(api_as, acme, url):
    response = api_as("alice").post("/api/v1/webhooks/", {"url": url, "events": ["job.failed"]}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "url"
    assert not WebhookEndpoint.objects.filter(tenant=acme).exists()


def test_a_public_address_is_accepted(api_as):
    assert register(api_as("alice"), "https://93.184.215.14/hook")["url"] == "https://93.184.215.14/hook"


def test_the_address_is_checked_again_at_delivery(api_as, acme, settings, loopback_allowed, receivers, eager,
                                                  django_capture_on_commit_callbacks):
    receiver = receivers()
    endpoint = register(api_as("alice"), receiver.url)
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = []  # as if the name now resolved to a private address
    with django_capture_on_commit_callbacks(execute=True):
        api_as("alice").post(f"/api/v1/webhooks/{endpoint['id']}/test/")
    assert receiver.requests == []
    row = WebhookDelivery.objects.get(endpoint_id=endpoint["id"])
    assert "public addresses only" in row.last_error and row.delivered_at is None


def test_the_delivery_connects_to_the_address_it_checked(api_as, monkeypatch, loopback_allowed, receivers, eager,
                                                         django_capture_on_commit_callbacks):
    """DNS rebinding: the name answers a checked address for the check and another one after; the
    delivery must go to the checked one, resolving the name once per attempt."""
    import socket

    receiver = receivers()
    port = receiver.server.server_address[1]
    real, lookups = socket.getaddrinfo, []

    def getaddrinfo(host, *args, **kwargs):
        if host != "hooks.partner.test":
            return real(host, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) <= 2 else "10.255.255.1"  # rebinds after two answers
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    endpoint = register(api_as("alice"), f"http://hooks.partner.test:{port}/in")
    with django_capture_on_commit_callbacks(execute=True):
        api_as("alice").post(f"/api/v1/webhooks/{endpoint['id']}/test/")
    assert len(lookups) == 2  # registration, then the attempt; the connection used the checked address
    assert [r["headers"]["host"] for r in receiver.requests] == [f"hooks.partner.test:{port}"]
    assert WebhookDelivery.objects.get(endpoint_id=endpoint["id"]).last_response_code == 200


# --- delivery --------------------------------------------------------------------------------------
def test_the_receiver_verifies_the_signature_and_gets_a_retry_after_a_500(
        api_as, acme, churn, loopback_allowed, receivers, eager, django_capture_on_commit_callbacks):
    receiver = receivers(statuses=[500])
    endpoint = register(api_as("alice"), receiver.url, events=["job.succeeded"])
    job_id = start_training(api_as("bob"), churn["id"])
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs("training")
    assert len(receiver.requests) == 1  # answered 500: the delivery waits for its retry
    row = WebhookDelivery.objects.get(endpoint_id=endpoint["id"])
    assert (row.attempts, row.last_response_code, row.delivered_at) == (1, 500, None)
    assert row.next_attempt_at is not None

    assert delivery.deliveries_send_due() == 1  # the sweep (beat) finds it due
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == row.event_id
    assert all(verify(endpoint["secret"], r) for r in receiver.requests)
    assert not verify("whsec_" + base64.b64encode(b"x" * 24).decode(), second)
    event = json.loads(second["body"])
    assert event["type"] == "job.succeeded" and event["id"] == row.event_id and event["tenant"] == "acme"
    assert event["data"]["job"]["id"] == job_id and event["data"]["job"]["status"] == "succeeded"
    assert second["path"] == "/hooks/portal?source=test"
    row.refresh_from_db()
    assert (row.attempts, row.last_response_code, row.next_attempt_at) == (2, 200, None)
    assert row.delivered_at is not None
    assert delivery.deliveries_send_due() == 0  # delivered: nothing more


def test_the_sweep_queues_a_due_delivery_once_and_again_only_if_its_message_was_lost(api_as, acme, receivers):
    """No eager tasks here: the message goes to the broker, where no worker takes it."""
    from datetime import timedelta

    from django.utils import timezone

    endpoint = register(api_as("alice"), "https://93.184.215.14/hook")
    sent = services.endpoint_send_test(tenant=acme, endpoint=WebhookEndpoint.objects.get(pk=endpoint["id"]),
                                       user=acme.memberships.get(user__email="alice@acme.test").user)
    assert delivery.deliveries_send_due() == 0  # queued when it was created, a moment ago
    WebhookDelivery.objects.filter(pk=sent.pk).update(queued_at=timezone.now() - timedelta(minutes=2))
    assert delivery.deliveries_send_due() == 1  # that message is taken for lost: queued again
    assert delivery.deliveries_send_due() == 0


def test_a_delivery_is_marked_failed_after_its_last_retry(api_as, loopback_allowed, receivers, eager,
                                                          django_capture_on_commit_callbacks):
    receiver = receivers(statuses=[503, 503, 503, 503])
    endpoint = register(api_as("alice"), receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        api_as("alice").post(f"/api/v1/webhooks/{endpoint['id']}/test/")
    delivery.deliveries_send_due()
    delivery.deliveries_send_due()
    row = WebhookDelivery.objects.get(endpoint_id=endpoint["id"])
    assert len(receiver.requests) == 3  # the first attempt and the two retries of the schedule
    assert (row.attempts, row.last_response_code, row.next_attempt_at) == (3, 503, None)
    assert row.failed_at is not None and row.last_error == "The receiver answered 503."
    assert delivery.deliveries_send_due() == 0


def test_a_secret_that_does_not_decrypt_is_a_failed_attempt_not_a_crash(
        api_as, loopback_allowed, receivers, eager, django_capture_on_commit_callbacks):
    receiver = receivers()
    endpoint = register(api_as("alice"), receiver.url)
    row = WebhookEndpoint.objects.get(pk=endpoint["id"])
    sealed = bytearray(bytes(row.secret_encrypted))
    sealed[-1] ^= 1  # one bit changed in the stored secret
    WebhookEndpoint.objects.filter(pk=row.pk).update(secret_encrypted=bytes(sealed))
    with django_capture_on_commit_callbacks(execute=True):
        api_as("alice").post(f"/api/v1/webhooks/{endpoint['id']}/test/")
    assert receiver.requests == []
    delivery_row = WebhookDelivery.objects.get(endpoint_id=endpoint["id"])
    assert "cannot be decrypted" in delivery_row.last_error and delivery_row.next_attempt_at is not None


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
        api_as, settings, loopback_allowed, receivers, eager, django_capture_on_commit_callbacks):
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver = receivers(delay=2.0)
    endpoint = register(api_as("alice"), receiver.url)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        api_as("alice").post(f"/api/v1/webhooks/{endpoint['id']}/test/")
    assert time.monotonic() - started < 1.5  # the attempt gave up; it did not wait for the answer
    row = WebhookDelivery.objects.get(endpoint_id=endpoint["id"])
    assert row.last_error == "No answer within 0.3 s." and row.last_response_code is None
    assert row.next_attempt_at is not None and row.delivered_at is None


def test_charlies_endpoint_gets_nothing_when_acmes_job_ends(api_as, acme, globex, churn, loopback_allowed,
                                                            receivers, eager, django_capture_on_commit_callbacks):
    ours, theirs = receivers(), receivers()
    register(api_as("alice"), ours.url)
    charlies = register(api_as("charlie"), theirs.url)
    job_id = start_training(api_as("bob"), churn["id"])
    with tenant_context(acme):  # the data goes while the job waits: it fails, quickly
        Dataset.objects.filter(pk=churn["id"]).delete()
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs("training")
    with tenant_context(acme):
        assert Job.objects.get(pk=job_id).status == Job.Status.FAILED
    assert [e["type"] for e in ours.events()] == ["job.failed"]
    assert theirs.requests == []
    assert not WebhookDelivery.objects.filter(endpoint_id=charlies["id"]).exists()
    assert not WebhookDelivery.objects.filter(tenant=globex).exists()


def test_promoting_a_version_announces_it(api_as, churn, loopback_allowed, receivers, eager,
                                          django_capture_on_commit_callbacks):
    receiver = receivers()
    register(api_as("alice"), receiver.url, events=["model_version.promoted"])
    bob = api_as("bob")
    for _ in range(2):
        start_training(bob, churn["id"])
        run_jobs("training")
    model = bob.get("/api/v1/models/").json()["results"][0]
    (second,) = [v for v in bob.get(f"/api/v1/models/{model['id']}/").json()["versions"] if v["version"] == 2]
    with django_capture_on_commit_callbacks(execute=True):
        assert bob.post(f"/api/v1/model-versions/{second['id']}/promote/").status_code == 200
    (event,) = receiver.events()
    assert event["type"] == "model_version.promoted"
    assert event["data"]["model_version"]["id"] == second["id"] and event["data"]["previous_version"] == 1
    assert event["data"]["model"] == {"id": model["id"], "name": "Churn"}


def test_a_rolled_back_change_sends_nothing(api_as, acme, loopback_allowed, receivers, eager,
                                            django_capture_on_commit_callbacks):
    receiver = receivers()
    register(api_as("alice"), receiver.url, events=["model_version.promoted"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.event_emit(tenant=acme, event_type="model_version.promoted", data={"model": {"id": 1}})
            raise RuntimeError("the promotion failed")
    assert callbacks == [] and receiver.requests == []
    assert not WebhookDelivery.objects.filter(tenant=acme).exists()


def test_a_disabled_endpoint_gets_no_events(api_as, acme, loopback_allowed, receivers, eager,
                                           django_capture_on_commit_callbacks):
    receiver = receivers()
    endpoint = register(api_as("alice"), receiver.url)
    assert api_as("alice").patch(f"/api/v1/webhooks/{endpoint['id']}/", {"active": False},
                                 format="json").json()["active"] is False
    with django_capture_on_commit_callbacks(execute=True):
        assert services.event_emit(tenant=acme, event_type="job.failed", data={}) == []
    assert receiver.requests == []


def test_alice_replays_a_delivery(api_as, acme, loopback_allowed, receivers, eager,
                                  django_capture_on_commit_callbacks):
    receiver = receivers()
    alice = api_as("alice")
    endpoint = register(alice, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        sent = alice.post(f"/api/v1/webhooks/{endpoint['id']}/test/")
    assert sent.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        replay = alice.post(f"/api/v1/webhook-deliveries/{sent.json()['id']}/replay/")
    assert replay.status_code == 202, replay.content
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    assert json.loads(first["body"]) == json.loads(second["body"])
    assert all(verify(endpoint["secret"], r) for r in receiver.requests)
    log = alice.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries/").json()["results"]
    assert [d["status"] for d in log] == ["delivered", "delivered"]
    assert {d["last_response_code"] for d in log} == {200}
    assert AuditEvent.objects.filter(tenant_id=acme.id, action="webhook.replay",
                                     object_id=str(sent.json()["id"])).exists()


def test_alice_deletes_an_endpoint(api_as, acme, loopback_allowed, receivers, django_capture_on_commit_callbacks):
    alice = api_as("alice")
    endpoint = register(alice, receivers().url)
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.delete(f"/api/v1/webhooks/{endpoint['id']}/").status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint["id"]).exists()
    assert AuditEvent.objects.filter(tenant_id=acme.id, action="webhook.delete", object_id=str(endpoint["id"])).exists()


# --- quota thresholds ----------------------------------------------------------------------------------
def test_the_datasets_quota_announces_80_and_100_percent_once_each(
        api_as, acme, loopback_allowed, receivers, eager, django_capture_on_commit_callbacks):
    receiver = receivers()
    register(api_as("alice"), receiver.url, events=["quota.warning", "quota.reached"])
    quotas.tenant_limits_set(tenant=acme, overrides={"datasets": 5})
    bob = api_as("bob")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            upload_dataset(bob, churn_csv(20, seed=n), filename=f"d{n}.csv")
        refused = bob.post("/api/v1/datasets/", {"file": _file()}, format="multipart")
    assert refused.status_code == 403
    events = receiver.events()
    assert [(e["type"], e["data"]["threshold_percent"], e["data"]["used"]) for e in events] == [
        ("quota.warning", 80, 4), ("quota.reached", 100, 5)]
    assert {e["data"]["quota"] for e in events} == {"datasets"}
    assert QuotaAlert.objects.filter(tenant=acme, quota="datasets").count() == 2


def test_cpu_seconds_announce_80_percent_when_a_job_is_metered(api_as, acme, loopback_allowed, receivers, eager,
                                                                django_capture_on_commit_callbacks):
    receiver = receivers()
    register(api_as("alice"), receiver.url, events=["quota.warning", "quota.reached"])
    quotas.tenant_limits_set(tenant=acme, overrides={"cpu_seconds": 10})
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():  # as the worker's _finish
        quotas.meter_job(acme, user_id=None, cpu_ms=8_500, peak_memory_bytes=0)
        quotas.meter_job(acme, user_id=None, cpu_ms=500, peak_memory_bytes=0)
    assert [(e["type"], e["data"]["quota"], e["data"]["used"]) for e in receiver.events()] == [
        ("quota.warning", "cpu_seconds", 8.5)]


def _file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("extra.csv", churn_csv(20, seed=99))


def test_predicted_rows_announce_each_threshold_once_a_month(api_as, acme, globex, loopback_allowed, receivers,
                                                             eager, django_capture_on_commit_callbacks):
    receiver = receivers()
    register(api_as("alice"), receiver.url, events=["quota.warning", "quota.reached"])
    quotas.tenant_limits_set(tenant=acme, overrides={"predicted_rows": 100})
    with django_capture_on_commit_callbacks(execute=True):
        metering.count_predictions(tenant_id=acme.id, user_id=None, rows=85)
        quotas.predicted_rows_thresholds_check()
        quotas.predicted_rows_thresholds_check()  # the next minute: nothing new
        metering.count_predictions(tenant_id=acme.id, user_id=None, rows=15)
        quotas.predicted_rows_thresholds_check()
    assert [(e["type"], e["data"]["used"]) for e in receiver.events()] == [
        ("quota.warning", 85), ("quota.reached", 100)]
    assert not QuotaAlert.objects.filter(tenant=globex).exists()


# --- who may ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("person", ["bob", "vera", "audrey"])
def test_only_admins_manage_webhooks(api_as, page_as, person):
    client = api_as(person)
    assert client.get("/api/v1/webhooks/").status_code == 403
    assert client.post("/api/v1/webhooks/", {"url": "https://93.184.215.14/h", "events": ["job.failed"]},
                       format="json").status_code == 403
    assert page_as(person).get("/settings/webhooks/").status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_charlie_never_sees_acmes_endpoints_or_deliveries(api_as, loopback_allowed, receivers, eager,
                                                          django_capture_on_commit_callbacks):
    alice, charlie = api_as("alice"), api_as("charlie")
    endpoint = register(alice, receivers().url)
    with django_capture_on_commit_callbacks(execute=True):
        sent = alice.post(f"/api/v1/webhooks/{endpoint['id']}/test/").json()
    assert charlie.get("/api/v1/webhooks/").json()["results"] == []
    assert charlie.get(f"/api/v1/webhooks/{endpoint['id']}/").status_code == 404
    assert charlie.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries/").status_code == 404
    assert charlie.post(f"/api/v1/webhook-deliveries/{sent['id']}/replay/").status_code == 404
    assert charlie.delete(f"/api/v1/webhooks/{endpoint['id']}/").status_code == 404
    assert WebhookDelivery.objects.filter(endpoint_id=endpoint["id"]).count() == 1


# --- the page -------------------------------------------------------------------------------------
def test_alice_adds_an_endpoint_on_the_page_and_sees_the_secret_once(page_as, acme, loopback_allowed, receivers):
    page = page_as("alice")
    url = receivers().url
    response = page.post("/settings/webhooks/", {"url": url, "events": ["job.failed", "quota.reached"]})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="webhook-secret">whsec_' in body and response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get(tenant=acme)
    assert endpoint.events == ["job.failed", "quota.reached"]
    again = page.get("/settings/webhooks/").content.decode()
    assert url.replace("&", "&amp;") in again and "whsec_" not in again


def test_the_page_refuses_a_private_address_with_a_field_error(page_as, acme):
    response = page_as("alice").post("/settings/webhooks/", {"url": "http://10.0.0.5/h", "events": ["job.failed"]})
    assert response.status_code == 400
    assert "public addresses only" in response.content.decode()
    assert not WebhookEndpoint.objects.filter(tenant=acme).exists()


def test_the_delivery_log_shows_codes_and_replays(page_as, acme, loopback_allowed, receivers, eager,
                                                  django_capture_on_commit_callbacks):
    receiver = receivers(statuses=[502])
    page = page_as("alice")
    page.post("/settings/webhooks/", {"url": receiver.url, "events": ["job.failed"]})
    endpoint = WebhookEndpoint.objects.get(tenant=acme)
    with django_capture_on_commit_callbacks(execute=True):
        assert page.post(f"/settings/webhooks/{endpoint.id}/test/").status_code == 302
    log = page.get(f"/settings/webhooks/{endpoint.id}/").content.decode()
    assert "502" in log and "The receiver answered 502." in log and "webhook.test" in log
    sent = WebhookDelivery.objects.get(endpoint=endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        assert page.post(f"/settings/webhooks/deliveries/{sent.id}/replay/").status_code == 302
    assert len(receiver.requests) == 2
    assert page.post(f"/settings/webhooks/{endpoint.id}/toggle/").status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.active is False
