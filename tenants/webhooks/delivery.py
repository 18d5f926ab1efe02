"""Sending webhook deliveries: one attempt per task, on the webhooks queue; retries by a sweep.

State lives in the delivery row. ``next_attempt_at`` is when the next attempt is due (None once
delivered or failed). An attempt first moves it forward by a lease, so a duplicate task (the
on-commit send and the sweep may both queue one) finds the delivery not due and does nothing; if the
worker dies mid-attempt, the lease ends and the sweep tries again. A failed attempt (no answer
within PORTAL_WEBHOOK_TIMEOUT_SECONDS, a status outside 2xx, a refused address) waits the next
PORTAL_WEBHOOK_RETRY_SECONDS before the next one; after the last the delivery is marked failed.
The sweep (beat, every 5 s) queues every delivery that is due, across tenants, once (``queued_at``;
again after a minute if its message was lost).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import urllib3
from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenants.crypto import keys
from tenants.models import Tenant, WebhookDelivery

from . import signatures
from .addresses import AddressRefused, Target, check_url

logger = logging.getLogger(__name__)

DELIVER_TASK = "tenants.webhook_deliver"
USER_AGENT = "ml-portal-webhooks/1"
SWEEP_BATCH = 500
REQUEUE_AFTER = timedelta(seconds=60)


def queue_name() -> str:
    return settings.PORTAL_QUEUE_PREFIX + "webhooks"


_sweep_only = False


def queue_only_by_sweep() -> None:
    """In a process that must not publish to the broker (a job's forked child): leave deliveries
    to the sweep."""
    global _sweep_only
    _sweep_only = True


def enqueue(schema_name: str, delivery_id: int) -> None:
    """Queue one attempt (by task name: this module does not import the tasks that call it).
    send_task ignores task_always_eager, so eager mode (tests) runs the task here explicitly."""
    from celery import current_app

    if _sweep_only:
        return
    try:
        if current_app.conf.task_always_eager:
            current_app.tasks[DELIVER_TASK].apply(args=[schema_name, delivery_id])
        else:
            current_app.send_task(DELIVER_TASK, args=[schema_name, delivery_id], queue=queue_name())
    except Exception:  # the broker is down: the sweep sends it once it is back
        logger.exception("could not queue a webhook delivery", extra={"delivery": delivery_id})


def deliveries_send_due() -> int:
    """Queue every delivery whose attempt is due and not already queued (retries, and first sends
    whose message was lost: queued more than REQUEUE_AFTER ago and still due)."""
    now = timezone.now()
    with transaction.atomic():
        due = list(WebhookDelivery.objects.select_for_update(skip_locked=True)
                   .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - REQUEUE_AFTER), next_attempt_at__lte=now)
                   .order_by("next_attempt_at").values_list("tenant__schema_name", "id")[:SWEEP_BATCH])
        WebhookDelivery.objects.filter(pk__in=[delivery_id for _, delivery_id in due]).update(queued_at=now)
    for schema_name, delivery_id in due:
        enqueue(schema_name, delivery_id)
    return len(due)


def _claim(tenant: Tenant, delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    lease = timedelta(seconds=3 * settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS + 30)
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(skip_locked=True)
                    .filter(pk=delivery_id, tenant=tenant, next_attempt_at__lte=now).first())
        if delivery is None:
            return None  # delivered, failed, not yet due, or another task holds it
        delivery.attempts += 1
        delivery.next_attempt_at = now + lease
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    return delivery


def delivery_attempt(*, tenant: Tenant, delivery_id: int) -> str:
    """One attempt at one delivery: "delivered", "retry", "failed" or "skipped" (not due)."""
    delivery = _claim(tenant, delivery_id)
    if delivery is None:
        return "skipped"
    endpoint = delivery.endpoint
    if not endpoint.active and delivery.event_type != "webhook.test":
        return _record(delivery, code=None, error="The endpoint was disabled.", duration_ms=None, final=True)
    body = json.dumps({"id": delivery.event_id, **delivery.payload}, separators=(",", ":")).encode()
    started = time.monotonic()
    try:
        target = check_url(endpoint.url)
        secret = signatures.unseal(tenant, endpoint.key_version, endpoint.secret_encrypted)
        code = _post(target, body, _headers(secret, delivery.event_id, body))
        error = "" if 200 <= code < 300 else f"The receiver answered {code}."
    except AddressRefused as exc:
        code, error = None, exc.message
    except (keys.KeyUnavailable, InvalidTag):
        logger.exception("webhook secret unreadable", extra={"delivery": delivery.id})
        code, error = None, "The endpoint's signing secret cannot be decrypted (the tenant's data key is unavailable)."
    except urllib3.exceptions.HTTPError as exc:
        code, error = None, _describe(exc)
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record(delivery, code=code, error=error, duration_ms=duration_ms, final=False)


def _headers(secret: str, msg_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {"content-type": "application/json", "user-agent": USER_AGENT, "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures.sign(secret, msg_id=msg_id, timestamp=timestamp, body=body)}


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = {"http": 80, "https": 443}[target.scheme]
    return host if target.port == default else f"{host}:{target.port}"


def _post(target: Target, body: bytes, headers: dict[str, str]) -> int:
    """POST to the checked address itself (no second DNS lookup); TLS is verified against the
    URL's host name. Redirects are not followed: a 3xx is a failed attempt."""
    timeout = urllib3.Timeout(total=settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(target.address, target.port, timeout=timeout, retries=False,
                                           server_hostname=target.host, assert_hostname=target.host,
                                           cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)
    try:
        response = pool.urlopen("POST", target.path, body=body, headers={**headers, "host": _host_header(target)},
                                redirect=False, assert_same_host=False, preload_content=False)
        response.read(4096, decode_content=False)  # a receiver's answer is not kept
        response.release_conn()
        return response.status
    finally:
        pool.close()


def _describe(exc: Exception) -> str:
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return f"No answer within {settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS:g} s."
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS failed: {exc}"[:500]
    if isinstance(exc, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ProtocolError):
        return "Could not connect to the receiver."
    return str(exc)[:500]


def _record(delivery: WebhookDelivery, *, code: int | None, error: str, duration_ms: int | None,
            final: bool) -> str:
    now = timezone.now()
    delivery.last_response_code, delivery.last_error, delivery.duration_ms = code, error[:500], duration_ms
    schedule = settings.PORTAL_WEBHOOK_RETRY_SECONDS
    if not error:
        outcome, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
    elif final or delivery.attempts > len(schedule):
        outcome, delivery.failed_at, delivery.next_attempt_at = "failed", now, None
    else:
        outcome = "retry"
        delivery.next_attempt_at = now + timedelta(seconds=schedule[delivery.attempts - 1])
    delivery.queued_at = None  # the sweep queues the retry when it is due
    delivery.save(update_fields=["last_response_code", "last_error", "duration_ms", "delivered_at",
                                 "failed_at", "next_attempt_at", "queued_at"])
    logger.info("webhook attempt", extra={"tenant": delivery.tenant_id, "delivery": delivery.id,
                                          "attempt": delivery.attempts, "outcome": outcome,
                                          "code": code, "error": error})
    return outcome
