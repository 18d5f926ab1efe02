"""The base class of every tenant API endpoint: safe unless a subclass deliberately adds.

Authentication (token or tenant-bound session with CSRF), the membership check, role checks per
method and token scope are set here. Endpoints declare which roles may read and write; they never
replace ``permission_classes``, they may only append to ``extra_permission_classes``.
"""

from __future__ import annotations

from typing import ClassVar

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
