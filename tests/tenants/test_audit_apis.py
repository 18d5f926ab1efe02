"""GET /api/v1/audit-events/, its streamed export, the signed manifests, and verify_audit --export."""

import csv
import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.auditing import audit
from tenants.crypto import signing
from tenants.models import AuditEvent, AuditExport
from tests import factories

pytestmark = pytest.mark.django_db


def export(client, query: str) -> tuple[object, bytes]:
    response = client.get(f"/api/v1/audit-events/export/?{query}")
    assert response.status_code == 200, response.content
    return response, b"".join(response.streaming_content)


# --- who may read --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["alice", "audrey"])
def test_auditors_and_admins_read_the_log(api_as, name):
    response = api_as(name).get("/api/v1/audit-events/?page_size=5")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert set(body["results"][0]) == set(audit.FIELDS)
    assert body["results"][0]["tenant"] == "acme"


@pytest.mark.parametrize("name", ["bob", "vera"])
def test_members_and_viewers_get_403_from_everything_audit(api_as, name, audrey, acme):
    client = api_as(name)
    done = factories.audit_export_done(acme, audrey)
    assert client.get("/api/v1/audit-events/").status_code == 403
    assert client.get("/api/v1/audit-events/export/?format=csv").status_code == 403
    assert client.get(f"/api/v1/audit-events/exports/{done.id}/manifest/").status_code == 403


def test_charlie_gets_404_and_a_globex_export_is_404_for_alice(world, api_as):
    charlie = factories.token_client(world.charlie, world.globex, host_slug="acme")
    assert charlie.get("/api/v1/audit-events/").status_code == 404
    theirs = factories.audit_export_done(world.globex, world.charlie)
    assert api_as("alice").get(f"/api/v1/audit-events/exports/{theirs.id}/manifest/").status_code == 404
    assert api_as("alice").get("/api/v1/audit-events/exports/not-a-uuid/manifest/").status_code == 404


def test_the_list_shows_only_this_tenants_chain(api_as, acme, globex):
    audit.record("test.globex-only", tenant=globex)
    body = api_as("audrey").get("/api/v1/audit-events/?action=test.globex-only").json()
    assert body["count"] == 0


def test_denied_attempts_are_in_the_log(api_as, acme):
    api_as("vera").get("/api/v1/members/")
    body = api_as("audrey").get("/api/v1/audit-events/?outcome=denied&actor=vera@acme.test").json()
    assert body["results"][-1]["action"] == "access.denied"
    assert body["results"][-1]["details"]["status"] == 403
    assert body["results"][-1]["auth_method"] == "token"


# --- filters ------------------------------------------------------------------------------------
def test_filters_select_by_actor_action_object_outcome_and_time(api_as, acme, bob):
    start = AuditEvent.objects.filter(tenant_id=acme.id).latest("seq").ts
    with audit.acting_as(audit.Actor(actor_id=bob.pk, actor_email=bob.email, role="member")):
        audit.record("dataset.download", tenant=acme, object_type="dataset", object_id=42)
        audit.record("dataset.delete", tenant=acme, object_type="dataset", object_id=42,
                     outcome="failed")
    client = api_as("audrey")

    def seqs(query):
        return [e["action"] for e in client.get(f"/api/v1/audit-events/?{query}").json()["results"]]

    assert seqs("object_type=dataset&object_id=42") == ["dataset.download", "dataset.delete"]
    assert seqs(f"actor={bob.pk}&action=dataset.*") == ["dataset.download", "dataset.delete"]
    assert seqs("actor=BOB@acme.test&outcome=failed") == ["dataset.delete"]
    assert seqs("action=dataset.delete&until=2000-01-01T00:00:00Z") == []
    since = start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert seqs(f"since={since}&object_type=dataset&object_id=42&order=desc") == ["dataset.delete", "dataset.download"]


def test_bad_filters_are_a_400_naming_the_field(api_as):
    response = api_as("audrey").get("/api/v1/audit-events/?since=yesterday&outcome=maybe")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"since", "outcome"}


def test_the_list_is_paginated(api_as, acme):
    for i in range(7):
        audit.record("test.page", tenant=acme, details={"i": i})
    body = api_as("audrey").get("/api/v1/audit-events/?action=test.page&page_size=3&page=3").json()
    assert body["count"] == 7
    assert [e["details"]["i"] for e in body["results"]] == [6]
    assert body["next"] is None


# --- exports ------------------------------------------------------------------------------------
def test_a_jsonl_export_re_hashes_to_the_chain_and_its_manifest_is_signed(api_as, acme):
    client = api_as("audrey")
    response, data = export(client, "format=jsonl")
    export_id = response["Audit-Export-Id"]
    lines = [json.loads(line) for line in data.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert all(audit.entry_hash(e) == e["hash"] for e in lines)
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(lines, lines[1:], strict=False))

    manifest = client.get(f"/api/v1/audit-events/exports/{export_id}/manifest/").json()
    assert set(manifest) >= {"export_id", "format", "filters", "first_seq", "last_seq", "count",
                             "head_hash", "sha256", "created_at", "key_id", "signature"}
    assert manifest["export_id"] == export_id
    assert (manifest["first_seq"], manifest["last_seq"], manifest["count"]) == (1, len(lines), len(lines))
    assert manifest["head_hash"] == lines[-1]["hash"]
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["key_id"] == signing.key_id()
    assert signing.verify(manifest, public_key=signing.public_key_info()["public_key"])


def test_an_export_stops_at_the_last_entry_when_it_started_and_is_itself_logged(api_as, acme):
    client = api_as("alice")
    response = client.get("/api/v1/audit-events/export/?format=jsonl")
    last_when_started = AuditExport.objects.get(pk=response["Audit-Export-Id"]).through_seq
    logged = AuditEvent.objects.get(tenant_id=acme.id, action="audit.export")
    audit.record("test.after-start", tenant=acme)  # appended while the export streams
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert lines[-1]["seq"] == last_when_started
    assert logged.seq == last_when_started + 1  # the export's own entry comes right after it
    assert logged.details["format"] == "jsonl"
    assert logged.actor_email == "alice@acme.test"


def test_a_csv_export_neutralises_formulas_but_not_numbers(api_as, acme):
    with audit.acting_as(audit.Actor(actor_email="=cmd|'/c calc'!A1", user_agent="@SUM(1+1)")):
        audit.record("test.csv", tenant=acme, object_type="-2+3", object_id="-42.5e3",
                     details={"note": "+danger"})
    _, data = export(api_as("audrey"), "format=csv&action=test.csv")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == list(audit.FIELDS)
    assert row["actor_email"] == "'=cmd|'/c calc'!A1"
    assert row["user_agent"] == "'@SUM(1+1)"
    assert row["object_type"] == "'-2+3"
    assert row["object_id"] == "-42.5e3"
    assert json.loads(row["details"]) == {"note": "+danger"}


def test_export_filters_are_in_the_manifest(api_as, acme):
    client = api_as("audrey")
    response, data = export(client, "format=csv&outcome=denied&since=2020-01-01T00:00:00Z")
    manifest = client.get(f"/api/v1/audit-events/exports/{response['Audit-Export-Id']}/manifest/").json()
    assert manifest["filters"] == {"outcome": "denied", "since": "2020-01-01T00:00:00.000000Z"}
    assert manifest["format"] == "csv"
    assert manifest["count"] == data.count(b"\n") - 1


def test_an_empty_export_has_a_manifest_too(api_as):
    client = api_as("audrey")
    response, data = export(client, "format=jsonl&action=nothing.like.this")
    manifest = client.get(f"/api/v1/audit-events/exports/{response['Audit-Export-Id']}/manifest/").json()
    assert data == b""
    assert (manifest["count"], manifest["first_seq"], manifest["head_hash"]) == (0, None, "")


def test_an_unknown_format_is_a_400(api_as):
    response = api_as("audrey").get("/api/v1/audit-events/export/?format=xlsx")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_an_unfinished_export_has_no_manifest_yet(api_as):
    client = api_as("audrey")
    response = client.get("/api/v1/audit-events/export/?format=csv")  # not read
    manifest = client.get(f"/api/v1/audit-events/exports/{response['Audit-Export-Id']}/manifest/")
    assert manifest.status_code == 409


def test_the_export_ignores_the_accept_header(api_as):
    response = api_as("audrey").get("/api/v1/audit-events/export/?format=csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")


# --- offline check: verify_audit --export --manifest ---------------------------------------------
def _download(client, tmp_path, fmt: str) -> tuple:
    response, data = export(client, f"format={fmt}")
    manifest = client.get(f"/api/v1/audit-events/exports/{response['Audit-Export-Id']}/manifest/").json()
    data_path, manifest_path = tmp_path / f"audit.{fmt}", tmp_path / "manifest.json"
    data_path.write_bytes(data)
    manifest_path.write_text(json.dumps(manifest))
    return data_path, manifest_path


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_verify_audit_checks_an_export_offline(api_as, tmp_path, fmt):
    data_path, manifest_path = _download(api_as("audrey"), tmp_path, fmt)
    out = io.StringIO()
    call_command("verify_audit", "--export", str(data_path), "--manifest", str(manifest_path),
                 "--public-key", signing.public_key_info()["public_key"], stdout=out)
    assert "export verified" in out.getvalue()


def test_a_manifest_rewritten_to_match_changed_bytes_fails_its_signature(api_as, tmp_path):
    data_path, manifest_path = _download(api_as("audrey"), tmp_path, "jsonl")
    data_path.write_bytes(data_path.read_bytes().replace(b'"outcome":"allowed"', b'"outcome":"denied"', 1))
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(data_path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CommandError, match="signature") as raised:
        call_command("verify_audit", "--export", str(data_path), "--manifest", str(manifest_path))
    assert raised.value.returncode == 1


def test_verify_audit_spots_changed_bytes_and_a_rehashed_entry(api_as, tmp_path):
    data_path, manifest_path = _download(api_as("audrey"), tmp_path, "jsonl")
    original = data_path.read_bytes()
    data_path.write_bytes(original.replace(b'"outcome":"allowed"', b'"outcome":"denied"', 1))
    with pytest.raises(CommandError, match="SHA-256"):
        call_command("verify_audit", "--export", str(data_path), "--manifest", str(manifest_path))

    from tenants.auditing.audit_export import _jsonl_verify

    lines = [json.loads(line) for line in original.splitlines()]
    lines[2]["actor_email"] = "mallory@acme.test"
    data_path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    check = _jsonl_verify(data_path, json.loads(manifest_path.read_text()))
    assert (check.ok, check.first_bad_seq) == (False, lines[2]["seq"])


def test_verify_audit_without_a_manifest_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="both"):
        call_command("verify_audit", "--export", str(tmp_path / "x.jsonl"))
