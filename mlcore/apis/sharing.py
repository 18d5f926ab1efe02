"""Sharing endpoints: who may view, edit or use one dataset or model (both kinds share this)."""

from __future__ import annotations

from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from tenants.accounts.access import WRITER_ROLES
from tenants.web.api import ObjectAPI
from tenants.web.inputs import JSONInput
from tenants.web.openapi import component_rules, problems
from tenants.web.problems import Problem

from ..selectors import SHARE, object_grants
from ..services import sharing

GrantOutput = inline_serializer("Grant", fields={
    "email": serializers.EmailField(required=False),
    "everyone": serializers.BooleanField(required=False),
    "permission": serializers.CharField(),
}, many=True)


class ShareApi(ObjectAPI):
    """List, grant and remove grants on one object (a dataset or a model).

    Owner and admins only: write_roles lets members in, then the access function requires the
    share right on this very object. Subclasses add the resource's base (DatasetAPI...), which
    resolves the object; the sharing itself is the one core, mlcore.services.sharing.
    """

    write_roles = WRITER_ROLES
    needs = {"GET": SHARE, "POST": SHARE, "DELETE": SHARE}
    delete_has_body = True  # {"email"} or {"everyone": true}: documented (PortalAutoSchema)
    permissions: tuple[str, ...] = ()  # the levels of the object's ladder

    class GrantInput(JSONInput):
        email = serializers.EmailField(required=False)
        everyone = serializers.BooleanField(required=False, default=False)
        permission = serializers.ChoiceField(choices=[], required=False)

        def __init__(self, *args, permissions=(), **kwargs):
            super().__init__(*args, **kwargs)
            self.fields["permission"].choices = list(permissions)

    def _input(self) -> dict:
        data = self.GrantInput(data=self.request.data, permissions=self.permissions)
        data.is_valid(raise_exception=True)
        return data.validated_data

    def get(self, request, **url):
        return Response(object_grants(obj=self.object))

    def post(self, request, **url):
        values = self._input()
        if "permission" not in values:
            names = " or ".join(f"'{p}'" for p in self.permissions)
            raise Problem(400, f"Choose a permission: {names}.",
                          errors=[{"field": "permission", "message": "This field is required."}])
        sharing.object_share(tenant=self.tenant, obj=self.object, **values)
        return Response(object_grants(obj=self.object), status=status.HTTP_201_CREATED)

    def delete(self, request, **url):
        values = {k: v for k, v in self._input().items() if k in ("email", "everyone")}
        sharing.object_unshare(tenant=self.tenant, obj=self.object, **values)
        return Response(object_grants(obj=self.object))


# Exactly one target: an e-mail, or everyone: true (mlcore.services.sharing._one_target).
ONE_TARGET = [{"required": ["email"]},
              {"required": ["everyone"], "properties": {"everyone": {"enum": [True]}}}]


def share_schema(cls, label: str):
    """The share endpoints of one kind of object, documented on the subclass."""
    target = {
        "email": serializers.EmailField(required=False, help_text="A member of the workspace"),
        "everyone": serializers.BooleanField(required=False, help_text="The whole workspace"),
    }
    grant = inline_serializer(f"{label}GrantInput", fields={
        **target, "permission": serializers.ChoiceField(choices=list(cls.permissions))})
    ungrant = inline_serializer(f"{label}UngrantInput", fields=target)
    component_rules(f"{label}GrantInput", oneOf=ONE_TARGET)
    component_rules(f"{label}UngrantInput", oneOf=ONE_TARGET)
    return extend_schema_view(
        get=extend_schema(summary=f"Who the {label.lower()} is shared with",
                          responses={200: GrantOutput, **problems(401, 403, 404)}),
        post=extend_schema(summary=f"Share the {label.lower()}", description="An e-mail or "
                           "`everyone: true`, not both.", request=grant,
                           responses={201: GrantOutput, **problems(400, 401, 403, 404)}),
        delete=extend_schema(summary=f"Stop sharing the {label.lower()}", description="An e-mail "
                             "or `everyone: true`, not both.", request=ungrant,
                             responses={200: GrantOutput, **problems(400, 401, 403, 404)}),
    )(cls)
