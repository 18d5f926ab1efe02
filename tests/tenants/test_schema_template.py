"""tenants/schema_template.py: new schemas from the template's DDL."""

import pytest
from django.db import connection

from tenants import schema_template, services

pytestmark = pytest.mark.django_db


def tables(schema: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
                       "WHERE table_schema = %s ORDER BY table_name, column_name", [schema])
        return cursor.fetchall()


def constraints(schema: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname, contype FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                       "WHERE n.nspname = %s ORDER BY conname", [schema])
        return cursor.fetchall()


def test_a_new_schema_has_exactly_the_templates_structure(world):
    assert schema_template.template_ddl() is not None, "pg_dump should be available here"
    tenant = services.tenant_create(slug="initech", name="Initech", admin_email="p@initech.test",
                                    notify=False).tenant
    assert tables(tenant.schema_name) == tables("tenant_template")
    assert constraints(tenant.schema_name) == constraints("tenant_template")
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{tenant.schema_name}".django_migrations')  # noqa: S608
        copied = cursor.fetchone()[0]
        cursor.execute('SELECT count(*) FROM "tenant_template".django_migrations')
        assert copied == cursor.fetchone()[0]


def test_without_pg_dump_the_clone_function_still_builds_the_schema(world, monkeypatch):
    monkeypatch.setattr(schema_template, "template_ddl", lambda: None)
    tenant = services.tenant_create(slug="initech", name="Initech", admin_email="p@initech.test",
                                    notify=False).tenant
    assert tables(tenant.schema_name) == tables("tenant_template")
