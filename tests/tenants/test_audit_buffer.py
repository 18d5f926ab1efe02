"""The buffered access log (tenants/auditing/audit.py: record_access, flush_pending; migration
0011): a request commits its entry to PendingAuditEvent without the chain lock; flushes move the
entries into their own chain, in order, once; every reader flushes first."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from tenants.auditing import audit
from tenants.auditing.audit_chain import chain_verify
from tenants.models import AuditChainHead, AuditEvent, PendingAuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def pending(tenant) -> list[PendingAuditEvent]:
    return list(PendingAuditEvent.objects.filter(tenant_id=tenant.id).order_by("id"))


def head(tenant) -> int:
    return AuditChainHead.objects.get(tenant_id=tenant.id).last_seq


def buffer(tenant, action: str, **actor) -> None:
    audit.record_access(action, tenant=tenant, object_type="dataset", object_id=7,
                        details={"status": 200}, actor=audit.Actor(**actor))


# --- a request is buffered, with the time and request id of when it was served ----------------
def test_a_request_commits_its_entry_to_the_buffer_and_the_chain_head_does_not_move(api_as, acme):
    bob = api_as("bob")  # its token's creation is an entry of its own
    before_head, before = head(acme), timezone.now()
    response = bob.get("/api/v1/datasets/", HTTP_X_REQUEST_ID="req-buffered-1")
    assert response.status_code == 200
    [entry] = pending(acme)
    assert (entry.action, entry.actor_email, entry.request_id, entry.details["path"]) == (
        "access.read", "bob@acme.test", "req-buffered-1", "/api/v1/datasets/")
    assert before <= entry.ts <= timezone.now()
    assert head(acme) == before_head

    assert audit.flush_pending(tenant_id=acme.id) == 1
    event = AuditEvent.objects.get(tenant_id=acme.id, request_id="req-buffered-1")
    assert (event.seq, event.ts, event.pending_id) == (before_head + 1, entry.ts, entry.id)
    assert pending(acme) == []
    assert chain_verify(tenant_id=acme.id).ok


# --- order ---------------------------------------------------------------------------------------
def test_a_flush_appends_in_buffer_order_across_batches_linked_and_verifiable(acme):
    start = head(acme)
    for i in range(7):
        buffer(acme, f"test.order{i}", actor_email=f"p{i}@acme.test", request_id=f"r{i}")
    assert audit.flush_pending(tenant_id=acme.id, batch=3) == 7
    events = list(AuditEvent.objects.filter(tenant_id=acme.id, seq__gt=start).order_by("seq"))
    assert [e.action for e in events] == [f"test.order{i}" for i in range(7)]
    assert [e.seq for e in events] == list(range(start + 1, start + 8))
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert [e.pending_id for e in events] == sorted(e.pending_id for e in events)
    assert all(e.hash == audit.entry_hash(audit.entry_dict(e)) for e in events)
    assert chain_verify(tenant_id=acme.id).ok


def test_a_direct_append_comes_after_every_entry_buffered_before_it(acme):
    start = head(acme)
    buffer(acme, "test.first")
    buffer(acme, "test.second")
    audit.record("test.direct", tenant=acme)  # a significant action: appended at once
    actions = list(AuditEvent.objects.filter(tenant_id=acme.id, seq__gt=start).order_by("seq")
                   .values_list("action", flat=True))
    assert actions == ["test.first", "test.second", "test.direct"]
    assert pending(acme) == []


# --- once, whatever happens ------------------------------------------------------------------------
def test_a_second_flush_moves_nothing_and_changes_nothing(acme):
    buffer(acme, "test.once")
    assert audit.flush_pending(tenant_id=acme.id) == 1
    count, last = AuditEvent.objects.filter(tenant_id=acme.id).count(), head(acme)
    assert audit.flush_pending(tenant_id=acme.id) == 0
    assert (AuditEvent.objects.filter(tenant_id=acme.id).count(), head(acme)) == (count, last)
    assert AuditEvent.objects.filter(tenant_id=acme.id, action="test.once").count() == 1


def test_a_flush_that_fails_after_its_insert_leaves_the_entries_buffered_not_doubled(acme):
    buffer(acme, "test.crash")
    start = head(acme)
    with pytest.raises(RuntimeError), transaction.atomic(), connection.cursor() as cursor:
        head_id, seq, last_hash = audit._lock_head_row(cursor, acme.id)
        assert audit._move_batch(cursor, head_id, acme.id, seq, last_hash, 10, 2**62)[0] == 1
        raise RuntimeError("the flushing process dies before it commits")
    assert [p.action for p in pending(acme)] == ["test.crash"]
    assert head(acme) == start
    assert audit.flush_pending(tenant_id=acme.id) == 1
    assert AuditEvent.objects.filter(tenant_id=acme.id, action="test.crash").count() == 1
    assert chain_verify(tenant_id=acme.id).ok


def test_the_database_refuses_to_append_one_buffered_entry_twice(acme):
    buffer(acme, "test.twice")
    audit.flush_pending(tenant_id=acme.id)
    moved = AuditEvent.objects.get(tenant_id=acme.id, action="test.twice")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO tenants_auditevent (tenant_id, tenant_slug, seq, ts, actor_email, "
                       "role, auth_method, user_agent, action, object_type, object_id, outcome, "
                       "request_id, details, prev_hash, hash, pending_id) VALUES (%s, 'acme', %s, now(), "
                       "'', '', '', '', 'test.twice', '', '', 'allowed', '', '{}', %s, %s, %s)",
                       [acme.id, moved.seq + 1000, moved.hash, moved.hash, moved.pending_id])


@pytest.mark.parametrize("statement", [
    "UPDATE tenants_pendingauditevent SET action = 'forged' WHERE tenant_id = %s",
    "DELETE FROM tenants_pendingauditevent WHERE tenant_id = %s",
    "TRUNCATE tenants_pendingauditevent",
])
def test_the_database_refuses_to_change_or_drop_a_buffered_entry(acme, statement):
    buffer(acme, "test.guarded")
    with pytest.raises(DatabaseError, match="buffer"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [acme.id] if "%s" in statement else [])
    assert [p.action for p in pending(acme)] == ["test.guarded"]


def test_a_buffered_entry_cannot_be_deleted_against_a_different_chain_entry(acme):
    buffer(acme, "test.real")
    [entry] = pending(acme)
    # A forged chain entry naming the buffered id, with other content, does not let it go.
    with pytest.raises(DatabaseError, match="leaves the buffer only"), transaction.atomic():
        with connection.cursor() as cursor:
            head_id, seq, last_hash = audit._lock_head_row(cursor, acme.id)
            forged = {"seq": seq + 1, "ts": audit.format_ts(entry.ts), "tenant": "acme", "actor_id": None,
                      "actor_email": "", "role": "", "auth_method": "system", "source_ip": None,
                      "user_agent": "", "action": "test.forged", "object_type": "", "object_id": "",
                      "outcome": "allowed", "request_id": "", "details": {}, "prev_hash": last_hash}
            cursor.execute("INSERT INTO tenants_auditevent (tenant_id, tenant_slug, seq, ts, actor_email, role, "
                           "auth_method, user_agent, action, object_type, object_id, outcome, request_id, "
                           "details, prev_hash, hash, pending_id) VALUES (%s, 'acme', %s, %s, '', '', 'system', "
                           "'', 'test.forged', '', '', 'allowed', '', '{}', %s, %s, %s)",
                           [acme.id, seq + 1, entry.ts, last_hash, audit.entry_hash(forged), entry.id])
            cursor.execute("DELETE FROM tenants_pendingauditevent WHERE id = %s", [entry.id])
    assert [p.action for p in pending(acme)] == ["test.real"]


# --- each tenant's entries go to its own chain ----------------------------------------------------
def test_a_flush_of_one_tenant_never_moves_another_tenants_entries(acme, globex):
    acme_start, globex_start = head(acme), head(globex)
    buffer(acme, "test.acme-entry")
    buffer(globex, "test.globex-entry")
    buffer(acme, "test.acme-entry")
    assert audit.flush_pending(tenant_id=acme.id) == 2
    acme_new = AuditEvent.objects.filter(tenant_id=acme.id, seq__gt=acme_start)
    assert sorted(acme_new.values_list("action", "tenant_slug")) == [("test.acme-entry", "acme")] * 2
    assert [p.action for p in pending(globex)] == ["test.globex-entry"]
    assert head(globex) == globex_start
    assert audit.flush_all_pending() == 1
    assert list(AuditEvent.objects.filter(tenant_id=globex.id, seq__gt=globex_start)
                .values_list("action", "tenant_slug")) == [("test.globex-entry", "globex")]
    assert chain_verify(tenant_id=acme.id).ok and chain_verify(tenant_id=globex.id).ok


def test_the_beat_task_and_the_command_flush_every_chain(acme, globex):
    from tenants import tasks

    buffer(acme, "test.by-task")
    buffer(globex, "test.by-task")
    assert tasks.audit_flush_pending() == 2
    buffer(globex, "test.by-command")
    out = io.StringIO()
    call_command("flush_audit", "--tenant", "globex", stdout=out)
    assert "1 buffered audit entries appended" in out.getvalue()
    assert not PendingAuditEvent.objects.filter(tenant_id__in=[acme.id, globex.id]).exists()


# --- every reader sees every request served ---------------------------------------------------------
def test_the_audit_api_lists_a_request_served_a_moment_ago(api_as, acme):
    api_as("vera").get("/api/v1/datasets/", HTTP_X_REQUEST_ID="req-just-now")
    body = api_as("audrey").get("/api/v1/audit-events/?actor=vera@acme.test&order=desc").json()
    assert "req-just-now" in [e["request_id"] for e in body["results"]]


def test_the_audit_page_shows_a_request_served_a_moment_ago(page_as, acme):
    page_as("bob").get("/datasets/", HTTP_X_REQUEST_ID="req-page-view")
    assert pending(acme) != []
    assert page_as("audrey").get("/audit/?actor=bob@acme.test").status_code == 200
    assert AuditEvent.objects.filter(tenant_id=acme.id, request_id="req-page-view").count() == 1


def test_an_export_holds_a_request_served_a_moment_ago(api_as, acme):
    api_as("bob").get("/api/v1/datasets/", HTTP_X_REQUEST_ID="req-before-export")
    response = api_as("audrey").get("/api/v1/audit-events/export/?format=jsonl")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert "req-before-export" in [e["request_id"] for e in lines]


def test_verify_audit_verifies_the_buffered_entries_too(api_as, acme):
    api_as("bob").get("/api/v1/datasets/", HTTP_X_REQUEST_ID="req-before-verify")
    out = io.StringIO()
    call_command("verify_audit", "--tenant", "acme", stdout=out)
    assert "acme: intact" in out.getvalue()
    assert AuditEvent.objects.filter(tenant_id=acme.id, request_id="req-before-verify").count() == 1
    assert pending(acme) == []


def test_the_operator_page_shows_heads_that_include_buffered_entries(world, public_client, api_as, acme):
    api_as("bob").get("/api/v1/datasets/")
    ops = factories.bind_session(public_client, world.ops, None)
    assert ops.get("/ops/audit/").status_code == 200
    assert pending(acme) == []
