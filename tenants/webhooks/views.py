"""Settings > Webhooks, for tenant admins: endpoints, their delivery logs, test events and replays."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from tenants.accounts.access import ADMIN_ROLES
from tenants.forms import WebhookEndpointForm
from tenants.web.pages import PAGE_ERRORS, form_errors_from, member_page, page_error

from . import events, services
from .selectors import delivery_list, endpoint_list, get_delivery_for_admin, get_endpoint_for_admin

DELIVERIES_PER_PAGE = 50


@member_page(ADMIN_ROLES)
def webhooks(request):
    form = WebhookEndpointForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.endpoint_create(tenant=request.tenant, user=request.user,
                                                        **form.cleaned_data)
        except PAGE_ERRORS as exc:
            form_errors_from(form, exc)
        else:
            created, form = {"endpoint": endpoint, "secret": secret}, WebhookEndpointForm()
    response = render(request, "tenants/webhooks.html", {
        "form": form, "created": created, "rows": endpoint_list(tenant=request.tenant),
        "event_labels": events.EVENT_TYPES,
    }, status=400 if request.method == "POST" and created is None else 200)
    response["Cache-Control"] = "no-store"  # the page may show a secret
    return response


@require_GET
@member_page(ADMIN_ROLES)
def webhook_detail(request, webhook_id: int):
    endpoint = get_endpoint_for_admin(tenant=request.tenant, endpoint_id=webhook_id)
    page = Paginator(delivery_list(tenant=request.tenant, endpoint=endpoint), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("page"))
    return render(request, "tenants/webhook_detail.html", {
        "endpoint": endpoint, "page": page, "event_labels": events.EVENT_TYPES})


@require_POST
@member_page(ADMIN_ROLES)
def webhook_toggle(request, webhook_id: int):
    endpoint = get_endpoint_for_admin(tenant=request.tenant, endpoint_id=webhook_id)
    services.endpoint_update(tenant=request.tenant, endpoint=endpoint, active=not endpoint.active)
    messages.success(request, f"{'Enabled' if endpoint.active else 'Disabled'} {endpoint.url}.")
    return redirect("webhook_detail", webhook_id=endpoint.id)


@require_POST
@member_page(ADMIN_ROLES)
def webhook_delete(request, webhook_id: int):
    endpoint = get_endpoint_for_admin(tenant=request.tenant, endpoint_id=webhook_id)
    url = endpoint.url
    services.endpoint_delete(tenant=request.tenant, endpoint=endpoint)
    messages.success(request, f"Deleted the endpoint {url} and its delivery log.")
    return redirect("webhooks")


@require_POST
@member_page(ADMIN_ROLES)
def webhook_test(request, webhook_id: int):
    endpoint = get_endpoint_for_admin(tenant=request.tenant, endpoint_id=webhook_id)
    services.endpoint_send_test(tenant=request.tenant, endpoint=endpoint, user=request.user)
    messages.success(request, "A test event is on its way; its delivery shows below.")
    return redirect("webhook_detail", webhook_id=endpoint.id)


@require_POST
@member_page(ADMIN_ROLES)
def webhook_delivery_replay(request, delivery_id: int):
    delivery = get_delivery_for_admin(tenant=request.tenant, delivery_id=delivery_id)
    try:
        services.delivery_replay(tenant=request.tenant, delivery=delivery)
    except PAGE_ERRORS as exc:
        messages.error(request, page_error(exc)[0])
    else:
        messages.success(request, f"Sending {delivery.event_type} ({delivery.event_id}) again.")
    return redirect("webhook_detail", webhook_id=delivery.endpoint_id)
