"""Who may do what in a tenant: roles, memberships and bearer tokens.

The membership check runs before anything else on every tenant page and API call
(``tenants.web.middleware.TenantAccessMiddleware``). Lookups are cached per process and re-validated
against the auth epochs in Redis (``tenants.limits.gate``) on every request, so a revoked token or a
removed member is refused on the very next request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.http import Http404
from django.utils import timezone

from tenants.caches import cache_put
from tenants.limits import gate
from tenants.models import ApiToken, Domain, Membership, Role, Tenant

ALL_ROLES = frozenset(Role.values)
DATA_ROLES = frozenset({Role.ADMIN, Role.MEMBER, Role.VIEWER})
WRITER_ROLES = frozenset({Role.ADMIN, Role.MEMBER})
ADMIN_ROLES = frozenset({Role.ADMIN})
AUDIT_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})

SESSION_TENANT_KEY = "portal_tenant"
TOKEN_PREFIX = "mlp_"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True)
class MembershipInfo:
    id: int
    user_id: int
    tenant_id: int
    role: str
    limits: dict = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def can_write_data(self) -> bool:
        return self.role in WRITER_ROLES

    @property
    def can_see_data(self) -> bool:
        return self.role in DATA_ROLES


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user_id: int
    user_email: str
    tenant_id: int
    scope: str
    expires_at: object  # datetime | None

    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


# --- host -> tenant ---------------------------------------------------------------------------
_tenants_by_host: dict[str, tuple[float, Tenant | None]] = {}


def tenant_for_host(hostname: str) -> Tenant | None:
    ttl = settings.PORTAL_TENANT_CACHE_SECONDS
    now = time.monotonic()
    cached = _tenants_by_host.get(hostname)
    if cached and cached[0] > now:
        return cached[1]
    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    tenant = domain.tenant if domain and domain.tenant.is_active else None
    if ttl > 0:
        cache_put(_tenants_by_host, hostname, (now + ttl, tenant))
    return tenant


def forget_tenant_hosts() -> None:
    _tenants_by_host.clear()


# --- memberships ------------------------------------------------------------------------------
_memberships: dict[tuple[int, int], tuple[tuple[int, int], MembershipInfo | None]] = {}


def membership_for(*, user_id: int, tenant: Tenant, epochs: tuple[int, int] | None = None) -> MembershipInfo | None:
    """The user's membership in the tenant, or None. Cached until the user's or tenant's epoch moves."""
    epochs = epochs if epochs is not None else gate.read_epochs(user_id, tenant.id)
    key = (tenant.id, user_id)
    cached = _memberships.get(key)
    if cached and cached[0] == epochs:
        return cached[1]
    row = Membership.objects.filter(user_id=user_id, tenant_id=tenant.id, user__is_active=True).first()
    info = (
        MembershipInfo(id=row.id, user_id=user_id, tenant_id=tenant.id, role=row.role, limits=row.limits)
        if row
        else None
    )
    cache_put(_memberships, key, (epochs, info))
    return info


# --- bearer tokens ----------------------------------------------------------------------------
_tokens: dict[str, tuple[tuple[int, int], TokenInfo | None]] = {}


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenInvalid(Exception):
    """No such token, or revoked, or expired: the caller answers 401."""


def token_lookup(secret: str, gate_for: Callable[[int, int, int], gate.GateResult] | None = None
                 ) -> tuple[TokenInfo, gate.GateResult]:
    """Resolve a presented token; `gate_for(user_id, tenant_id, token_id)` is the request's one
    Redis trip (epochs, rate counting, the token's last use noted), returned with the token.
    Revocation and expiry take effect on the very next request.
    """
    gate_for = gate_for or (lambda user_id, tenant_id, token_id: gate.check(
        user_id, tenant_id, count_api=False, token_id=token_id))
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise TokenInvalid("malformed token")
    digest = token_digest(secret)
    cached = _tokens.get(digest)
    result = None
    if cached and cached[1] is not None:
        info = cached[1]
        result = gate_for(info.user_id, info.tenant_id, info.id)
        if cached[0] == result.epochs:
            if info.expired():
                raise TokenInvalid("token expired")
            return info, result
    rows = ApiToken.objects.select_related("user").filter(
        digest=digest, revoked_at__isnull=True, user__is_active=True
    )
    if result is None:
        first = rows.values("id", "user_id", "tenant_id").first()
        if first is None:
            raise TokenInvalid("unknown or revoked token")
        # Epochs first, then the row: a revocation that commits in between moves the epoch, so
        # the entry cached here is rebuilt on the next request instead of living on stale.
        result = gate_for(first["user_id"], first["tenant_id"], first["id"])
    row = rows.first()
    if row is None:
        raise TokenInvalid("unknown or revoked token")
    info = TokenInfo(id=row.id, user_id=row.user_id, user_email=row.user.email,
                     tenant_id=row.tenant_id, scope=row.scope, expires_at=row.expires_at)
    if info.expired():
        raise TokenInvalid("token expired")
    cache_put(_tokens, digest, (result.epochs, info))
    return info, result


def forget_cached_credentials() -> None:
    """Tests and commands that change rows behind the epochs' back call this."""
    _memberships.clear()
    _tokens.clear()
    _tenants_by_host.clear()


# --- role checks used by selectors and access functions in both apps ---------------------------
def require_role(membership: MembershipInfo | None, roles: frozenset[str]) -> MembershipInfo:
    """404 for non-members (they may not learn what exists), PermissionDenied for the wrong role."""
    from django.core.exceptions import PermissionDenied

    if membership is None:
        raise Http404
    if membership.role not in roles:
        raise PermissionDenied(f"your role ({membership.role}) does not allow this")
    return membership
