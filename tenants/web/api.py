"""The base class of every tenant API endpoint: safe unless a subclass deliberately adds.

Authentication (token or tenant-bound session with CSRF), the membership check, role checks per
method and token scope are set here. Endpoints declare which roles may read and write; they never
replace ``permission_classes`` (or any hook in GUARDED_HOOKS: class creation fails), they may only
append to ``extra_permission_classes``; a deliberate replacement is named in ``dangerously_override``.
"""

from __future__ import annotations

import json
from typing import ClassVar

from django.db import connection
from django.http import HttpResponseNotModified
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.response import Response
from rest_framework.utils.json import strict_constant
from rest_framework.views import APIView

from tenants.accounts.access import DATA_ROLES, WRITER_ROLES, MembershipInfo
from tenants.accounts.authentication import PortalAuthentication
from tenants.accounts.permissions import IsTenantMember, RoleAllowed, TokenScopeAllowed
from tenants.web import advisory, conditional, idempotency
from tenants.web.pagination import PortalPagination
from tenants.web.problems import Problem

# The hooks that decide who gets in. A subclass that replaced one could drop a check unnoticed.
GUARDED_HOOKS = frozenset({
    "authentication_classes", "permission_classes", "get_authenticators", "get_permissions",
    "check_permissions", "check_object_permissions", "get_queryset",
})


class TenantAPI(APIView):
    authentication_classes = [PortalAuthentication]
    read_roles: ClassVar[frozenset[str]] = DATA_ROLES
    write_roles: ClassVar[frozenset[str]] = WRITER_ROLES
    extra_permission_classes: ClassVar[list] = []
    # Its POST creates something: an Idempotency-Key header makes retries safe (idempotency.py).
    idempotent: ClassVar[bool] = False
    # The escape hatch: name each guarded hook a subclass replaces on purpose, for review to see.
    dangerously_override: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        replaced = sorted((GUARDED_HOOKS & set(vars(cls))) - set(vars(cls).get("dangerously_override", ())))
        if replaced:
            raise TypeError(f"{cls.__qualname__} replaces {', '.join(replaced)} of TenantAPI; add checks "
                            f"with extra_permission_classes, or name them in dangerously_override.")

    def get_permissions(self):
        base = [IsTenantMember(), RoleAllowed(), TokenScopeAllowed()]
        return base + [cls() for cls in self.extra_permission_classes]

    def dispatch(self, request, *args, **kwargs):
        membership = getattr(request, "membership", None)
        if not (self.idempotent and request.method == "POST" and idempotency.HEADER in request.META
                and membership is not None):
            return super().dispatch(request, *args, **kwargs)
        claim = idempotency.claim(request, tenant=request.tenant, user_id=membership.user_id)
        try:
            if claim.answer is not None:
                return claim.answer
            response = super().dispatch(request, *args, **kwargs)
            claim.keep(response)
            return response
        finally:
            claim.close()

    def paginated(self, queryset, serializer_class, **context):
        """A page of ``queryset`` as {count, next, previous, results}."""
        paginator = PortalPagination()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        data = serializer_class(page, many=True, context={"request": self.request, **context}).data
        return paginator.get_paginated_response(data)

    @property
    def membership(self) -> MembershipInfo:
        return self.request._request.membership

    @property
    def tenant(self):
        return self.request._request.tenant


class ObjectAPI(TenantAPI):
    """An endpoint on one object named in the URL: the object is resolved once, after the
    permission checks and before the handler, through the resource's access function with the
    need of the request's method (404 when it may not be seen, 403 when this is not allowed).
    Handlers read ``self.object``; they never look it up themselves.
    """

    url_kwarg: ClassVar[str]
    needs: ClassVar[dict[str, str]] = {"GET": "view", "PATCH": "edit", "DELETE": "delete"}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)
                   and m.upper() not in cls.needs]
        if missing:
            raise TypeError(f"{cls.__qualname__} has no need for {', '.join(missing)}: add it to needs.")

    @classmethod
    def as_view(cls, **initkwargs):
        # Checked when routed, not when defined: a shared base (ShareApi) leaves resolve() to the
        # endpoints built on it.
        if cls.resolve is ObjectAPI.resolve:
            raise TypeError(f"{cls.__qualname__} does not say how its object is found: define "
                            f"resolve() with the resource's access function.")
        return super().as_view(**initkwargs)

    def resolve(self, object_id, need: str):
        """The access function of the resource (get_dataset_for_user...); every routed endpoint
        defines it (checked by as_view)."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        method = "GET" if request.method == "HEAD" else request.method
        if method in self.needs and hasattr(self, method.lower()):  # else 405, or OPTIONS
            self.object = self.resolve(kwargs[self.url_kwarg], self.needs[method])
            if method in ("PATCH", "DELETE") and "HTTP_IF_MATCH" in request.META:
                self._check_if_match(request.META["HTTP_IF_MATCH"], kwargs[self.url_kwarg], self.needs[method])

    def _check_if_match(self, header: str, object_id, need: str) -> None:
        """The write goes ahead only while the object is what the caller read (conditional.py)."""
        name = f"if-match:{connection.schema_name}:{type(self.object).__name__}:{self.object.pk}"
        if not advisory.lock(name, wait=conditional.LOCK_WAIT_SECONDS):
            raise Problem(409, "Another conditional change to this object is still running; retry.",
                          slug="conflict", headers={"Retry-After": "1"})
        self._write_lock = name
        self.object = self.resolve(object_id, need)  # as it is now, under the lock
        current = conditional.etag_of(self.get(self.request, **self.kwargs).data) if hasattr(self, "get") else None
        if not conditional.match(header, current):
            raise Problem(412, "It changed since you read it (If-Match does not name its current ETag): "
                          "read it again, then retry.", slug="precondition-failed")

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(self, "_write_lock", None):
            advisory.unlock(self._write_lock)
            self._write_lock = None
        if (request.method in ("GET", "HEAD") and response.status_code == 200 and isinstance(response, Response)
                and response.data is not None):
            etag = conditional.etag_of(response.data)
            response["ETag"] = etag
            if conditional.none_match(request.META.get("HTTP_IF_NONE_MATCH", ""), etag):
                return HttpResponseNotModified(headers={"ETag": etag})
        return response


# --- for endpoints on the hot path (online predictions): DRF's behaviour, less work per call ---
class FastJSONParser(JSONParser):
    """DRF's JSONParser (same charset check, NaN/Infinity refused when strict, same errors)
    without what it builds on every call: a codecs stream reader and a JSONDecoder."""

    _decoders = {True: json.JSONDecoder(parse_constant=strict_constant), False: json.JSONDecoder()}

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            if text.startswith("\ufeff"):  # json.load refuses a byte-order mark; so do we
                raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
            return self._decoders[bool(self.strict)].decode(text)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}")


class JSONFirstNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, answering the usual case without parsing: no format override
    and a client that accepts anything or JSON, for a view whose first renderer is JSON (DRF
    would pick that renderer and media type too). Anything else goes through DRF unchanged."""

    def select_renderer(self, request, renderers, format_suffix=None):
        override = self.settings.URL_FORMAT_OVERRIDE
        if (not format_suffix and renderers and renderers[0].media_type == "application/json"
                and request.META.get("HTTP_ACCEPT", "*/*") in ("*/*", "application/json")
                and (override is None or override not in request.query_params)):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)
