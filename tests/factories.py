"""The named people and tenants, clients logged in as them, and builders for test data."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

PASSWORD = "correct-horse-battery-staple"

# name -> (email, [(tenant slug, role)])
PEOPLE = {
    "alice": ("alice@acme.test", [("acme", "admin")]),
    "bob": ("bob@acme.test", [("acme", "member")]),
    "vera": ("vera@acme.test", [("acme", "viewer")]),
    "audrey": ("audrey@acme.test", [("acme", "auditor")]),
    "charlie": ("charlie@globex.test", [("globex", "admin")]),
    "dana": ("dana@example.test", [("acme", "member"), ("globex", "member")]),
}
HOME_TENANT = {name: grants[0][0] for name, (_, grants) in PEOPLE.items()}
TENANTS = {"acme": "Acme Corp", "globex": "Globex Corporation"}


def host(slug: str | None) -> str:
    base = settings.PORTAL_BASE_DOMAIN
    return f"{slug}.{base}" if slug else base


def build_world() -> None:
    """Once per test session: public site, plans, template schema, two tenants and the people."""
    from tenants import services
    from tenants.models import User

    services.platform_setup()
    tenants = {}
    for slug, name in TENANTS.items():
        first_admin = next(email for email, grants in PEOPLE.values() if (slug, "admin") in grants)
        tenants[slug] = services.tenant_create(slug=slug, name=name, admin_email=first_admin,
                                               notify=False).tenant
    for email, grants in PEOPLE.values():
        user = User.objects.filter(email=email).first() or User.objects.create_user(email=email)
        user.set_password(PASSWORD)
        user.full_name = email.split("@")[0].title()
        user.save()
        for slug, role in grants:
            if not user.memberships.filter(tenant=tenants[slug]).exists():
                services.membership_add(tenant=tenants[slug], email=email, role=role, actor=None,
                                        notify=False)
    User.objects.create_superuser(email="ops@portal.test", password=PASSWORD)


@dataclass
class World:
    acme: object
    globex: object
    alice: object
    bob: object
    vera: object
    audrey: object
    charlie: object
    dana: object
    ops: object


def world() -> World:
    from tenants.models import Tenant, User

    users = {u.email: u for u in User.objects.filter(email__in=[e for e, _ in PEOPLE.values()]
                                                     + ["ops@portal.test"])}
    tenants = {t.slug: t for t in Tenant.objects.filter(slug__in=TENANTS)}
    return World(
        acme=tenants["acme"], globex=tenants["globex"],
        ops=users["ops@portal.test"],
        **{name: users[email] for name, (email, _) in PEOPLE.items()},
    )


def bind_session(client: Client, user, tenant) -> Client:
    """Log the client in as `user`, with the session bound to `tenant` like our login view does."""
    from tenants.accounts.access import SESSION_TENANT_KEY

    client.force_login(user)
    session = client.session
    session[SESSION_TENANT_KEY] = tenant.schema_name if tenant is not None else "public"
    session.save()
    return client


def logged_in_client(user, tenant) -> Client:
    return bind_session(Client(HTTP_HOST=host(tenant.slug)), user, tenant)


def token_client(user, tenant, *, scope: str = "write", host_slug: str | None = None) -> APIClient:
    from tenants.services import api_token_create

    _, secret = api_token_create(user=user, tenant=tenant, name="test", scope=scope, days=1)
    client = APIClient(HTTP_HOST=host(host_slug or tenant.slug))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.token = secret
    return client


def wipe_data() -> None:
    """Undo what a `committed` test left behind, keeping the session's tenants and people."""
    from tenants.models import ApiToken, Membership, Tenant, TenantUsage, UsageDaily, User

    connection.set_schema_to_public()
    keep_emails = [email for email, _ in PEOPLE.values()] + ["ops@portal.test"]
    for tenant in Tenant.objects.exclude(schema_name="public"):
        if tenant.slug not in TENANTS:
            tenant.delete(force_drop=True)
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'django_migrations'",
                [tenant.schema_name],
            )
            tables = [f'"{tenant.schema_name}"."{row[0]}"' for row in cursor.fetchall()]
            if tables:
                cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    ApiToken.objects.all().delete()
    UsageDaily.objects.all().delete()
    TenantUsage.objects.update(storage_bytes=0, datasets=0, model_versions=0)
    Membership.objects.exclude(user__email__in=keep_emails).delete()
    # A user's cascade reaches guardian's per-object permissions, which live in tenant schemas
    # (truncated above): collect it with a tenant schema on the search path, not public alone.
    from django_tenants.utils import schema_context

    with schema_context(Tenant.objects.get(slug=next(iter(TENANTS))).schema_name):
        User.objects.exclude(email__in=keep_emails).delete()
    _wipe_extra_public_tables()
    storage = settings.PORTAL_STORAGE_DIR
    if storage.exists():
        import shutil

        for child in storage.iterdir():
            shutil.rmtree(child, ignore_errors=True)


def _wipe_extra_public_tables() -> None:
    """Public tables added by later features register their clean-up here."""
    # Audit entries cannot be deleted (the append-only trigger): they stay, chains intact; those a
    # test's requests buffered go into their chains (the buffer lets nothing else remove them).
    from tenants.auditing.audit import flush_all_pending

    flush_all_pending()
    from axes.models import AccessAttempt
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tenants.models import (
        AuditExport,
        AuditVerification,
        IdempotentRequest,
        JobTicket,
        RecoveryCode,
        Tenant,
        UploadLease,
    )

    JobTicket.objects.all().delete()
    IdempotentRequest.objects.all().delete()
    UploadLease.objects.all().delete()
    TOTPDevice.objects.all().delete()
    RecoveryCode.objects.all().delete()
    AccessAttempt.objects.all().delete()
    AuditExport.objects.all().delete()
    AuditVerification.objects.all().delete()
    Tenant.objects.filter(require_admin_2fa=True).update(require_admin_2fa=False)


def audit_chain(*, tenant_id: int, slug: str = "acme", n: int = 1000, start=None) -> list[dict]:
    """A valid chain of `n` entries with computed hashes, loaded with COPY (fast: no record() loop).

    Use a tenant_id of your own (e.g. 900_001) unless the test is about a real tenant's chain.
    Returns the entries as dicts (entry_dict form, without ids).
    """
    from tenants.models import AuditChainHead

    entries = _audit_entries(tenant_id, slug, n, start)
    columns = ("tenant_id", "tenant_slug", "seq", "ts", "actor_id", "actor_email", "role",
               "auth_method", "source_ip", "user_agent", "action", "object_type", "object_id",
               "outcome", "request_id", "details", "prev_hash", "hash")
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY tenants_auditevent ({', '.join(columns)}) FROM STDIN") as copy:
            for row in entries:
                copy.write_row(row["_row"])
    AuditChainHead.objects.update_or_create(tenant_id=tenant_id, defaults={
        "last_seq": n, "last_hash": entries[-1]["hash"] if entries else "0" * 64})
    return entries


def audit_tamper(sql: str, params=()) -> None:
    """What the tables' owner or a superuser can do: switch the audit triggers off, change rows."""
    tables = ("tenants_auditevent", "tenants_auditchainhead")
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


_chains: dict = {}


def _audit_entries(tenant_id: int, slug: str, n: int, start) -> list[dict]:
    """Computed once per (chain, size, start) and test session: hashing is the slow part."""
    import json
    from datetime import UTC, datetime, timedelta

    from tenants.auditing import audit

    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    key = (tenant_id, slug, n, start)
    if key in _chains:
        return _chains[key]
    prev, entries = audit.GENESIS_HASH, []
    for seq in range(1, n + 1):
        ts = start + timedelta(seconds=seq)
        entry = {
            "seq": seq, "id": None, "ts": audit.format_ts(ts), "tenant": slug,
            "actor_id": seq % 7 + 1, "actor_email": f"user{seq % 7}@{slug}.test", "role": "member",
            "auth_method": "session", "source_ip": "10.0.0.1", "user_agent": "pytest",
            "action": "access.read" if seq % 3 else "dataset.download", "object_type": "dataset",
            "object_id": str(seq % 50), "outcome": "allowed" if seq % 11 else "denied",
            "request_id": f"req-{seq}", "details": {"n": seq}, "prev_hash": prev,
        }
        entry["hash"] = prev = audit.entry_hash(entry)
        entry["_row"] = (tenant_id, slug, seq, ts, entry["actor_id"], entry["actor_email"], "member",
                         "session", "10.0.0.1", "pytest", entry["action"], "dataset",
                         entry["object_id"], entry["outcome"], entry["request_id"],
                         json.dumps(entry["details"]), entry["prev_hash"], entry["hash"])
        entries.append(entry)
    _chains[key] = entries
    return entries


def audit_export_done(tenant, user, fmt: str = "jsonl"):
    """A finished (signed) export of `tenant`'s log, as if `user` had downloaded it."""
    import hashlib

    from tenants.auditing import audit_export
    from tenants.models import AuditExport

    export = AuditExport.objects.create(tenant_id=tenant.id, tenant_slug=tenant.slug, format=fmt,
                                        actor_id=user.pk, actor_email=user.email)
    return audit_export.audit_export_finish(export, audit_export._Tally(digest=hashlib.sha256()))
