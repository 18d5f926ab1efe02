"""Alice, acme's admin, connects a webhook receiver from the settings pages: a private address is
refused, the secret is shown once, a test event that fails once is retried and then delivered,
and a replay sends it again, all seen in the delivery log. A real Celery worker delivers."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import LOOPBACK, assert_accessible, screenshot, sign_in
from tests.tenants.test_webhooks import Receiver, verify

pytestmark = pytest.mark.browser


@pytest.fixture
def delivering_worker(committed, monkeypatch):
    from tests.servers import Worker

    monkeypatch.setenv("PORTAL_WEBHOOK_ALLOWED_NETWORKS", LOOPBACK)
    monkeypatch.setenv("PORTAL_WEBHOOK_RETRY_SECONDS", "1,1")
    process = Worker("webhook-worker", concurrency=1, webhooks=True, beat=True)  # beat: the retry sweep
    yield process
    process.stop()


@pytest.fixture
def receiver():
    made = Receiver(statuses=(500,))  # the first attempt fails
    yield made
    made.stop()


def wait_for_rows(page, predicate, timeout: float = 45.0) -> list[str]:
    """Reload the delivery log until its rows satisfy `predicate` (the page does not poll)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = page.get_by_test_id("delivery-row").all_inner_texts()
        if predicate(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)
        page.reload()


def test_alice_connects_a_receiver_and_follows_its_deliveries(page, server, receiver, delivering_worker):
    sign_in(page, server, "acme", "alice@acme.test")
    page.get_by_test_id("nav-webhooks").click()
    page.wait_for_url(server("acme", "/settings/webhooks/"))

    page.get_by_label("URL").fill("http://10.1.2.3/hooks")
    page.get_by_label("Job succeeded (training or batch prediction)").check()
    page.get_by_role("button", name="Add endpoint").click()
    assert page.get_by_text(re.compile("private, link-local or reserved")).is_visible()
    assert page.get_by_test_id("webhook-row").count() == 0
    assert_accessible(page, "webhooks-refused")

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Churn pipeline")
    page.get_by_label("Job succeeded (training or batch prediction)").check()
    page.get_by_label("Job failed").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.get_by_test_id("webhook-secret").inner_text()
    assert secret.startswith("whsec_")
    assert page.get_by_test_id("webhook-row").count() == 1
    assert_accessible(page, "webhooks-created")
    screenshot(page, "webhooks-created")

    page.goto(server("acme", "/settings/webhooks/"))
    assert page.get_by_test_id("webhook-secret").count() == 0  # shown once
    page.get_by_role("link", name=receiver.url).click()
    page.get_by_test_id("webhook-send-test").click()
    rows = wait_for_rows(page, lambda rows: rows and "delivered" in rows[0])
    assert len(rows) == 1 and "delivered" in rows[0] and "200" in rows[0], rows
    assert re.search(r"\b2\b", rows[0]), rows  # two attempts: 500, then 200
    assert [r["headers"]["webhook-id"] for r in receiver.requests][0] == receiver.requests[1]["headers"]["webhook-id"]
    assert all(verify(secret, request) for request in receiver.requests)
    assert_accessible(page, "webhook-deliveries")
    screenshot(page, "webhook-deliveries")

    page.get_by_test_id("delivery-replay").first.click()
    rows = wait_for_rows(page, lambda rows: len(rows) == 2 and all("delivered" in r for r in rows))
    assert len(rows) == 2 and all("delivered" in r for r in rows), rows
    assert len(receiver.requests) == 3
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1  # the same event again
    assert verify(secret, receiver.requests[-1])
