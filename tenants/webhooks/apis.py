"""REST API v1 for webhooks (admins only): endpoints, their delivery logs, test events and replays."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from tenants.accounts.access import ADMIN_ROLES
from tenants.web.api import ObjectAPI, TenantAPI
from tenants.web.inputs import JSONInput, text
from tenants.web.openapi import PAGE_PARAMETERS, paginated, problems

from . import events, services
from .selectors import delivery_list, endpoint_list, get_delivery_for_admin, get_endpoint_for_admin

EVENT_CHOICES = list(events.EVENT_TYPES)


@extend_schema_serializer(component_name="WebhookEndpoint")
class EndpointOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    created_by = serializers.SerializerMethodField()

    def get_created_by(self, endpoint) -> str | None:
        return endpoint.created_by.email if endpoint.created_by_id else None


@extend_schema_serializer(component_name="WebhookEndpointCreated")
class EndpointCreatedOutput(EndpointOutput):
    secret = serializers.CharField(help_text="whsec_…: verify signatures with it; it is not shown again")


@extend_schema_serializer(component_name="WebhookDelivery")
class DeliveryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint = serializers.IntegerField(source="endpoint_id")
    event_type = serializers.CharField()
    event_id = serializers.CharField(help_text="The webhook-id header; the same on retries and replays")
    status = serializers.ChoiceField(choices=["pending", "delivered", "failed"])
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True, help_text="Null once delivered or failed")
    last_response_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    duration_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    payload = serializers.JSONField(help_text="The body sent, without its top-level id (event_id)")


class WebhookListApi(TenantAPI):
    read_roles = ADMIN_ROLES
    write_roles = ADMIN_ROLES
    idempotent = True  # a retried registration gets the first endpoint (and its secret), not a second one

    @extend_schema_serializer(component_name="WebhookEndpointInput")
    class InputSerializer(JSONInput):
        url = text(max_length=2000)
        events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1)
        description = text(max_length=200, allow_blank=True, required=False, default="")

    @extend_schema(summary="Webhook endpoints of the workspace (admins)", operation_id="webhooks_list",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paginated(EndpointOutput, "WebhookEndpoint"), **problems(400, 401, 403, 404)})
    def get(self, request):
        return self.paginated(endpoint_list(tenant=self.tenant), EndpointOutput)

    @extend_schema(summary="Register a webhook endpoint (its signing secret is shown once)",
                   request=InputSerializer,
                   responses={201: EndpointCreatedOutput, **problems(400, 401, 403, 404)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(tenant=self.tenant, user=request.user, **data.validated_data)
        endpoint.secret = secret
        return Response(EndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookAPI(ObjectAPI):
    read_roles = ADMIN_ROLES
    write_roles = ADMIN_ROLES
    url_kwarg = "webhook_id"

    def resolve(self, webhook_id, need):
        return get_endpoint_for_admin(tenant=self.tenant, endpoint_id=webhook_id)


class WebhookDetailApi(WebhookAPI):
    @extend_schema_serializer(component_name="WebhookEndpointPatch")
    class InputSerializer(JSONInput):
        active = serializers.BooleanField(required=False)
        events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1,
                                       required=False)
        description = text(max_length=200, allow_blank=True, required=False)

    @extend_schema(summary="A webhook endpoint", responses={200: EndpointOutput, **problems(401, 403, 404)})
    def get(self, request, **url):
        return Response(EndpointOutput(self.object).data)

    @extend_schema(summary="Turn an endpoint off or on, or change its events or description",
                   request=InputSerializer, responses={200: EndpointOutput, **problems(400, 401, 403, 404)})
    def patch(self, request, **url):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(tenant=self.tenant, endpoint=self.object, **data.validated_data)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(summary="Delete an endpoint and its delivery log", responses={204: None, **problems(401, 403, 404)})
    def delete(self, request, **url):
        services.endpoint_delete(tenant=self.tenant, endpoint=self.object)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(WebhookAPI):
    needs = {"GET": "view"}

    @extend_schema(summary="An endpoint's deliveries, newest first", operation_id="webhook_deliveries_list",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paginated(DeliveryOutput, "WebhookDelivery"), **problems(400, 401, 403, 404)})
    def get(self, request, **url):
        return self.paginated(delivery_list(tenant=self.tenant, endpoint=self.object), DeliveryOutput)


class WebhookTestApi(WebhookAPI):
    needs = {"POST": "edit"}

    @extend_schema(summary="Send a webhook.test event to this endpoint", request=None,
                   responses={202: DeliveryOutput, **problems(401, 403, 404)})
    def post(self, request, **url):
        delivery = services.endpoint_send_test(tenant=self.tenant, endpoint=self.object, user=request.user)
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryReplayApi(ObjectAPI):
    read_roles = ADMIN_ROLES
    write_roles = ADMIN_ROLES
    url_kwarg = "delivery_id"
    needs = {"POST": "edit"}

    def resolve(self, delivery_id, need):
        return get_delivery_for_admin(tenant=self.tenant, delivery_id=delivery_id)

    @extend_schema(summary="Send a delivery's event again (a new delivery, same webhook-id and body)",
                   request=None, responses={202: DeliveryOutput, **problems(401, 403, 404)})
    def post(self, request, **url):
        replay = services.delivery_replay(tenant=self.tenant, delivery=self.object)
        return Response(DeliveryOutput(replay).data, status=status.HTTP_202_ACCEPTED)
