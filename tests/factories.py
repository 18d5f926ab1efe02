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
    from tenants.access import SESSION_TENANT_KEY

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
    User.objects.exclude(email__in=keep_emails).delete()
    _wipe_extra_public_tables()
    storage = settings.PORTAL_STORAGE_DIR
    if storage.exists():
        import shutil

        for child in storage.iterdir():
            shutil.rmtree(child, ignore_errors=True)


def _wipe_extra_public_tables() -> None:
    """Public tables added by later features register their clean-up here."""
