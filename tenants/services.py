"""Writes in the public schema: platform set-up, tenants, memberships, API tokens."""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tenants.utils import get_public_schema_name, schema_exists

from tenants.accounts import access
from tenants.accounts.hosts import tenant_url
from tenants.auditing import audit
from tenants.crypto import keys
from tenants.errors import Conflict
from tenants.limits import gate, quotas
from tenants.models import (
    ApiToken,
    Domain,
    Membership,
    Plan,
    Role,
    Tenant,
    TenantUsage,
    TokenScope,
    User,
)

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
TEMPLATE_SCHEMA = settings.TENANT_BASE_SCHEMA

GIB = 1024**3
MIB = 1024**2
DEFAULT_PLANS = [
    dict(slug="free", name="Free", description="For trying the platform",
         storage_bytes=1 * GIB, rows_per_dataset=1_000_000, columns_per_dataset=200, datasets=20,
         model_versions=20, concurrent_jobs=1, cpu_seconds=3_600, memory_per_job_bytes=1 * GIB,
         wall_seconds_per_job=900, predicted_rows=1_000_000, api_requests_per_minute=600,
         fair_share_weight=1),
    dict(slug="team", name="Team", description="For teams that train and score every day",
         storage_bytes=20 * GIB, rows_per_dataset=20_000_000, columns_per_dataset=1_000,
         datasets=500, model_versions=1_000, concurrent_jobs=4, cpu_seconds=100 * 3_600,
         memory_per_job_bytes=4 * GIB, wall_seconds_per_job=3_600, predicted_rows=100_000_000,
         api_requests_per_minute=600_000, fair_share_weight=2),
    dict(slug="enterprise", name="Enterprise", description="Large data, many jobs at once",
         storage_bytes=500 * GIB, rows_per_dataset=200_000_000, columns_per_dataset=5_000,
         datasets=10_000, model_versions=20_000, concurrent_jobs=16, cpu_seconds=2_000 * 3_600,
         memory_per_job_bytes=16 * GIB, wall_seconds_per_job=6 * 3_600,
         predicted_rows=5_000_000_000, api_requests_per_minute=6_000_000, fair_share_weight=4),
]


# --- platform set-up ----------------------------------------------------------------------------
def plans_seed() -> list[Plan]:
    """Create the default plans that are missing; never overwrite an operator's edits."""
    plans = []
    for spec in DEFAULT_PLANS:
        plan, _ = Plan.objects.get_or_create(slug=spec["slug"], defaults=spec)
        plans.append(plan)
    return plans


def template_schema_sync(verbosity: int = 0) -> None:
    """Create and migrate the empty schema new tenants are cloned from."""
    if not schema_exists(TEMPLATE_SCHEMA):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{TEMPLATE_SCHEMA}"')
    call_command("migrate_schemas", tenant=True, schema_name=TEMPLATE_SCHEMA, interactive=False,
                 verbosity=verbosity)
    connection.set_schema_to_public()


def platform_setup(verbosity: int = 0) -> Tenant:
    """Idempotent: public tenant and domain, default plans, template schema. Run after migrating."""
    connection.set_schema_to_public()
    plans_seed()
    public, _ = Tenant.objects.get_or_create(
        schema_name=get_public_schema_name(), defaults={"slug": "public-site", "name": "Platform"}
    )
    Domain.objects.update_or_create(
        domain=settings.PORTAL_BASE_DOMAIN, defaults={"tenant": public, "is_primary": True}
    )
    template_schema_sync(verbosity=verbosity)
    return public


# --- tenants ------------------------------------------------------------------------------------
def validate_slug(slug: str) -> str:
    if not isinstance(slug, str) or not slug:
        raise ValidationError({"slug": "A slug is required."})
    if slug != slug.lower():
        raise ValidationError({"slug": "Use lower-case letters only."})
    if not 3 <= len(slug) <= 30:
        raise ValidationError({"slug": f"A slug has 3 to 30 characters; '{slug}' has {len(slug)}."})
    if not SLUG_RE.match(slug) or "--" in slug:
        raise ValidationError({"slug": "Use lower-case letters, digits and single hyphens; "
                                       "start with a letter and end with a letter or digit."})
    if slug in settings.PORTAL_RESERVED_SLUGS:
        raise ValidationError({"slug": f"'{slug}' is reserved; choose another name."})
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"A tenant with the slug '{slug}' already exists.", field="slug")
    return slug


def _new_schema_name(slug: str) -> str:
    return f"t_{slug.replace('-', '_')}_{secrets.token_hex(3)}"


def tenant_domain(slug: str) -> str:
    return f"{slug}.{settings.PORTAL_BASE_DOMAIN}"


@dataclass
class TenantCreated:
    tenant: Tenant
    admin: User
    set_password_url: str | None


def tenant_create(*, slug: str, name: str, admin_email: str, plan: str | None = None,
                  actor: User | None = None, notify: bool = True) -> TenantCreated:
    """Create a tenant, its schema (cloned from the template), its domain and first admin."""
    slug = (slug or "").strip()
    validate_slug(slug)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A name is required."})
    plan_slug = plan or settings.PORTAL_DEFAULT_PLAN
    plan_obj = Plan.objects.filter(slug=plan_slug).first()
    if plan_obj is None:
        known = ", ".join(Plan.objects.values_list("slug", flat=True)) or "none defined"
        raise ValidationError({"plan": f"No plan '{plan_slug}' (plans: {known})."})
    admin_email = _clean_email(admin_email, field="admin_email")
    if not schema_exists(TEMPLATE_SCHEMA):
        raise ValidationError("The platform is not set up: run 'manage.py setup_platform'.")

    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = Tenant(slug=slug, name=name, plan=plan_obj, schema_name=_new_schema_name(slug))
        tenant.full_clean()
        tenant.save()  # clones the template schema (inside this transaction)
        Domain.objects.create(domain=tenant_domain(slug), tenant=tenant, is_primary=True)
        TenantUsage.objects.create(tenant=tenant)
        keys.ensure_tenant_key(tenant)
        admin, created = _user_get_or_create(admin_email)
        membership = Membership.objects.create(user=admin, tenant=tenant, role=Role.ADMIN)
        audit.record("tenant.create", tenant=tenant, object_type="tenant", object_id=tenant.id,
                     details={"slug": slug, "name": name, "plan": plan_obj.slug})
        audit.record("member.add", tenant=tenant, object_type="member", object_id=membership.id,
                     details={"email": admin.email, "role": Role.ADMIN})
    connection.set_schema_to_public()
    access.forget_tenant_hosts()
    link = set_password_url(admin, tenant) if created else None
    if notify:
        _send_welcome(admin, tenant, link, inviter=actor)
    logger.info("tenant created", extra={"tenant": slug, "schema": tenant.schema_name})
    return TenantCreated(tenant=tenant, admin=admin, set_password_url=link)


def tenant_delete(*, tenant: Tenant, actor: User | None = None) -> None:
    """Revoke every session and token, destroy the data keys, drop the schema and the files.
    Audit entries stay."""
    if tenant.is_public:
        raise ValidationError("The public site cannot be deleted.")
    schema = tenant.schema_name
    connection.set_schema_to_public()
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
        _sessions_revoke(schema)
        ApiToken.objects.filter(tenant=tenant).update(revoked_at=timezone.now())
        gate.bump_tenant_epoch(tenant.id)
        # Crypto-shredding first: even files that survive on disk or in backups stay unreadable.
        destroyed = keys.destroy_tenant_keys(tenant)
        details = {"slug": tenant.slug, "schema": schema, "keys_destroyed": destroyed}
        audit.record("tenant.delete", tenant=tenant, object_type="tenant", object_id=tenant.id,
                     details=details)
        audit.record("tenant.delete", tenant=None, object_type="tenant", object_id=tenant.id,
                     details=details)
        Domain.objects.filter(tenant=tenant).delete()
        tenant.delete(force_drop=True)
    connection.set_schema_to_public()
    access.forget_tenant_hosts()
    folder = settings.PORTAL_STORAGE_DIR / schema
    shutil.rmtree(folder, ignore_errors=True)
    logger.info("tenant deleted", extra={"tenant": tenant.slug, "schema": schema})


def tenant_set_active(*, tenant: Tenant, active: bool) -> None:
    """A suspended tenant's hosts answer 404 on the next request of every process."""
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(is_active=active)
        gate.bump_tenant_epoch(tenant.id)
        audit.record("tenant.activate" if active else "tenant.suspend", tenant=None,
                     object_type="tenant", object_id=tenant.id, details={"slug": tenant.slug})
    access.forget_tenant_hosts()


def _sessions_revoke(schema: str) -> int:
    doomed = [s.session_key for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
              if s.get_decoded().get(access.SESSION_TENANT_KEY) == schema]
    Session.objects.filter(session_key__in=doomed).delete()
    return len(doomed)


# --- users and memberships ----------------------------------------------------------------------
def _clean_email(email: str, *, field: str = "email") -> str:
    from django.core.validators import validate_email

    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({field: f"'{email}' is not a valid e-mail address."})
    return email


def _user_get_or_create(email: str) -> tuple[User, bool]:
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return user, False
    return User.objects.create_user(email=email), True


def set_password_url(user: User, tenant: Tenant) -> str:
    """A one-time link: Django's token dies as soon as the password is set."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return tenant_url(tenant, f"/account/set-password/{uid}/{token}/")


def _send_welcome(user: User, tenant: Tenant, link: str | None, inviter: User | None) -> None:
    who = inviter.email if inviter else "A platform operator"
    if link:
        body = (f"{who} invited you to the workspace '{tenant.name}'.\n\n"
                f"Choose your password here (the link works once):\n{link}\n")
    else:
        body = (f"{who} added you to the workspace '{tenant.name}'.\n\n"
                f"Sign in at {tenant_url(tenant, '/login/')}\n")
    send_mail(f"You have been added to {tenant.name}", body, None, [user.email], fail_silently=False)


@dataclass
class MemberAdded:
    membership: Membership
    set_password_url: str | None


def membership_add(*, tenant: Tenant, email: str, role: str, actor: User | None,
                   notify: bool = True) -> MemberAdded:
    email = _clean_email(email)
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'; choose one of {', '.join(Role.values)}."})
    with transaction.atomic():
        user, created = _user_get_or_create(email)
        if Membership.objects.filter(user=user, tenant=tenant).exists():
            raise Conflict(f"{email} is already a member of {tenant.name}.", field="email")
        membership = Membership(user=user, tenant=tenant, role=role)
        membership.full_clean()
        membership.save()
        gate.bump_user_epoch(user.id)
        audit.record("member.add", tenant=tenant, object_type="member", object_id=membership.id,
                     details={"email": user.email, "role": role})
    link = set_password_url(user, tenant) if created else None
    if notify:
        _send_welcome(user, tenant, link, inviter=actor)
    return MemberAdded(membership=membership, set_password_url=link)


def _ensure_another_admin(membership: Membership) -> None:
    """Called inside a transaction: lock the tenant's admins so two demotions cannot race."""
    admins = list(
        Membership.objects.select_for_update()
        .filter(tenant_id=membership.tenant_id, role=Role.ADMIN, user__is_active=True)
        .values_list("id", flat=True)
    )
    if admins == [membership.id]:
        raise ValidationError({"role": "A workspace needs at least one admin; "
                                       "make someone else admin first."})


def membership_update(*, membership: Membership, role: str | None = None, limits: dict | None = None,
                      actor: User | None) -> Membership:
    """Change a member's role, limits or both: all of it or nothing (one transaction, one epoch bump)."""
    if role is not None and role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'; choose one of {', '.join(Role.values)}."})
    clean = quotas.member_limits_clean(tenant=membership.tenant, limits=limits) if limits is not None else None
    with transaction.atomic():
        if role is not None:
            _membership_set_role(membership, role)
        if clean is not None:
            _membership_set_limits(membership, clean)
        if role is not None or clean is not None:
            gate.bump_user_epoch(membership.user_id)
    return membership


def _membership_set_role(membership: Membership, role: str) -> None:
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        _ensure_another_admin(membership)
    previous = membership.role
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    audit.record("member.role_change", tenant=membership.tenant, object_type="member",
                 object_id=membership.id,
                 details={"email": membership.user.email, "from": previous, "to": role})


def _membership_set_limits(membership: Membership, limits: dict[str, int]) -> None:
    previous = membership.limits
    membership.limits = limits
    membership.save(update_fields=["limits"])
    audit.record("limits.change", tenant=membership.tenant, object_type="member",
                 object_id=membership.id,
                 details={"email": membership.user.email, "from": previous, "to": limits})


# What other apps must undo when a member leaves a workspace (mlcore pauses their schedules):
# registered at start-up, called inside the removal's transaction. tenants never imports them.
_member_removed_hooks: list = []


def register_member_removed_hook(hook) -> None:
    """`hook(tenant=..., user_id=...)` runs inside the transaction that removes the member."""
    if hook not in _member_removed_hooks:
        _member_removed_hooks.append(hook)


def membership_remove(*, membership: Membership, actor: User | None) -> None:
    with transaction.atomic():
        if membership.role == Role.ADMIN:
            _ensure_another_admin(membership)
        ApiToken.objects.filter(user_id=membership.user_id, tenant_id=membership.tenant_id,
                                revoked_at__isnull=True).update(revoked_at=timezone.now())
        member_id = membership.id
        membership.delete()
        for hook in list(_member_removed_hooks):
            hook(tenant=membership.tenant, user_id=membership.user_id)
        gate.bump_user_epoch(membership.user_id)
        audit.record("member.remove", tenant=membership.tenant, object_type="member",
                     object_id=member_id, details={"email": membership.user.email,
                                                   "role": membership.role})


def user_deactivate(*, user: User, actor: User | None) -> None:
    """Sessions stop at the next request (Django reloads the user); tokens via the epoch."""
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        gate.bump_user_epoch(user.id)
        audit.record("user.deactivate", tenant=None, object_type="user", object_id=user.id,
                     details={"email": user.email})


# --- API tokens ---------------------------------------------------------------------------------
MAX_TOKEN_DAYS = 365


def api_token_create(*, user: User, tenant: Tenant, name: str, scope: str = TokenScope.READ,
                     days: int | None = 90) -> tuple[ApiToken, str]:
    """Returns the row and the secret; only the secret's SHA-256 is stored."""
    name = (name or "").strip() or "API token"
    if len(name) > 100:
        raise ValidationError({"name": "A token name has at most 100 characters."})
    if scope not in TokenScope.values:
        raise ValidationError({"scope": "Scope must be 'read' or 'write'."})
    if days is not None and not 1 <= int(days) <= MAX_TOKEN_DAYS:
        raise ValidationError({"expires_in_days": f"Choose between 1 and {MAX_TOKEN_DAYS} days."})
    if not Membership.objects.filter(user=user, tenant=tenant).exists():
        raise ValidationError({"email": f"{user.email} is not a member of {tenant.name}."})
    secret = access.TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, tenant=tenant, name=name, scope=scope, prefix=secret[:12],
        digest=access.token_digest(secret),
        expires_at=timezone.now() + timedelta(days=int(days)) if days else None,
    )
    token.full_clean()
    token.save()
    audit.record("token.create", tenant=tenant, object_type="token", object_id=token.id,
                 details={"name": name, "scope": scope, "owner": user.email,
                          "expires_at": token.expires_at.isoformat() if token.expires_at else None})
    return token, secret


def api_token_revoke(*, token: ApiToken, actor: User | None) -> ApiToken:
    with transaction.atomic():
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        gate.bump_user_epoch(token.user_id)
        audit.record("token.revoke", tenant=token.tenant, object_type="token", object_id=token.id,
                     details={"name": token.name, "owner": token.user.email})
    return token


def user_notifications_set(*, user: User, notify_job_emails: bool) -> User:
    """A person's own e-mail preferences (global: they apply in every workspace)."""
    if user.notify_job_emails != notify_job_emails:
        user.notify_job_emails = notify_job_emails
        user.save(update_fields=["notify_job_emails"])
    return user


# Each request with a bearer token notes the token's last use in a Redis hash (the request gate's
# one round trip, tenants.limits.gate.check); this moves the notes to ApiToken.last_used_at. The
# hash is first renamed to a key of this flush's own (with a day's expiry), and deleted once the
# rows are written. Writing is idempotent (a time only ever moves forward), so a flush also
# finishes whatever keys an earlier flush was killed holding.
_TAKE_USE_NOTES_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('EXPIRE', KEYS[2], 86400)
return 1
"""


def api_tokens_last_used_flush() -> int:
    """Redis notes of token use -> ApiToken.last_used_at (every minute); returns the tokens noted."""
    import uuid
    from datetime import UTC, datetime

    from django.db.models import Q

    client = gate.client()
    notes_key = gate.tokens_used_key()
    client.eval(_TAKE_USE_NOTES_LUA, 2, notes_key, f"{notes_key}:taken:{uuid.uuid4().hex}")
    flushed = 0
    for taken in list(client.scan_iter(match=f"{notes_key}:taken:*", count=1000)):
        for token_id, stamp in client.hgetall(taken).items():
            when = datetime.fromtimestamp(int(stamp), UTC)
            flushed += ApiToken.objects.filter(pk=int(token_id)).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=when)).update(last_used_at=when)
        client.delete(taken)
    return flushed
