"""The base class of every tenant API endpoint: safe unless a subclass deliberately adds.

Authentication (token or tenant-bound session with CSRF), the membership check, role checks per
method and token scope are set here. Endpoints declare which roles may read and write; they never
replace ``permission_classes``, they may only append to ``extra_permission_classes``.
"""

from __future__ import annotations

import json
from typing import ClassVar

from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils.json import strict_constant
from rest_framework.views import APIView

from .access import DATA_ROLES, WRITER_ROLES, MembershipInfo
from .authentication import PortalAuthentication
from .pagination import PortalPagination
from .permissions import IsTenantMember, RoleAllowed, TokenScopeAllowed


class TenantAPI(APIView):
    authentication_classes = [PortalAuthentication]
    read_roles: ClassVar[frozenset[str]] = DATA_ROLES
    write_roles: ClassVar[frozenset[str]] = WRITER_ROLES
    extra_permission_classes: ClassVar[list] = []

    def get_permissions(self):
        base = [IsTenantMember(), RoleAllowed(), TokenScopeAllowed()]
        return base + [cls() for cls in self.extra_permission_classes]

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


class dangerously_public_api(APIView):  # noqa: N801 - the name is the warning
    """For the few endpoints anyone may call (schema, docs). Grep for it in review."""

    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = []


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
