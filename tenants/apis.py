"""REST API v1 of the tenants app: me, members, usage, tokens, audit events and exports."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from tenants import services
from tenants.accounts.access import ADMIN_ROLES, ALL_ROLES, AUDIT_ROLES
from tenants.auditing import audit, audit_export
from tenants.crypto import signing
from tenants.forms import AuditFilterForm
from tenants.limits import quotas
from tenants.models import Role, TokenScope
from tenants.selectors import (
    api_token_list,
    audit_event_list,
    get_api_token_for_user,
    get_audit_export_for_user,
    get_member_for_admin,
    membership_list,
)
from tenants.web.api import ObjectAPI, TenantAPI
from tenants.web.inputs import JSONInput, text
from tenants.web.openapi import PAGE_PARAMETERS, OpenApiTypes, file_response, paginated, problems
from tenants.web.problems import Problem


class MeApi(TenantAPI):
    read_roles = ALL_ROLES

    @extend_schema(summary="Who you are here: user, workspace and role", responses={
        200: inline_serializer("Me", fields={
            "user": inline_serializer("MeUser", fields={"id": serializers.IntegerField(),
                                                        "email": serializers.EmailField()}),
            "tenant": inline_serializer("MeTenant", fields={"slug": serializers.CharField(),
                                                            "name": serializers.CharField()}),
            "role": serializers.ChoiceField(choices=Role.choices)}),
        **problems(401, 404)})
    def get(self, request):
        user = request.user
        return Response({
            "user": {"id": user.pk, "email": user.email},
            "tenant": {"slug": self.tenant.slug, "name": self.tenant.name},
            "role": self.membership.role,
        })


@extend_schema_serializer(component_name="Member")
class MemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")
    role = serializers.CharField()
    limits = serializers.JSONField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="MemberAdded")
class MemberAddedOutput(MemberOutput):
    set_password_url = serializers.URLField(
        required=False, help_text="Not sent: the one-time link to set a password is the invitee's "
                                  "credential and is e-mailed to them only.")


class MemberListApi(TenantAPI):
    read_roles = ADMIN_ROLES
    write_roles = ADMIN_ROLES
    idempotent = True

    @extend_schema_serializer(component_name="MemberInvite")
    class InputSerializer(JSONInput):
        email = serializers.EmailField()
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(summary="Members of the workspace (admins)", operation_id="members_list",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paginated(MemberOutput, "Member"), **problems(400, 403)})
    def get(self, request):
        return self.paginated(membership_list(tenant=self.tenant), MemberOutput)

    @extend_schema(summary="Add a member (an invitation for someone new)", request=InputSerializer,
                   responses={201: MemberAddedOutput, **problems(400, 401, 403, 409)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        added = services.membership_add(tenant=self.tenant, actor=request.user, **data.validated_data)
        # No set_password_url: the invitee's one-time link goes to their mailbox only.
        return Response(MemberOutput(added.membership).data, status=status.HTTP_201_CREATED)


@extend_schema_field({
    "type": "object", "additionalProperties": False,
    "properties": {key: {"type": "integer", "minimum": 0} for key in quotas.MEMBER_LIMIT_FIELDS},
    "description": "Tighter limits for this member; each must fit inside the workspace's (else 400)."})
class MemberLimitsField(serializers.DictField):
    """Per-member limits: only the keys of quotas.MEMBER_LIMIT_FIELDS (the service refuses others)."""


class MemberDetailApi(ObjectAPI):
    read_roles = ADMIN_ROLES
    write_roles = ADMIN_ROLES
    url_kwarg = "member_id"

    @extend_schema_serializer(component_name="MemberUpdate")
    class InputSerializer(JSONInput):
        role = serializers.ChoiceField(choices=Role.choices, required=False)
        limits = MemberLimitsField(child=serializers.IntegerField(min_value=0), required=False)

    def resolve(self, member_id, need):
        return get_member_for_admin(actor=self.membership, tenant=self.tenant, member_id=member_id)

    @extend_schema(summary="A member", responses={200: MemberOutput, **problems(401, 403, 404)})
    def get(self, request, **url):
        return Response(MemberOutput(self.object).data)

    @extend_schema(summary="Change a member's role or limits", request=InputSerializer,
                   responses={200: MemberOutput, **problems(400, 401, 403, 404, 409)})
    def patch(self, request, **url):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.membership_update(membership=self.object, actor=request.user, **data.validated_data)
        return Response(MemberOutput(member).data)

    @extend_schema(summary="Remove a member (never the last admin: 400)",
                   responses={204: None, **problems(400, 401, 403, 404, 409)})
    def delete(self, request, **url):
        services.membership_remove(membership=self.object, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UsageApi(TenantAPI):
    read_roles = ALL_ROLES

    @extend_schema(summary="The plan's limits and what the workspace uses", responses={
        200: inline_serializer("Usage", fields={
            "plan": serializers.CharField(allow_null=True),
            "limits": serializers.DictField(child=serializers.IntegerField(), help_text=(
                "Every limit of the plan with the workspace's overrides: "
                + ", ".join(quotas.USAGE_KEYS) + ", rows_per_dataset, columns_per_dataset...")),
            "usage": inline_serializer("UsageNow", fields={
                key: serializers.FloatField() if key == "cpu_seconds" else serializers.IntegerField()
                for key in quotas.USAGE_KEYS}),
            "period_start": serializers.DateTimeField(help_text="Start of the month counted"),
            "member_limits": serializers.DictField(child=serializers.IntegerField(), help_text=(
                "The limits an admin set for the caller alone (empty when none): "
                + ", ".join(quotas.MEMBER_LIMIT_FIELDS) + ". Where tighter, they apply instead.")),
            "member_usage": serializers.DictField(child=serializers.FloatField(), help_text=(
                "What the caller used of each of member_limits, under the same keys"))}),
        **problems(401, 404)})
    def get(self, request):
        return Response({
            **quotas.usage_summary(tenant=self.tenant),
            **quotas.member_usage_summary(tenant=self.tenant, user_id=request.user.pk,
                                          limits=request.membership.limits),
        })


@extend_schema_serializer(component_name="Token")
class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scope = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="Set when the token is used")


class TokenListApi(TenantAPI):
    """Own tokens only; every role may hold tokens."""

    read_roles = ALL_ROLES
    write_roles = ALL_ROLES
    idempotent = True

    @extend_schema_serializer(component_name="TokenInput")
    class InputSerializer(JSONInput):
        name = text(max_length=100)
        scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)
        expires_in_days = serializers.IntegerField(min_value=1, max_value=services.MAX_TOKEN_DAYS,
                                                   default=90)

    @extend_schema(summary="Your API tokens for this workspace", operation_id="tokens_list",
                   parameters=PAGE_PARAMETERS,
                   responses={200: paginated(TokenOutput, "Token"), **problems(400)})
    def get(self, request):
        return self.paginated(api_token_list(user=self._user(), tenant=self.tenant), TokenOutput)

    @extend_schema(summary="Make a token (its secret is shown once)", request=InputSerializer,
                   responses={201: inline_serializer("TokenCreated", fields={
                       "id": serializers.IntegerField(), "name": serializers.CharField(),
                       "scope": serializers.CharField(), "expires_at": serializers.DateTimeField(),
                       "token": serializers.CharField(help_text="The secret: keep it, it is not "
                                                      "shown again")}),
                              **problems(400, 401, 404)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = services.api_token_create(
            user=self._user(), tenant=self.tenant, name=data.validated_data["name"],
            scope=data.validated_data["scope"], days=data.validated_data["expires_in_days"],
        )
        return Response({"id": token.id, "name": token.name, "scope": token.scope,
                         "expires_at": token.expires_at, "token": secret},
                        status=status.HTTP_201_CREATED)

    def _user(self):
        return get_user_model().objects.get(pk=self.request.user.pk)


class TokenDetailApi(ObjectAPI):
    read_roles = ALL_ROLES
    write_roles = ALL_ROLES
    url_kwarg = "token_id"
    needs = {"DELETE": "delete"}

    def resolve(self, token_id, need):
        return get_api_token_for_user(user=self.request.user, tenant=self.tenant, token_id=token_id)

    @extend_schema(summary="Revoke a token (refused from the very next request)",
                   responses={204: None, **problems(401, 404)})
    def delete(self, request, **url):
        services.api_token_revoke(token=self.object, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- audit trail ----------------------------------------------------------------------------------
@extend_schema_serializer(component_name="AuditEvent")
class AuditEventOutput(serializers.Serializer):
    """docs/api.md "Audit event fields"; the same keys as the exports."""

    seq = serializers.IntegerField()
    id = serializers.IntegerField()
    ts = serializers.CharField()
    tenant = serializers.CharField()
    actor_id = serializers.IntegerField(allow_null=True)
    actor_email = serializers.CharField()
    role = serializers.CharField()
    auth_method = serializers.CharField()
    source_ip = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    outcome = serializers.CharField()
    request_id = serializers.CharField()
    details = serializers.JSONField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()

    def to_representation(self, instance):
        return audit.entry_dict(instance)


def _filter_text(max_length: int) -> dict:
    # The audit page's form sends empty filters (no filter); NUL characters are refused.
    return {"type": "string", "maxLength": max_length, "pattern": "^[^\\x00]*$"}


_INSTANT = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}]}
AUDIT_FILTERS = [
    OpenApiParameter("since", _INSTANT, description="From this instant (empty: no filter)"),
    OpenApiParameter("until", _INSTANT, description="Until this instant (empty: no filter)"),
    OpenApiParameter("actor", _filter_text(254), description="Actor e-mail or id"),
    OpenApiParameter("action", _filter_text(50), description="An action, or a prefix such as auth.*"),
    OpenApiParameter("object_type", _filter_text(40)),
    OpenApiParameter("object_id", _filter_text(64)),
    OpenApiParameter("outcome", {"type": "string", "enum": ["", "allowed", "denied", "failed"]},
                     description="empty: any"),
]


def _audit_filters(request) -> AuditFilterForm:
    form = AuditFilterForm(request.query_params)
    if not form.is_valid():
        raise DjangoValidationError({field: list(errors) for field, errors in form.errors.items()})
    return form


class AuditEventListApi(TenantAPI):
    """Entries in chain order (`?order=desc` for newest first), filtered like the export."""

    read_roles = AUDIT_ROLES
    write_roles = AUDIT_ROLES  # nothing to write: those who may read get 405, the rest 403

    @extend_schema(summary="The workspace's access log (auditors and admins)", operation_id="audit_events_list",
                   parameters=[*PAGE_PARAMETERS, *AUDIT_FILTERS, OpenApiParameter(
                       "order", str, enum=["asc", "desc"], description="Chain order (default) or newest first.")],
                   responses={200: paginated(AuditEventOutput, "AuditEvent"), **problems(400, 401, 403)})
    def get(self, request):
        form = _audit_filters(request)
        order = {"asc": "seq", "desc": "-seq"}.get(request.query_params.get("order", "asc"))
        if order is None:
            raise Problem(400, "order must be asc or desc.",
                          errors=[{"field": "order", "message": "Use asc or desc."}])
        events = audit_event_list(tenant=self.tenant, filters=form.filters()).order_by(order)
        return self.paginated(events, AuditEventOutput)


class _IgnoreClientNegotiation(BaseContentNegotiation):
    """The export picks its format from ?format=; errors are problem+json whatever Accept says."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AuditExportApi(TenantAPI):
    """A streamed export of the entries matching the filters, up to the last one when it starts."""

    read_roles = AUDIT_ROLES
    write_roles = AUDIT_ROLES
    content_negotiation_class = _IgnoreClientNegotiation

    @extend_schema(summary="Export the matching entries (streamed; its manifest is signed)",
                   parameters=[OpenApiParameter("format", str, enum=["csv", "jsonl"], required=True),
                               *AUDIT_FILTERS],
                   responses={**file_response("The entries; the Audit-Export-Id header names the "
                                              "export whose manifest to fetch.",
                                              "text/csv", "application/x-ndjson"),
                              **problems(400, 401, 403)})
    def get(self, request):
        fmt = request.query_params.get("format", "")
        if fmt not in audit_export.FORMATS:
            raise Problem(400, "Choose ?format=csv or ?format=jsonl.",
                          errors=[{"field": "format", "message": "Must be csv or jsonl."}])
        form = _audit_filters(request)
        export = audit_export.audit_export_start(tenant=self.tenant, fmt=fmt, user=request.user,
                                                 filters=form.filters_json())
        events = audit_export.export_queryset(export, audit_event_list(tenant=self.tenant,
                                                                       filters=form.filters()))
        response = StreamingHttpResponse(audit_export.stream(export, events),
                                         content_type=audit_export.CONTENT_TYPES[fmt])
        response["Audit-Export-Id"] = str(export.id)
        response["Content-Disposition"] = (f'attachment; filename="audit-{self.tenant.slug}-'
                                           f'{export.id}.{fmt}"')
        response["Cache-Control"] = "no-store"
        return response


class AuditExportManifestApi(ObjectAPI):
    read_roles = AUDIT_ROLES
    write_roles = AUDIT_ROLES
    url_kwarg = "export_id"
    needs = {"GET": "view"}

    def resolve(self, export_id, need):
        return get_audit_export_for_user(membership=self.membership, tenant=self.tenant, export_id=export_id)

    @extend_schema(summary="The signed manifest of a finished export",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description=(
                       "Count, first and last entries, hashes, Ed25519 signature.")),
                              **problems(401, 403, 404, 409)})
    def get(self, request, **url):
        export = self.object
        if export.completed_at is None:
            raise Problem(409, "This export has not finished streaming; its manifest is written "
                               "when the last byte is sent.")
        return Response(audit_export.manifest(export))


class SigningKeyApi(TenantAPI):
    """The public key that signs manifests and receipts: any member may check a signature."""

    read_roles = ALL_ROLES
    write_roles = ALL_ROLES

    @extend_schema(summary="The public key that signs manifests and receipts", responses={
        200: inline_serializer("SigningKey", fields={
            "key_id": serializers.CharField(), "algorithm": serializers.CharField(),
            "public_key": serializers.CharField(help_text="Base64 raw Ed25519 public key")}),
        **problems(401, 404)})
    def get(self, request):
        return Response(signing.public_key_info())
