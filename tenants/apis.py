"""REST API v1 of the tenants app: me, members, usage, tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.response import Response

from . import quotas, services
from .access import ADMIN_ROLES, ALL_ROLES
from .api import TenantAPI
from .models import Role, TokenScope
from .problems import Problem
from .selectors import api_token_list, get_api_token_for_user, get_member_for_admin, membership_list


def _conflict_or_invalid(exc: DjangoValidationError) -> Problem:
    errors = [{"field": f, "message": m} for f, ms in getattr(exc, "message_dict", {"": exc.messages}).items()
              for m in ms]
    message = errors[0]["message"] if errors else "Invalid input."
    status_code = 409 if "already" in message else 400
    return Problem(status_code, message, errors=errors)


class MeApi(TenantAPI):
    read_roles = ALL_ROLES

    def get(self, request):
        user = request.user
        return Response({
            "user": {"id": user.pk, "email": user.email},
            "tenant": {"slug": self.tenant.slug, "name": self.tenant.name},
            "role": self.membership.role,
        })


class MemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")
    role = serializers.CharField()
    limits = serializers.JSONField()
    created_at = serializers.DateTimeField()


class MemberListApi(TenantAPI):
    read_roles = ADMIN_ROLES
    write_roles = ADMIN_ROLES

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        role = serializers.ChoiceField(choices=Role.choices)

    def get(self, request):
        return self.paginated(membership_list(tenant=self.tenant), MemberOutput)

    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            added = services.membership_add(tenant=self.tenant, actor=request.user, **data.validated_data)
        except DjangoValidationError as exc:
            raise _conflict_or_invalid(exc)
        body = dict(MemberOutput(added.membership).data)
        if added.set_password_url:
            body["set_password_url"] = added.set_password_url
        return Response(body, status=status.HTTP_201_CREATED)


class MemberDetailApi(TenantAPI):
    read_roles = ADMIN_ROLES
    write_roles = ADMIN_ROLES

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices, required=False)
        limits = serializers.DictField(child=serializers.IntegerField(min_value=0), required=False)

    def _member(self, member_id):
        return get_member_for_admin(actor=self.membership, tenant=self.tenant, member_id=member_id)

    def get(self, request, member_id):
        return Response(MemberOutput(self._member(member_id)).data)

    def patch(self, request, member_id):
        member = self._member(member_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            if "role" in data.validated_data:
                services.membership_change_role(membership=member, role=data.validated_data["role"],
                                                actor=request.user)
            if "limits" in data.validated_data:
                quotas.member_limits_set(membership=member, limits=data.validated_data["limits"],
                                         actor=request.user)
        except DjangoValidationError as exc:
            raise _conflict_or_invalid(exc)
        return Response(MemberOutput(self._member(member_id)).data)

    def delete(self, request, member_id):
        member = self._member(member_id)
        try:
            services.membership_remove(membership=member, actor=request.user)
        except DjangoValidationError as exc:
            raise _conflict_or_invalid(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UsageApi(TenantAPI):
    read_roles = ALL_ROLES

    def get(self, request):
        return Response(quotas.usage_summary(tenant=self.tenant))


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scope = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField()


class TokenListApi(TenantAPI):
    """Own tokens only; every role may hold tokens."""

    read_roles = ALL_ROLES
    write_roles = ALL_ROLES

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)
        expires_in_days = serializers.IntegerField(min_value=1, max_value=services.MAX_TOKEN_DAYS,
                                                   default=90)

    def get(self, request):
        return self.paginated(api_token_list(user=self._user(), tenant=self.tenant), TokenOutput)

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


class TokenDetailApi(TenantAPI):
    read_roles = ALL_ROLES
    write_roles = ALL_ROLES

    def delete(self, request, token_id):
        token = get_api_token_for_user(user=request.user, tenant=self.tenant, token_id=token_id)
        services.api_token_revoke(token=token, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
