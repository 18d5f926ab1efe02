"""Periodic audit work (tenants/tasks.py) and its schedule."""

import pytest
from django.conf import settings
from django.db import connection

from tenants import tasks
from tenants.auditing import online as audit_online
from tenants.models import AuditEvent, AuditVerification

pytestmark = pytest.mark.django_db


def test_the_schedule_verifies_daily_and_flushes_online_counts_within_seconds():
    schedule = settings.CELERY_BEAT_SCHEDULE
    verify = schedule["audit-verify-chains"]
    assert verify["task"] == tasks.audit_verify_chains.name
    assert verify["schedule"].hour == {3}
    flush = schedule["audit-flush-online"]
    assert flush["task"] == tasks.audit_flush_online.name
    assert flush["schedule"] <= 10


def test_the_daily_task_verifies_every_chain_and_keeps_the_results(acme, globex):
    result = tasks.audit_verify_chains.apply().get()
    assert result["broken"] == []
    kept = {v.tenant_slug for v in AuditVerification.objects.filter(trigger="schedule")}
    assert {"acme", "globex"} <= kept


def test_the_daily_task_reports_a_broken_chain(acme):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tenants_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute("UPDATE tenants_auditevent SET actor_email = 'x' WHERE tenant_id = %s AND seq = 1",
                       [acme.id])
        cursor.execute("ALTER TABLE tenants_auditevent ENABLE TRIGGER audit_event_append_only")
    result = tasks.audit_verify_chains.apply().get()
    assert result["broken"] == [next(r for r in result["broken"] if r.startswith("acme"))]
    assert "BROKEN at #1" in result["broken"][0]


def test_the_flush_task_appends_counted_online_calls(acme, bob):
    audit_online.online_count(tenant_id=acme.id, token_id=3, actor_id=bob.pk, model_version_id=8, rows=5)
    assert tasks.audit_flush_online.apply().get() == 1
    entry = AuditEvent.objects.filter(tenant_id=acme.id).latest("seq")
    assert (entry.action, entry.details["count"], entry.details["rows"]) == ("prediction.online", 1, 5)
