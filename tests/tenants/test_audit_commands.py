"""manage.py verify_audit (chains) and purge_audit."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from tenants.models import AuditCheckpoint, AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def break_entry(tenant_id: int, seq: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tenants_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute("UPDATE tenants_auditevent SET outcome = 'failed' WHERE tenant_id = %s AND seq = %s",
                       [tenant_id, seq])
        cursor.execute("ALTER TABLE tenants_auditevent ENABLE TRIGGER audit_event_append_only")


def test_verify_audit_reports_every_chain_intact(acme, globex):
    out = run("verify_audit")
    assert "acme: intact" in out
    assert "globex: intact" in out
    assert "chain(s) intact" in out


def test_verify_audit_exits_1_naming_the_first_bad_entry(acme):
    break_entry(acme.id, 3)
    with pytest.raises(CommandError, match="acme is broken at entry #3") as raised:
        run("verify_audit", "--tenant", "acme")
    assert raised.value.returncode == 1


def test_verify_audit_of_one_tenant_leaves_the_others_alone(acme, globex):
    break_entry(globex.id, 2)
    assert "acme: intact" in run("verify_audit", "--tenant", "acme")


def test_a_deleted_tenants_chain_stays_verifiable(world, django_capture_on_commit_callbacks):
    from tenants.services import tenant_create, tenant_delete

    with django_capture_on_commit_callbacks(execute=True):
        tenant = tenant_create(slug="initech", name="Initech", admin_email="p@initech.test",
                               notify=False).tenant
        tenant_id = tenant.id
        tenant_delete(tenant=tenant)
    assert AuditEvent.objects.filter(tenant_id=tenant_id, action="tenant.delete").exists()
    assert "initech: intact" in run("verify_audit", "--tenant", "initech")


def test_verify_audit_on_an_unknown_tenant_is_an_error():
    with pytest.raises(CommandError, match="No tenant"):
        run("verify_audit", "--tenant", "nope")


def test_purge_audit_needs_yes_and_leaves_a_checkpoint(world):
    start = timezone.now() - timedelta(days=800)
    factories.audit_chain(tenant_id=900_002, slug="oldco", n=20, start=start)
    before = (start + timedelta(seconds=10, milliseconds=1)).isoformat()
    with pytest.raises(CommandError, match="--yes"):
        run("purge_audit", "--tenant", "oldco", "--before", before)
    out = run("purge_audit", "--tenant", "oldco", "--before", before, "--operator", "ops@portal.test",
              "--yes")
    assert "Purged 10 entries through #10" in out
    checkpoint = AuditCheckpoint.objects.get(tenant_id=900_002)
    assert checkpoint.actor_email == "ops@portal.test"
    assert "oldco: intact" in run("verify_audit", "--tenant", "oldco")
