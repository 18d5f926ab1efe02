"""The operator's drill (issue 12, item 4): who can remove audit entries, and what a superuser's
rewrite leaves behind (migration 0007, tenants/auditing/witness.py, tenants/auditing/audit_chain.py).

An ordinary database role (the application's runtime role: neither table owner nor superuser) is
refused by the database; a superuser gets through it, and the signed checkpoints kept outside the
database catch what it did.
"""

import io
import json
import uuid
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from tenants import tasks
from tenants.auditing import audit, witness
from tenants.auditing.audit_chain import chain_verify
from tenants.models import AuditChainHead, AuditCheckpoint, AuditEvent
from tests import factories

CHAIN = 900_301  # a chain of its own, so tampering never touches the session's tenants


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def witnessed(tenant_id) -> list[dict]:
    return [c.body for c in witness.checkpoint_list(tenant_id)]


# --- an ordinary role: the database refuses ------------------------------------------------------
@contextmanager
def ordinary_role():
    """A LOGIN role with SELECT/INSERT/UPDATE/DELETE on the audit tables, not owner, not superuser."""
    name = f"portal_drill_{uuid.uuid4().hex[:12]}"  # roles are cluster-wide: never reuse a name
    tables = "tenants_auditevent, tenants_auditchainhead, tenants_auditcheckpoint"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOCREATEROLE')
        cursor.execute(f'GRANT USAGE ON SCHEMA public TO "{name}"')
        cursor.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO "{name}"')
        cursor.execute(f'GRANT USAGE ON SEQUENCE tenants_auditevent_id_seq TO "{name}"')
    params = {k: v for k, v in connection.get_connection_params().items()
              if k in ("dbname", "host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey")}
    try:
        with psycopg.connect(**params, user=name, autocommit=True, connect_timeout=10) as conn:
            yield conn
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{name}"')
            cursor.execute(f'DROP ROLE "{name}"')


def refused(conn, sql: str, params=(), match: str = "") -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=match) as raised:
        conn.execute(sql, params)
    return str(raised.value)


def test_an_ordinary_role_can_append_but_cannot_purge_cut_or_move_the_head_back(committed):
    chain = 910_000 + uuid.uuid4().int % 80_000  # committed rows stay: a fresh chain each run
    entries = factories.audit_chain(tenant_id=chain, slug="drillrole", n=10)
    last = entries[-1]
    with ordinary_role() as app:
        app.execute("SET portal.audit_purge = 'on'")  # the old escape hatch
        refused(app, "DELETE FROM tenants_auditevent WHERE tenant_id = %s AND seq = 10", [chain],
                match="append-only")
        refused(app, "UPDATE tenants_auditchainhead SET last_seq = 9, last_hash = %s WHERE tenant_id = %s",
                [entries[-2]["hash"], chain], match="only move forward")
        refused(app, "DELETE FROM tenants_auditchainhead WHERE tenant_id = %s", [chain],
                match="only move forward")
        refused(app, "UPDATE tenants_auditchainhead SET last_seq = 99 WHERE tenant_id = %s", [chain],
                match="must name an existing entry")
        refused(app, "SELECT portal_audit_purge(%s, %s)", [chain, 10], match="permission denied")
        refused(app, "SET ROLE portal_audit", match="permission denied")
        # ...while record()'s own statement (insert the entry and move the head) still works.
        head_id = AuditChainHead.objects.get(tenant_id=chain).id
        event = AuditEvent(tenant_id=chain, tenant_slug="drillrole", seq=11, ts=timezone.now(),
                           action="drill.append", outcome="allowed", details={}, prev_hash=last["hash"])
        event.hash = audit.entry_hash(audit.entry_dict(event))
        values = [json.dumps(event.details) if c == "details" else getattr(event, c)
                  for c in audit._EVENT_COLUMNS]
        app.execute(audit._INSERT_AND_MOVE_HEAD, [*values, event.seq, event.hash, head_id])

    assert AuditEvent.objects.filter(tenant_id=chain).count() == 11
    result = chain_verify(tenant_id=chain)
    assert (result.ok, result.last_seq) == (True, 11), result.reason


# --- a superuser gets through; the signed checkpoints catch it ----------------------------------
@pytest.mark.django_db
def test_a_superuser_who_cuts_the_end_and_moves_the_head_back_is_named_by_verify_audit(world):
    entries = factories.audit_chain(tenant_id=CHAIN, slug="drill", n=50)
    assert "drill: intact" in run("verify_audit", "--tenant", "drill")  # witnesses #50
    factories.audit_tamper("DELETE FROM tenants_auditevent WHERE tenant_id = %s AND seq = 50", [CHAIN])
    factories.audit_tamper("UPDATE tenants_auditchainhead SET last_seq = 49, last_hash = %s "
                           "WHERE tenant_id = %s", [entries[48]["hash"], CHAIN])
    with pytest.raises(CommandError, match=r"drill is broken at entry #50: the chain ends at #49 but "
                                           r"a signed checkpoint of \S+ witnessed #50") as raised:
        run("verify_audit", "--tenant", "drill")
    assert raised.value.returncode == 1


@pytest.mark.django_db
def test_a_superuser_who_rewrites_an_entry_and_recomputes_every_later_hash_is_named(world, settings):
    entries = factories.audit_chain(tenant_id=CHAIN, slug="drill", n=50)
    witness.checkpoint_record(tenant_id=CHAIN, tenant_slug="drill", seq=20, entry_hash=entries[19]["hash"],
                              reason="schedule")  # an earlier periodic run
    assert "drill: intact" in run("verify_audit", "--tenant", "drill")  # witnesses #50
    prev = entries[28]["hash"]
    for entry in entries[29:]:  # rewrite #30, re-chain #30..#50 and the head
        forged = {**entry, "prev_hash": prev}
        if entry["seq"] == 30:
            forged["actor_email"] = "nobody@drill.test"
        prev = audit.entry_hash(forged)
        factories.audit_tamper("UPDATE tenants_auditevent SET actor_email = %s, prev_hash = %s, hash = %s "
                               "WHERE tenant_id = %s AND seq = %s",
                               [forged["actor_email"], forged["prev_hash"], prev, CHAIN, entry["seq"]])
    factories.audit_tamper("UPDATE tenants_auditchainhead SET last_hash = %s WHERE tenant_id = %s",
                           [prev, CHAIN])

    with pytest.raises(CommandError, match=r"drill is broken at entry #50: entry #50 does not match "
                                           r"the signed checkpoint of \S+: the chain was rewritten "
                                           r"after #20") as raised:
        run("verify_audit", "--tenant", "drill")
    assert raised.value.returncode == 1
    # The hashes alone hold: without the checkpoints the rewrite would pass.
    settings.PORTAL_AUDIT_WITNESS_DIR = str(settings.PORTAL_STORAGE_DIR / "_no-witness" / uuid.uuid4().hex)
    assert chain_verify(tenant_id=CHAIN).ok


@pytest.mark.django_db
def test_a_checkpoint_with_a_bad_signature_is_reported(world):
    factories.audit_chain(tenant_id=CHAIN, slug="drill", n=30)
    run("verify_audit", "--tenant", "drill")
    path = witness.witness_path(CHAIN)
    body = json.loads(path.read_text())
    path.write_text(json.dumps({**body, "seq": 20}) + "\n")  # someone edits what was witnessed
    with pytest.raises(CommandError, match="checkpoint on line 1 of chain-900301.jsonl has an invalid "
                                           "signature") as raised:
        run("verify_audit", "--tenant", "drill")
    assert raised.value.returncode == 1


# --- the legitimate purge -------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_retention_purge_still_works_and_checkpoints_at_or_below_it_are_covered(world):
    start = timezone.now() - timedelta(days=400)
    entries = factories.audit_chain(tenant_id=CHAIN, slug="drill", n=60, start=start)
    for seq in (10, 20):
        witness.checkpoint_record(tenant_id=CHAIN, tenant_slug="drill", seq=seq,
                                  entry_hash=entries[seq - 1]["hash"], reason="schedule")
    assert "2 signed checkpoint(s) matched" in run("verify_audit", "--tenant", "drill")

    out = run("purge_audit", "--tenant", "drill", "--before",
              (start + timedelta(seconds=20, milliseconds=1)).isoformat(), "--yes")
    assert "Purged 20 entries through #20" in out
    out = run("verify_audit", "--tenant", "drill")
    # #10 is covered by the purge checkpoint, #20 is its last entry, #60 the verification's.
    assert "drill: intact, 40 entries, head #60" in out
    assert "3 signed checkpoint(s) matched" in out


@pytest.mark.django_db
def test_the_purge_function_deletes_only_a_prefix_a_retention_checkpoint_names(world):
    factories.audit_chain(tenant_id=CHAIN, slug="drill", n=20)
    with pytest.raises(DatabaseError, match="no retention checkpoint names entry #5"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT portal_audit_purge(%s, %s)", [CHAIN, 5])
    assert AuditEvent.objects.filter(tenant_id=CHAIN).count() == 20


@pytest.mark.django_db
def test_a_chain_that_does_not_verify_is_not_purged(world):
    start = timezone.now() - timedelta(days=400)
    factories.audit_chain(tenant_id=CHAIN, slug="drill", n=30, start=start)
    factories.audit_tamper("UPDATE tenants_auditevent SET outcome = 'denied' WHERE tenant_id = %s "
                           "AND seq = 5", [CHAIN])
    with pytest.raises(CommandError, match="broken at entry #5.*not purged"):
        run("purge_audit", "--tenant", "drill", "--before", timezone.now().isoformat(), "--yes")
    assert AuditEvent.objects.filter(tenant_id=CHAIN).count() == 30
    assert not AuditCheckpoint.objects.filter(tenant_id=CHAIN).exists()


# --- who writes checkpoints -------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_export_manifest_records_a_checkpoint_of_its_snapshot(api_as, acme):
    client = api_as("audrey")
    response = client.get("/api/v1/audit-events/export/?format=jsonl&action=nothing.matches")
    b"".join(response.streaming_content)
    manifest = client.get(f"/api/v1/audit-events/exports/{response['Audit-Export-Id']}/manifest/")
    assert manifest.status_code == 200
    [checkpoint] = witnessed(acme.id)
    snapshot = AuditEvent.objects.get(tenant_id=acme.id, seq=checkpoint["seq"])
    assert (checkpoint["reason"], checkpoint["tenant"], checkpoint["hash"]) == ("export", "acme", snapshot.hash)
    assert checkpoint["seq"] < AuditEvent.objects.filter(tenant_id=acme.id).latest("seq").seq  # + audit.export


@pytest.mark.django_db
def test_the_periodic_task_witnesses_every_head_that_moved(acme, globex, settings):
    schedule = settings.CELERY_BEAT_SCHEDULE["audit-witness-heads"]
    assert schedule["task"] == tasks.audit_witness_heads.name
    assert tasks.audit_witness_heads.apply().get() >= 2
    head = AuditChainHead.objects.get(tenant_id=acme.id)
    assert [(c["seq"], c["hash"], c["reason"]) for c in witnessed(acme.id)] == [
        (head.last_seq, head.last_hash, "schedule")]
    assert tasks.audit_witness_heads.apply().get() == 0  # nothing moved
    audit.record("drill.something", tenant=acme)
    assert tasks.audit_witness_heads.apply().get() == 1
    assert len(witnessed(acme.id)) == 2 and len(witnessed(globex.id)) == 1


@pytest.mark.django_db
def test_the_verify_button_names_a_cut_end_that_a_checkpoint_witnessed(page_as, acme):
    client = page_as("audrey")
    response = client.post("/audit/verify/", follow=True)
    assert b"matching 0 signed checkpoint(s)" in response.content  # and one is written now
    [checkpoint] = witnessed(acme.id)
    audit.flush_pending(tenant_id=acme.id)  # the page view's access entry too: the cut takes all
    kept = AuditEvent.objects.get(tenant_id=acme.id, seq=checkpoint["seq"] - 1)
    factories.audit_tamper("DELETE FROM tenants_auditevent WHERE tenant_id = %s AND seq > %s",
                           [acme.id, kept.seq])
    factories.audit_tamper("UPDATE tenants_auditchainhead SET last_seq = %s, last_hash = %s "
                           "WHERE tenant_id = %s", [kept.seq, kept.hash, acme.id])
    response = client.post("/audit/verify/", follow=True)
    assert (f"broken at entry #{checkpoint['seq']}: the chain ends at #{kept.seq} but a signed "
            f"checkpoint of {checkpoint['at']} witnessed #{checkpoint['seq']}").encode() in response.content
