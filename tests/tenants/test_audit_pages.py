"""The audit page (/audit/), its verify button, and the operator page (/ops/audit/)."""

import re

import pytest

from tenants.auditing import audit
from tenants.models import AuditEvent, AuditVerification
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["alice", "audrey"])
def test_auditors_and_admins_see_the_log_with_export_links(page_as, name):
    response = page_as(name).get("/audit/")
    assert response.status_code == 200
    assert b'data-testid="audit-row"' in response.content
    assert b"/api/v1/audit-events/export/?format=csv" in response.content
    assert b"/api/v1/audit-events/export/?format=jsonl" in response.content


@pytest.mark.parametrize("name", ["bob", "vera"])
def test_others_get_403_and_no_menu_entry(page_as, name):
    client = page_as(name)
    assert client.get("/audit/").status_code == 403
    assert client.post("/audit/verify/").status_code == 403
    assert b'data-testid="nav-audit"' not in client.get("/").content


def test_the_page_filters_and_paginates(page_as, acme):
    for i in range(60):
        audit.record("test.many", tenant=acme, details={"i": i})
    client = page_as("audrey")
    first = client.get("/audit/?action=test.many")
    assert first.content.count(b'data-testid="audit-row"') == 50
    assert b"Page 1 of 2" in first.content
    second = client.get("/audit/?action=test.many&page=2")
    assert second.content.count(b'data-testid="audit-row"') == 10
    assert client.get("/audit/?outcome=nonsense").status_code == 400


def test_the_filters_carry_into_the_export_links(page_as):
    response = page_as("audrey").get("/audit/?outcome=denied&actor=bob%40acme.test")
    assert b"format=csv&amp;outcome=denied&amp;actor=bob%40acme.test" in response.content


def test_the_verify_button_reports_an_intact_chain_and_is_logged(page_as, acme):
    client = page_as("audrey")
    response = client.post("/audit/verify/", follow=True)
    assert b"The audit trail is intact" in response.content
    logged = AuditEvent.objects.filter(tenant_id=acme.id, action="audit.verify").latest("seq")
    assert (logged.outcome, logged.actor_email) == ("allowed", "audrey@acme.test")
    assert b'data-testid="audit-last-verification"' in response.content


def test_the_verify_button_names_the_first_broken_entry(page_as, acme):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tenants_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute("UPDATE tenants_auditevent SET action = 'x' WHERE tenant_id = %s AND seq = 2",
                       [acme.id])
        cursor.execute("ALTER TABLE tenants_auditevent ENABLE TRIGGER audit_event_append_only")
    response = page_as("alice").post("/audit/verify/", follow=True)
    assert b"broken at entry #2" in response.content


def test_the_operator_page_shows_the_last_result_of_every_chain(world, public_client):
    from tenants.auditing.audit_chain import chains_verify

    chains_verify(trigger="schedule")
    ops = factories.bind_session(public_client, world.ops, None)
    page = ops.get("/ops/audit/")
    assert page.status_code == 200
    assert b"acme" in page.content and b"globex" in page.content
    assert b"intact" in page.content
    assert ops.post("/ops/audit/").status_code == 302
    assert AuditVerification.objects.filter(trigger="manual").count() >= 2


def test_the_operator_page_is_for_staff_only(world, public_client):
    assert public_client.get("/ops/audit/")["Location"].startswith("/admin/login/")
    bob = factories.bind_session(public_client, world.bob, None)
    assert bob.get("/ops/audit/").status_code == 302


def test_the_operator_page_lists_every_chain_before_any_verification(world, public_client, acme):
    audit.record("test.before_verify", tenant=acme)
    AuditVerification.objects.all().delete()
    ops = factories.bind_session(public_client, world.ops, None)
    html = ops.get("/ops/audit/").content.decode()
    rows = re.findall(r'<tr data-testid="ops-chain-row">.*?</tr>', html, re.S)
    chains = [re.search(r"<td>([\w-]+)", row).group(1) for row in rows]
    assert chains == ["platform", "acme", "globex"]
    assert all("not verified yet" in row for row in rows)
    head = AuditEvent.objects.filter(tenant_id=acme.id).order_by("-seq").first().seq
    assert f"<code>#{head}</code>" in rows[1]


def test_the_operator_page_shows_each_chains_head_and_last_result(world, public_client, acme):
    from tenants.auditing.audit_chain import chains_verify

    chains_verify(tenant_ids=[acme.id], trigger="schedule")
    audit.record("test.after_verify", tenant=acme)
    ops = factories.bind_session(public_client, world.ops, None)
    html = ops.get("/ops/audit/").content.decode()
    rows = re.findall(r'<tr data-testid="ops-chain-row">.*?</tr>', html, re.S)
    assert "intact" in rows[1] and "(1 since)" in rows[1] and "schedule" in rows[1]
    assert "not verified yet" in rows[2]  # globex: never verified, still listed
