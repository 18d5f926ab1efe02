"""Reads of webhook endpoints and deliveries: always within one tenant (admins only, by the callers)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from tenants.models import Tenant, WebhookDelivery, WebhookEndpoint


def endpoint_list(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant=tenant).select_related("created_by").order_by("-created_at", "-id")


def get_endpoint_for_admin(*, tenant: Tenant, endpoint_id) -> WebhookEndpoint:
    """404 for another tenant's endpoint, as for a missing one (the caller checked the role)."""
    try:
        return endpoint_list(tenant=tenant).get(pk=int(endpoint_id))
    except (WebhookEndpoint.DoesNotExist, TypeError, ValueError):
        raise Http404


def delivery_list(*, tenant: Tenant, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(tenant=tenant, endpoint=endpoint).order_by("-created_at", "-id")


def get_delivery_for_admin(*, tenant: Tenant, delivery_id) -> WebhookDelivery:
    try:
        return WebhookDelivery.objects.select_related("endpoint").get(tenant=tenant, pk=int(delivery_id))
    except (WebhookDelivery.DoesNotExist, TypeError, ValueError):
        raise Http404
