"""Writes for webhooks: endpoints (admins), events (the services whose changes they announce), replays.

An event is written in the transaction of the change it announces, as one delivery row per
subscribed endpoint of that tenant, and the deliveries are queued once that transaction commits:
a change rolled back sends nothing. The HTTP work is tenants.webhooks.delivery, on its own queue.
"""

from __future__ import annotations

import logging
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tenants.auditing import audit
from tenants.limits.usage import month_start
from tenants.models import QuotaAlert, Tenant, User, WebhookDelivery, WebhookEndpoint

from . import events, signatures
from .addresses import check_url

logger = logging.getLogger(__name__)

MAX_ENDPOINTS = 20


def _clean_events(chosen) -> list[str]:
    if not isinstance(chosen, (list, tuple)) or not chosen:
        raise ValidationError({"events": "Choose at least one event."})
    unknown = sorted({str(e) for e in chosen} - set(events.EVENT_TYPES))
    if unknown:
        raise ValidationError({"events": f"Unknown event {unknown[0]!r}; choose from "
                                         f"{', '.join(events.EVENT_TYPES)}."})
    return [e for e in events.EVENT_TYPES if e in chosen]


def endpoint_create(*, tenant: Tenant, user: User, url: str, events: list[str],
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """The endpoint and its signing secret (shown once; stored only encrypted)."""
    chosen = _clean_events(events)
    url = (url or "").strip()
    check_url(url)
    if WebhookEndpoint.objects.filter(tenant=tenant).count() >= MAX_ENDPOINTS:
        raise ValidationError({"url": f"A workspace has at most {MAX_ENDPOINTS} webhook endpoints; "
                                      "delete one first."})
    secret = signatures.new_secret()
    version, sealed = signatures.seal(tenant, secret)
    endpoint = WebhookEndpoint(tenant=tenant, url=url, description=(description or "").strip(),
                               events=chosen, secret_encrypted=sealed, key_version=version,
                               created_by=user)
    endpoint.full_clean()
    with transaction.atomic():
        endpoint.save()
        audit.record("webhook.create", tenant=tenant, object_type="webhook", object_id=endpoint.id,
                     details={"url": url, "events": chosen})
    return endpoint, secret


def endpoint_update(*, tenant: Tenant, endpoint: WebhookEndpoint, active: bool | None = None,
                    events: list[str] | None = None, description: str | None = None) -> WebhookEndpoint:
    changed = {}
    if active is not None:
        endpoint.active = bool(active)
        changed["active"] = endpoint.active
    if events is not None:
        endpoint.events = changed["events"] = _clean_events(events)
    if description is not None:
        endpoint.description = description.strip()
    endpoint.full_clean()
    with transaction.atomic():
        endpoint.save(update_fields=["active", "events", "description"])
        audit.record("webhook.update", tenant=tenant, object_type="webhook", object_id=endpoint.id,
                     details={"url": endpoint.url, **changed})
    return endpoint


def endpoint_delete(*, tenant: Tenant, endpoint: WebhookEndpoint) -> None:
    """The endpoint and its delivery log; deliveries still pending are dropped with it."""
    with transaction.atomic():
        endpoint_id, url = endpoint.id, endpoint.url
        endpoint.delete()
        audit.record("webhook.delete", tenant=tenant, object_type="webhook", object_id=endpoint_id,
                     details={"url": url})


def _queue_after_commit(tenant: Tenant, deliveries: list[WebhookDelivery]) -> None:
    from .delivery import enqueue

    ids = [d.id for d in deliveries]
    if ids:
        transaction.on_commit(lambda: [enqueue(tenant.schema_name, i) for i in ids])


def _new_delivery(tenant: Tenant, endpoint: WebhookEndpoint, event_id: str, event_type: str,
                  payload: dict) -> WebhookDelivery:
    return WebhookDelivery(tenant=tenant, endpoint=endpoint, event_type=event_type, event_id=event_id,
                           payload=payload, next_attempt_at=timezone.now(), queued_at=timezone.now())


def event_emit(*, tenant: Tenant, event_type: str, data: dict) -> list[WebhookDelivery]:
    """Announce an event to the tenant's endpoints subscribed to it; call inside the change's
    transaction. Only this tenant's endpoints: the filter on the tenant is the isolation."""
    if tenant is None or tenant.schema_name == "public":
        return []
    endpoints = list(WebhookEndpoint.objects.filter(tenant=tenant, active=True,
                                                    events__contains=[event_type]))
    if not endpoints:
        return []
    event_id = f"msg_{uuid.uuid4().hex}"
    payload = {"type": event_type, "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
               "tenant": tenant.slug, "data": data}
    deliveries = WebhookDelivery.objects.bulk_create(
        [_new_delivery(tenant, endpoint, event_id, event_type, payload) for endpoint in endpoints])
    _queue_after_commit(tenant, deliveries)
    return deliveries


def endpoint_send_test(*, tenant: Tenant, endpoint: WebhookEndpoint, user: User) -> WebhookDelivery:
    """A webhook.test event to this endpoint only (disabled or not: the admin asked for it)."""
    event_id = f"msg_{uuid.uuid4().hex}"
    payload = {"type": events.TEST, "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
               "tenant": tenant.slug, "data": {"endpoint": endpoint.id, "sent_by": user.email}}
    with transaction.atomic():
        delivery = _new_delivery(tenant, endpoint, event_id, events.TEST, payload)
        delivery.save()
        audit.record("webhook.test", tenant=tenant, object_type="webhook", object_id=endpoint.id,
                     details={"url": endpoint.url, "event_id": event_id})
        _queue_after_commit(tenant, [delivery])
    return delivery


def delivery_replay(*, tenant: Tenant, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event again as a new delivery, with the same webhook-id (receivers that
    deduplicate on it see the same event) and the same payload."""
    with transaction.atomic():
        replay = _new_delivery(tenant, delivery.endpoint, delivery.event_id, delivery.event_type,
                               delivery.payload)
        replay.save()
        audit.record("webhook.replay", tenant=tenant, object_type="webhook_delivery", object_id=delivery.id,
                     details={"endpoint": delivery.endpoint_id, "event_id": delivery.event_id,
                              "event_type": delivery.event_type, "replay": replay.id})
        _queue_after_commit(tenant, [replay])
    return replay


def quota_usage_noted(*, tenant: Tenant, quota: str, used: int | float, limit: int) -> list[str]:
    """After usage of a quota grew: announce each threshold (80 %, 100 %) it now passes, once per
    quota, threshold and month (QuotaAlert). Call inside the transaction that changed the usage,
    so a change rolled back announces nothing. Returns the event types emitted."""
    if limit <= 0 or used * 100 < events.QUOTA_THRESHOLDS[0][0] * limit:
        return []
    emitted = []
    for threshold, event_type in events.QUOTA_THRESHOLDS:
        if used * 100 < threshold * limit:
            break
        period = month_start()
        with transaction.atomic():  # a savepoint: a concurrent twin's insert fails alone
            _, created = QuotaAlert.objects.get_or_create(tenant=tenant, quota=quota, threshold=threshold,
                                                          period_start=period)
        if created:
            event_emit(tenant=tenant, event_type=event_type, data={
                "quota": quota, "threshold_percent": threshold, "used": used, "limit": limit,
                "period_start": period.isoformat()})
            emitted.append(event_type)
    return emitted
