"""The audit trail (tenants/auditing/audit.py, tenants/auditing/audit_chain.py): appending, the append-only table,
tamper detection at the right sequence number, counted online entries, retention purge."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from tenants.auditing import audit
from tenants.auditing import online as audit_online
from tenants.auditing.audit_chain import audit_purge, chain_verify, chains_verify
from tenants.models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditVerification
from tests import factories

pytestmark = pytest.mark.django_db

CHAIN = 900_001  # a chain of its own, so tampering never touches the session's tenants
N = 3_000


@pytest.fixture
def chain():
    return factories.audit_chain(tenant_id=CHAIN, slug="tamper", n=N)


def tamper(sql: str, params=()) -> None:
    """What an attacker owning the tables could do: bypass the append-only triggers."""
    factories.audit_tamper(sql, params)


def entry(seq: int) -> AuditEvent:
    return AuditEvent.objects.get(tenant_id=CHAIN, seq=seq)


def forged_hash(event: AuditEvent, **changes) -> str:
    data = {**audit.entry_dict(event), **changes}
    return audit.entry_hash(data)


# --- appending ----------------------------------------------------------------------------------
def test_record_appends_a_linked_entry_with_who_where_and_how(acme, page_as):
    before = AuditChainHead.objects.get(tenant_id=acme.id)
    page_as("bob").get("/members/", HTTP_USER_AGENT="pytest-agent", REMOTE_ADDR="192.0.2.7")
    audit.flush_pending(tenant_id=acme.id)  # the access log is buffered (beat flushes every second)
    event = AuditEvent.objects.filter(tenant_id=acme.id).latest("seq")
    assert event.seq == before.last_seq + 1
    assert event.prev_hash == before.last_hash
    assert (event.action, event.outcome, event.actor_email, event.role) == (
        "access.denied", "denied", "bob@acme.test", "member")
    assert (event.auth_method, event.source_ip, event.user_agent) == ("session", "192.0.2.7",
                                                                      "pytest-agent")
    assert event.request_id
    assert event.hash == audit.entry_hash(audit.entry_dict(event))


def test_entries_read_back_from_postgres_hash_the_same(acme):
    with audit.acting_as(audit.Actor(actor_email="x@acme.test", source_ip="::ffff:192.0.2.1",
                                     user_agent="a\x00b" + "u" * 400)):
        audit.record("test.odd", tenant=acme, object_id="y" * 100,
                     details={1: (1, 2), "big": 1e17, "nan": float("nan"), "nul": "a\x00",
                              "when": timezone.now()})
    event = AuditEvent.objects.filter(tenant_id=acme.id).latest("seq")
    assert event.source_ip == "192.0.2.1"
    assert event.details["1"] == [1, 2]
    assert event.details["nan"] is None
    assert chain_verify(tenant_id=acme.id).ok


def test_a_forged_forwarded_header_cannot_break_the_log(acme, anon, settings):
    settings.PORTAL_TRUST_X_FORWARDED_FOR = True
    response = anon.post("/login/", {"email": "alice@acme.test", "password": "nope"},
                         HTTP_X_FORWARDED_FOR="'; DROP TABLE x; --")
    assert response.status_code == 400
    event = AuditEvent.objects.filter(tenant_id=acme.id).latest("seq")
    assert event.action == "auth.login_failed"
    assert event.source_ip is None


def test_a_login_success_and_failure_are_recorded(acme, anon):
    anon.post("/login/", {"email": "vera@acme.test", "password": "wrong"})
    anon.post("/login/", {"email": "vera@acme.test", "password": factories.PASSWORD})
    failed, ok = AuditEvent.objects.filter(tenant_id=acme.id).order_by("-seq")[:2][::-1]
    assert (failed.action, failed.outcome, failed.details["reason"]) == (
        "auth.login_failed", "denied", "bad credentials")
    assert (ok.action, ok.outcome, ok.actor_email, ok.role) == ("auth.login", "allowed",
                                                                "vera@acme.test", "viewer")


def test_chains_of_tenants_are_separate_and_the_platform_has_its_own(acme, globex):
    audit.record("test.a", tenant=acme)
    audit.record("test.b", tenant=globex)
    audit.record("test.c", tenant=None)
    assert AuditEvent.objects.filter(tenant_id=acme.id).latest("seq").action == "test.a"
    assert AuditEvent.objects.filter(tenant_id=globex.id).latest("seq").action == "test.b"
    assert AuditEvent.objects.filter(tenant_id=None).latest("seq").action == "test.c"
    results = {r.tenant_slug: r.ok for r in chains_verify(trigger="manual")}
    assert {slug: results[slug] for slug in ("acme", "globex", "")} == {
        "acme": True, "globex": True, "": True}


def test_an_entry_inside_a_business_transaction_waits_for_its_commit(acme,
                                                                     django_capture_on_commit_callbacks):
    head = AuditChainHead.objects.get(tenant_id=acme.id).last_seq
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            audit.record("test.deferred", tenant=acme)
            assert AuditChainHead.objects.get(tenant_id=acme.id).last_seq == head
    assert AuditEvent.objects.filter(tenant_id=acme.id).latest("seq").action == "test.deferred"


# --- the database refuses changes ---------------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "UPDATE tenants_auditevent SET outcome = 'allowed' WHERE tenant_id = %s",
    "DELETE FROM tenants_auditevent WHERE tenant_id = %s",
    "TRUNCATE tenants_auditevent",
])
def test_the_database_refuses_update_delete_and_truncate(chain, statement):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [CHAIN] if "%s" in statement else [])
    assert AuditEvent.objects.filter(tenant_id=CHAIN).count() == N


def test_the_orm_cannot_change_an_entry_either(chain):
    with pytest.raises(DatabaseError):
        with transaction.atomic():
            AuditEvent.objects.filter(tenant_id=CHAIN, seq=5).update(outcome="allowed")
    with pytest.raises(DatabaseError):
        with transaction.atomic():
            entry(5).delete()


# --- tamper evidence: each kind of change is reported at the right entry -----------------------
def test_an_intact_chain_of_thousands_verifies(chain):
    result = chain_verify(tenant_id=CHAIN)
    assert result.ok, result.reason
    assert (result.entries, result.last_seq, result.head_hash) == (N, N, chain[-1]["hash"])


def test_an_edited_entry_is_reported_at_its_own_number(chain):
    tamper("UPDATE tenants_auditevent SET outcome = 'failed' WHERE tenant_id = %s AND seq = 1234",
           [CHAIN])
    result = chain_verify(tenant_id=CHAIN)
    assert (result.ok, result.first_bad_seq) == (False, 1234)
    assert "altered" in result.reason


def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link(chain):
    event = entry(1234)
    new_hash = forged_hash(event, actor_email="nobody@acme.test")
    tamper("UPDATE tenants_auditevent SET actor_email = 'nobody@acme.test', hash = %s "
           "WHERE tenant_id = %s AND seq = 1234", [new_hash, CHAIN])
    result = chain_verify(tenant_id=CHAIN)
    assert (result.ok, result.first_bad_seq) == (False, 1235)
    assert "does not link" in result.reason


def test_a_deleted_entry_is_reported_as_missing(chain):
    tamper("DELETE FROM tenants_auditevent WHERE tenant_id = %s AND seq = 1234", [CHAIN])
    result = chain_verify(tenant_id=CHAIN)
    assert (result.ok, result.first_bad_seq) == (False, 1234)
    assert "missing" in result.reason


def test_a_deletion_hidden_by_renumbering_is_reported_where_it_happened(chain):
    tamper("DELETE FROM tenants_auditevent WHERE tenant_id = %s AND seq = 1234", [CHAIN])
    tamper("UPDATE tenants_auditevent SET seq = -(seq - 1) WHERE tenant_id = %s AND seq > 1234", [CHAIN])
    tamper("UPDATE tenants_auditevent SET seq = -seq WHERE tenant_id = %s AND seq < 0", [CHAIN])
    tamper("UPDATE tenants_auditchainhead SET last_seq = last_seq - 1 WHERE tenant_id = %s", [CHAIN])
    result = chain_verify(tenant_id=CHAIN)
    assert (result.ok, result.first_bad_seq) == (False, 1234)


def test_entries_deleted_from_the_end_are_reported(chain):
    tamper("DELETE FROM tenants_auditevent WHERE tenant_id = %s AND seq > %s", [CHAIN, N - 3])
    result = chain_verify(tenant_id=CHAIN)
    assert (result.ok, result.first_bad_seq) == (False, N - 2)
    assert "missing from the end" in result.reason


def test_an_inserted_entry_is_reported_at_its_own_number(chain):
    # Make room at #1234 (renumber the rest) and insert a well-formed entry linked to #1233.
    tamper("UPDATE tenants_auditevent SET seq = -(seq + 1) WHERE tenant_id = %s AND seq >= 1234", [CHAIN])
    tamper("UPDATE tenants_auditevent SET seq = -seq WHERE tenant_id = %s AND seq < 0", [CHAIN])
    previous = entry(1233)
    forged = AuditEvent(tenant_id=CHAIN, tenant_slug="tamper", seq=1234, ts=previous.ts,
                        actor_email="mallory@acme.test", action="member.add", outcome="allowed",
                        details={}, prev_hash=previous.hash)
    forged.hash = audit.entry_hash(audit.entry_dict(forged))
    forged.save()
    result = chain_verify(tenant_id=CHAIN)
    assert (result.ok, result.first_bad_seq) == (False, 1234)
    assert "inserted" in result.reason


def test_two_swapped_entries_are_reported_at_the_first(chain):
    tamper("UPDATE tenants_auditevent SET seq = -1 WHERE tenant_id = %s AND seq = 1234", [CHAIN])
    tamper("UPDATE tenants_auditevent SET seq = 1234 WHERE tenant_id = %s AND seq = 1235", [CHAIN])
    tamper("UPDATE tenants_auditevent SET seq = 1235 WHERE tenant_id = %s AND seq = -1", [CHAIN])
    result = chain_verify(tenant_id=CHAIN)
    assert (result.ok, result.first_bad_seq) == (False, 1234)


def test_the_first_entry_is_checked_against_the_genesis(chain):
    tamper("UPDATE tenants_auditevent SET prev_hash = %s WHERE tenant_id = %s AND seq = 1",
           ["f" * 64, CHAIN])
    assert chain_verify(tenant_id=CHAIN).first_bad_seq == 1


def test_verification_results_are_kept_for_the_operator_page(chain):
    tamper("UPDATE tenants_auditevent SET outcome = 'failed' WHERE tenant_id = %s AND seq = 77", [CHAIN])
    chains_verify(tenant_ids=[CHAIN], trigger="schedule")
    kept = AuditVerification.objects.get(tenant_id=CHAIN)
    assert (kept.ok, kept.first_bad_seq, kept.trigger, kept.entries) == (False, 77, "schedule", 76)


# --- counted entries: online predictions ---------------------------------------------------------
def test_append_counted_writes_one_entry_for_many_calls(acme, bob):
    minute = timezone.now().replace(second=42)
    event = audit.append_counted(tenant_id=acme.id, action="prediction.online",
                                 object_type="model_version", object_id=7, count=120, rows=360,
                                 window_start=minute,
                                 actor=audit.Actor(actor_id=bob.pk, actor_email=bob.email,
                                                   role="member", auth_method="token"))
    assert event.details["count"] == 120
    assert event.details["rows"] == 360
    assert event.details["window_start"].endswith(":00.000000Z")
    assert chain_verify(tenant_id=acme.id).ok


def test_online_counters_in_redis_are_flushed_per_token_version_and_minute(acme, bob):
    from tenants.limits import gate

    then = timezone.now() - timedelta(minutes=3)
    for _ in range(3):
        audit_online.online_count(tenant_id=acme.id, token_id=5, actor_id=bob.pk, model_version_id=9,
                           rows=10, when=then)
    audit_online.online_count(tenant_id=acme.id, token_id=5, actor_id=bob.pk, model_version_id=10, rows=1,
                       when=then)
    # The documented layout, written by hand as the prediction endpoint's Lua script would.
    key = audit_online.online_key(acme.id, timezone.now())
    gate.client().hset(key, mapping={f"6|{bob.pk}|9|count": 2, f"6|{bob.pk}|9|rows": 4})
    gate.client().sadd(audit_online.online_pending_key(), key)

    assert audit_online.online_flush(tenant_id=acme.id) == 3
    entries = list(AuditEvent.objects.filter(tenant_id=acme.id, action="prediction.online")
                   .order_by("seq"))
    summary = [(e.object_id, e.details["token_id"], e.details["count"], e.details["rows"])
               for e in entries]
    assert summary == [("10", 5, 1, 1), ("9", 5, 3, 30), ("9", 6, 2, 4)]
    assert {e.actor_email for e in entries} == {"bob@acme.test"}
    assert {e.role for e in entries} == {"member"}
    assert audit_online.online_flush(tenant_id=acme.id) == 0  # taken once only
    assert not gate.client().exists(key)


def test_an_export_flushes_pending_online_counts_first(acme, bob, api_as):
    audit_online.online_count(tenant_id=acme.id, token_id=1, actor_id=bob.pk, model_version_id=3, rows=2)
    body = api_as("audrey").get("/api/v1/audit-events/export/?format=jsonl&action=prediction.online")
    lines = b"".join(body.streaming_content).splitlines()
    assert len(lines) == 1
    assert b'"count":1' in lines[0]


# --- retention purge ----------------------------------------------------------------------------
def test_a_purge_leaves_a_signed_checkpoint_and_the_rest_still_verifies(acme):
    start = timezone.now() - timedelta(days=400)
    factories.audit_chain(tenant_id=CHAIN, slug="tamper", n=100, start=start)
    checkpoint = audit_purge(tenant_id=CHAIN, before=start + timedelta(seconds=40, milliseconds=1),
                             actor_email="ops@portal.test")
    assert (checkpoint.through_seq, checkpoint.purged) == (40, 40)
    assert AuditEvent.objects.filter(tenant_id=CHAIN).order_by("seq").first().seq == 41
    result = chain_verify(tenant_id=CHAIN)
    assert result.ok, result.reason
    assert result.entries == 60
    # No tenant has this id, so the purge itself is recorded in the platform's chain.
    assert AuditEvent.objects.filter(tenant_id=None).latest("seq").action == "audit.purge"


def test_a_forged_checkpoint_is_detected(acme):
    start = timezone.now() - timedelta(days=400)
    factories.audit_chain(tenant_id=CHAIN, slug="tamper", n=50, start=start)
    audit_purge(tenant_id=CHAIN, before=start + timedelta(seconds=20, milliseconds=1))
    AuditCheckpoint.objects.filter(tenant_id=CHAIN).update(through_seq=25)
    result = chain_verify(tenant_id=CHAIN)
    assert (result.ok, result.first_bad_seq) == (False, 26)
    assert "signature" in result.reason


def test_without_a_checkpoint_purged_entries_are_missing(acme):
    factories.audit_chain(tenant_id=CHAIN, slug="tamper", n=30)
    tamper("DELETE FROM tenants_auditevent WHERE tenant_id = %s AND seq <= 10", [CHAIN])
    assert chain_verify(tenant_id=CHAIN).first_bad_seq == 1
