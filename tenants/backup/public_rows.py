"""A tenant's rows in the public schema, as JSON, and back.

What a tenant owns there: its tenant row, memberships (with member limits), API tokens (digests
only), usage gauges and daily metering, job-ledger tickets, wrapped data keys, and its audit
chain's head and retention checkpoints (the entries themselves travel as COPY text). People are
global, so the archive carries the users these rows and the tenant schema name: e-mail, names,
password hash, and their TOTP devices and recovery-code digests, so that restoring into another
installation lets the same people sign in the same way. Users are matched by e-mail on restore.
"""

from __future__ import annotations

import base64
from datetime import date, datetime

from django.core.exceptions import FieldDoesNotExist
from django.utils.dateparse import parse_date, parse_datetime
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.models import (
    ApiToken,
    AuditChainHead,
    AuditCheckpoint,
    JobTicket,
    Membership,
    RecoveryCode,
    Tenant,
    TenantKey,
    TenantUsage,
    UsageDaily,
    User,
)

TENANT_FIELDS = ("id", "slug", "name", "schema_name", "limit_overrides", "is_active", "created_at",
                 "require_admin_2fa")
USER_FIELDS = ("id", "email", "password", "full_name", "is_active", "date_joined", "last_login",
               "notify_job_emails")
MEMBERSHIP_FIELDS = ("id", "user_id", "role", "limits", "created_at")
TOKEN_FIELDS = ("id", "user_id", "name", "prefix", "digest", "scope", "created_at", "expires_at",
                "revoked_at", "last_used_at")
USAGE_FIELDS = ("storage_bytes", "datasets", "model_versions")
USAGE_DAILY_FIELDS = ("user_id", "day", "cpu_ms", "predicted_rows", "api_requests", "jobs",
                      "peak_memory_bytes")
TICKET_FIELDS = ("id", "user_id", "job_id", "kind", "queue", "state", "created_at", "claimed_at",
                 "finished_at", "heartbeat_at", "worker", "attempts", "cancel_requested",
                 "wait_reason", "cpu_ms", "peak_memory_bytes")
KEY_FIELDS = ("version", "wrapped_key", "master_key_id", "created_at", "rewrapped_at", "retired_at")
CHECKPOINT_FIELDS = ("tenant_slug", "through_seq", "through_hash", "purged", "before", "actor_email",
                     "created_at", "key_id", "signature")
TOTP_SKIP = ("id", "user")


def _jsonable(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _row(obj, fields) -> dict:
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def totp_fields() -> list[str]:
    return [f.attname for f in TOTPDevice._meta.concrete_fields if f.name not in TOTP_SKIP]


def export(tenant: Tenant, *, user_ids: set[int]) -> dict:
    """Everything of the tenant in the public schema; `user_ids` are the people its tenant schema
    names (owners, creators, guardian grants), added to those its public rows name."""
    memberships = list(Membership.objects.filter(tenant=tenant).order_by("id"))
    tokens = list(ApiToken.objects.filter(tenant=tenant).order_by("id"))
    days = list(UsageDaily.objects.filter(tenant=tenant).order_by("day", "user_id"))
    tickets = list(JobTicket.objects.filter(tenant=tenant).order_by("id"))
    people = set(user_ids) | {m.user_id for m in memberships} | {t.user_id for t in tokens}
    people |= {d.user_id for d in days if d.user_id} | {t.user_id for t in tickets if t.user_id}
    usage = TenantUsage.objects.filter(tenant=tenant).first()
    head = AuditChainHead.objects.filter(tenant_id=tenant.id).first()
    return {
        "tenant": {**_row(tenant, TENANT_FIELDS), "plan": tenant.plan.slug if tenant.plan else None},
        "users": [_user(user) for user in User.objects.filter(id__in=people).order_by("id")],
        "memberships": [_row(m, MEMBERSHIP_FIELDS) for m in memberships],
        "api_tokens": [_row(t, TOKEN_FIELDS) for t in tokens],
        "usage": _row(usage, USAGE_FIELDS) if usage else None,
        "usage_daily": [_row(d, USAGE_DAILY_FIELDS) for d in days],
        "job_tickets": [_row(t, TICKET_FIELDS) for t in tickets],
        "keys": [_row(k, KEY_FIELDS) for k in TenantKey.objects.filter(tenant=tenant).order_by("version")],
        "audit_head": {"last_seq": head.last_seq, "last_hash": head.last_hash} if head else None,
        "audit_checkpoints": [_row(c, CHECKPOINT_FIELDS) for c in
                              AuditCheckpoint.objects.filter(tenant_id=tenant.id).order_by("through_seq")],
    }


def _user(user: User) -> dict:
    return {
        **_row(user, USER_FIELDS),
        "totp_devices": [_row(d, totp_fields()) for d in TOTPDevice.objects.filter(user=user).order_by("id")],
        "recovery_codes": list(RecoveryCode.objects.filter(user=user).order_by("id")
                               .values_list("digest", flat=True)),
    }


# --- back ---------------------------------------------------------------------------------------
def parsed(row: dict, model) -> dict:
    """Archive values as the model's fields take them (dates, times, bytes)."""
    return {name: _from_json(_field(model, name), value) for name, value in row.items()}


def _field(model, name: str):
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:  # an attname: `user_id` is the column of the field `user`
        return model._meta.get_field(name.removesuffix("_id"))


def _from_json(field, value):
    if value is None or field is None:
        return value
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return parse_datetime(value)
    if kind == "DateField":
        return parse_date(value)
    if kind == "BinaryField":
        return base64.b64decode(value)
    return value


def users_match(users: list[dict]) -> tuple[dict[int, int], list[str]]:
    """{archived user id: id here}, creating the people this installation lacks (with their
    password hash, second factor and recovery codes). People already here keep their own
    credentials: the archive never overwrites an account that other tenants share.
    Returns the map and the e-mails created."""
    mapping, created = {}, []
    for row in users:
        user = User.objects.filter(email__iexact=row["email"]).first()
        if user is None:
            user = _user_create(row)
            created.append(user.email)
        mapping[row["id"]] = user.id
    return mapping, created


def _user_create(row: dict) -> User:
    fields = parsed({k: v for k, v in row.items() if k in USER_FIELDS and k != "id"}, User)
    # Never platform-operator rights from a tenant archive: is_staff/is_superuser stay False.
    user = User(**fields)
    user.full_clean(exclude=["password"])
    user.save()
    for device in row.get("totp_devices", []):
        TOTPDevice.objects.create(user=user, **parsed(device, TOTPDevice))
    RecoveryCode.objects.bulk_create([RecoveryCode(user=user, digest=d) for d in row.get("recovery_codes", [])])
    return user
