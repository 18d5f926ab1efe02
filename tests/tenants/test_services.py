"""tenants/services.py: tenant creation and deletion, slugs, tokens."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.utils import schema_context, schema_exists

from tenants import services
from tenants.errors import ServiceError
from tenants.models import Domain, Membership, Tenant
from tenants.web.pages import page_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("slug, message", [
    ("", "A slug is required."),
    ("ab", "A slug has 3 to 30 characters; 'ab' has 2."),
    ("a" * 31, "A slug has 3 to 30 characters"),
    ("Acme2", "Use lower-case letters only."),
    ("acme_2", "Use lower-case letters, digits and single hyphens"),
    ("2acme", "start with a letter"),
    ("acme-", "end with a letter or digit"),
    ("ac--me", "single hyphens"),
    ("www", "'www' is reserved"),
    ("admin", "'admin' is reserved"),
    ("api", "'api' is reserved"),
    ("public", "'public' is reserved"),
    ("static", "'static' is reserved"),
    ("acme", "A tenant with the slug 'acme' already exists."),
])
def test_bad_slugs_are_refused_with_a_clear_message(slug, message):
    with pytest.raises((ValidationError, ServiceError)) as exc:
        services.tenant_create(slug=slug, name="X", admin_email="x@x.test")
    assert message in page_error(exc.value)[0]
    assert not Tenant.objects.filter(name="X").exists()


def test_an_unknown_plan_is_refused_naming_the_plans():
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(slug="initech", name="Initech", admin_email="a@i.test", plan="gold")
    assert "No plan 'gold' (plans: free, team, enterprise)" in " ".join(exc.value.messages)


def test_a_new_tenant_gets_its_own_clean_fully_migrated_schema(world, outbox):
    from mlcore import models as _  # noqa: F401 - tenant tables must exist in the clone

    created = services.tenant_create(slug="initech", name="Initech", admin_email="peter@initech.test")
    tenant = created.tenant
    assert tenant.schema_name.startswith("t_initech_")
    assert schema_exists(tenant.schema_name)
    assert Domain.objects.get(tenant=tenant).domain == "initech.localhost"
    assert Membership.objects.get(tenant=tenant).role == "admin"
    assert "/account/set-password/" in created.set_password_url
    assert outbox[0].to == ["peter@initech.test"]

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", [tenant.schema_name])
        tables = [row[0] for row in cursor.fetchall()]
        assert "guardian_userobjectpermission" in tables
        for table in tables:
            if table == "django_migrations":
                continue
            cursor.execute(f'SELECT count(*) FROM "{tenant.schema_name}"."{table}"')  # noqa: S608
            assert cursor.fetchone()[0] == 0, f"{table} holds copied rows"

    with schema_context(tenant.schema_name):
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        tenant_apps = {"guardian", "mlcore"}
        assert [m for m, _ in plan if m.app_label in tenant_apps] == []


def test_an_existing_user_becomes_admin_without_a_password_link(world):
    created = services.tenant_create(slug="initech", name="Initech", admin_email="BOB@acme.test")
    assert created.admin == world.bob
    assert created.set_password_url is None


def test_deleting_a_tenant_drops_its_schema_and_revokes_its_tokens(world):
    from tenants.models import ApiToken

    tenant = services.tenant_create(slug="initech", name="Initech", admin_email="peter@initech.test").tenant
    admin = Membership.objects.get(tenant=tenant).user
    token, _ = services.api_token_create(user=admin, tenant=tenant, name="t")
    schema = tenant.schema_name
    services.tenant_delete(tenant=tenant)
    assert not schema_exists(schema)
    assert not Tenant.objects.filter(slug="initech").exists()
    assert not ApiToken.objects.filter(pk=token.pk).exists()


def test_token_lifetimes_are_bounded(world):
    with pytest.raises(ValidationError, match="between 1 and 365"):
        services.api_token_create(user=world.bob, tenant=world.acme, name="t", days=1000)


def test_a_token_needs_a_membership(world):
    with pytest.raises(ValidationError, match="not a member"):
        services.api_token_create(user=world.charlie, tenant=world.acme, name="t")
