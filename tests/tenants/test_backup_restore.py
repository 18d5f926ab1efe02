"""Backup and restore of one tenant through the commands, as an operator runs them (docs/api.md).

Committed rows (the `committed` fixture): a restore swaps the tenant's files on disk, which a
rolled-back test transaction would leave out of step with its rows.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tenants.utils import schema_context, tenant_context

from mlcore import serving, storage
from mlcore.models import Dataset, ModelVersion
from tenants import services
from tenants.models import AuditEvent, JobTicket, Membership, Tenant, TenantKey, User
from tests import factories
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

ROWS = [{"tenure": 2, "monthly": 95.0, "plan": "basic", "autopay": "no"},
        {"tenure": 60, "monthly": 30.0, "plan": "pro", "autopay": "yes"}]


def ciphertexts(tenant) -> dict[str, str]:
    """SHA-256 of every stored file of the tenant, as stored (still encrypted)."""
    root = Path(settings.PORTAL_STORAGE_DIR) / tenant.schema_name
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def download(client, dataset_id) -> bytes:
    response = client.get(f"/api/v1/datasets/{dataset_id}/download/")
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)


def artifacts(tenant) -> dict[str, tuple[str, str]]:
    """Every model version's artifact, decrypted: (SHA-256 of what reads back, the recorded one)."""
    with tenant_context(tenant):
        out = {}
        for version in ModelVersion.objects.order_by("id"):
            with storage.open_object(tenant, storage.MODELS, str(version.artifact_object_id)) as reader:
                out[version.model.name] = (hashlib.sha256(reader.readall()).hexdigest(),
                                           version.artifact_sha256)
        return out


def predict(client, model_id) -> dict:
    serving.forget_all()  # read the model from storage again, not from this process's cache
    response = client.post(f"/api/v1/models/{model_id}/predict/", {"rows": ROWS}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as caught:
        call_command(*args)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def leftovers() -> list[str]:
    return sorted(p.name for p in Path(settings.PORTAL_STORAGE_DIR).glob(".*"))


def globex_state(globex) -> tuple:
    with tenant_context(globex):
        datasets = list(Dataset.objects.order_by("id").values_list("id", "name", "sha256", "updated_at"))
    members = list(Membership.objects.filter(tenant=globex).order_by("id").values_list("id", "user_id", "role"))
    keys = list(TenantKey.objects.filter(tenant=globex).values_list("version", "wrapped_key"))
    head = AuditEvent.objects.filter(tenant_id=globex.id).order_by("-seq").values_list("seq", "hash").first()
    return datasets, members, [(v, bytes(w)) for v, w in keys], head, ciphertexts(globex)


@pytest.mark.slow
def test_a_tenant_rolls_back_in_place_and_restores_as_a_second_tenant(committed, tmp_path, capsys):
    world = factories.world()
    acme, globex = world.acme, world.globex
    bob = factories.token_client(world.bob, acme)
    charlie = factories.token_client(world.charlie, globex)
    churn = upload_dataset(bob, churn_csv(), filename="churn.csv", name="Churn")
    extra = upload_dataset(bob, churn_csv(120, seed=3), filename="extra.csv", name="Extra")
    job = bob.post("/api/v1/training-jobs/", {"dataset": churn["id"], "model_name": "Churn", "target": "churned",
                                              "algorithm": "logistic_regression"}, format="json").json()
    assert run_jobs("training") == 1
    trained = bob.get(f"/api/v1/jobs/{job['id']}/").json()["result"]
    scoring = bob.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": extra["id"]},
                       format="json").json()
    assert run_jobs("prediction") == 1
    result_csv = b"".join(bob.get(f"/api/v1/jobs/{scoring['id']}/result/").streaming_content)
    schedule = bob.post("/api/v1/schedules/", {"action": "retrain", "dataset": extra["id"], "model": trained["model"],
                                               "frequency": "daily"}, format="json")
    assert schedule.status_code == 201, schedule.content
    acme.refresh_from_db()
    due_before = acme.schedules_due_at
    assert due_before is not None
    upload_dataset(charlie, churn_csv(50, seed=9), filename="globex.csv", name="Globex data")
    services.membership_add(tenant=acme, email="erin@acme.test", role="viewer", actor=None, notify=False)
    erin = User.objects.get(email="erin@acme.test")
    erin.set_password("erin-original-password")
    erin.save(update_fields=["password"])
    phone = TOTPDevice.objects.create(user=erin, name="phone", confirmed=True)
    before = {
        "datasets": bob.get("/api/v1/datasets/").json()["results"],
        "bytes": {d: download(bob, d) for d in (churn["id"], extra["id"])},
        "artifacts": artifacts(acme),
        "prediction": predict(bob, trained["model"]),
        "globex": globex_state(globex),
    }
    archive = tmp_path / "acme.tar"

    printed = run("backup_tenant", "--slug", "acme", "--out", str(archive))
    assert archive.is_file() and "Backed up acme" in printed
    print(f"\nbackup of acme with test data: {printed.strip()}")

    # Things change after the backup.
    assert bob.delete(f"/api/v1/schedules/{schedule.json()['id']}/").status_code == 204
    assert bob.delete(f"/api/v1/datasets/{churn['id']}/").status_code == 204
    late_upload = {"file": SimpleUploadedFile("late.csv", churn_csv(80, seed=5)), "name": "Late"}
    late = bob.post("/api/v1/datasets/", late_upload, format="multipart", HTTP_IDEMPOTENCY_KEY="late-1").json()
    made_after = factories.token_client(world.bob, acme)
    with schema_context(acme.schema_name):  # guardian rows of hers live in the tenant schema
        User.objects.filter(email="erin@acme.test").delete()
    head_before_restore = AuditEvent.objects.filter(tenant_id=acme.id).order_by("-seq").first().seq

    printed = run("restore_tenant", "--in", str(archive))
    assert "rolled back in place" in printed and "1 user(s) created" in printed
    print(f"restore in place: {printed.strip()}")

    assert bob.get("/api/v1/datasets/").json()["results"] == before["datasets"]
    acme.refresh_from_db()
    assert acme.schedules_due_at == due_before  # the schedule is back, and the beat's index knows it
    assert bob.get(f"/api/v1/datasets/{late['id']}/").status_code == 404
    assert made_after.get("/api/v1/datasets/").status_code in (401, 404)  # a token made after the backup
    late_upload["file"].seek(0)  # a retry of the late upload runs again: its kept answer is gone
    after = bob.post("/api/v1/datasets/", late_upload, format="multipart", HTTP_IDEMPOTENCY_KEY="late-1").json()
    assert after["id"] > late["id"]  # and an id handed out after the backup is never handed out again
    assert bob.delete(f"/api/v1/datasets/{after['id']}/").status_code == 204
    for dataset_id, content in before["bytes"].items():
        assert download(bob, dataset_id) == content
    assert artifacts(acme) == before["artifacts"]
    assert all(got == recorded for got, recorded in before["artifacts"].values())
    assert b"".join(bob.get(f"/api/v1/jobs/{scoring['id']}/result/").streaming_content) == result_csv
    assert predict(bob, trained["model"]) == before["prediction"]
    assert globex_state(globex) == before["globex"]
    erin = User.objects.get(email="erin@acme.test")  # the same person, able to sign in as before
    assert erin.check_password("erin-original-password") and not erin.is_staff
    assert Membership.objects.get(tenant=acme, user=erin).role == "viewer"
    assert TOTPDevice.objects.get(user=erin, confirmed=True).key == phone.key  # and the same second factor
    # The live chain is kept (never shortened) and records the restore.
    entries = AuditEvent.objects.filter(tenant_id=acme.id).order_by("-seq")
    assert entries.first().seq > head_before_restore
    restored = entries.filter(action="tenant.restored").first()
    assert restored.details["archive_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert restored.details["mode"] == "in place"
    assert "intact" in run("verify_audit", "--tenant", "acme")
    assert leftovers() == []

    printed = run("restore_tenant", "--in", str(archive), "--as", "acme2")
    assert "restored as a new tenant" in printed
    acme2 = Tenant.objects.get(slug="acme2")
    assert acme2.schema_name != acme.schema_name and acme2.id != acme.id
    assert acme2.schedules_due_at == due_before
    bob2 = factories.token_client(world.bob, acme2)
    assert [(d["name"], d["sha256"]) for d in bob2.get("/api/v1/datasets/").json()["results"]] == \
        [(d["name"], d["sha256"]) for d in before["datasets"]]
    for dataset_id, content in before["bytes"].items():
        assert download(bob2, dataset_id) == content
    assert artifacts(acme2) == before["artifacts"]
    assert predict(bob2, trained["model"]) == before["prediction"]
    assert set(Membership.objects.filter(tenant=acme2).values_list("user__email", "role")) == \
        set(Membership.objects.filter(tenant=acme).values_list("user__email", "role"))
    # Same data keys, wrapped for the new tenant; the copied files were re-sealed for its schema.
    assert set(ciphertexts(acme2)) == set(ciphertexts(acme))
    assert set(ciphertexts(acme2).values()).isdisjoint(ciphertexts(acme).values())
    assert "intact" in run("verify_audit", "--tenant", "acme2")
    copied = AuditEvent.objects.filter(tenant_id=acme2.id).order_by("seq")
    assert copied.first().tenant_slug == "acme"
    assert copied.filter(action="tenant.restored", tenant_slug="acme2").count() == 1
    assert globex_state(globex) == before["globex"]


@pytest.fixture
def globex_archive(committed, tmp_path):
    world = factories.world()
    upload_dataset(factories.token_client(world.charlie, world.globex), churn_csv(40), name="Small")
    path = tmp_path / "globex.tar"
    run("backup_tenant", "--slug", "globex", "--out", str(path))
    return path


def rewrite(source: Path, target: Path, change) -> None:
    """A copy of the archive with one member's bytes changed (the manifest left as signed)."""
    with tarfile.open(source) as old, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()
            data = change(member.name, data)
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))


def resigned(source: Path, target: Path, change_public) -> None:
    """What a newer version of the platform would write: public.json changed, manifest re-signed."""
    from tenants.crypto import signing

    def change(name, data):
        if name == "public.json":
            return json.dumps(change_public(json.loads(data))).encode()
        return data

    rewrite(source, target, change)
    with tarfile.open(target) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    manifest = json.loads(members["manifest.json"])
    manifest["members"]["public.json"] = {"size": len(members["public.json"]),
                                          "sha256": hashlib.sha256(members["public.json"]).hexdigest()}
    manifest["signature"] = signing.sign(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(target, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_an_archive_from_a_newer_version_is_refused_naming_what_is_missing(globex_archive, tmp_path):
    def newer_migration(public):
        public["schema"]["migrations"].append(["mlcore", "9999_from_the_future"])
        return public

    def newer_column(public):
        public["schema"]["tables"]["mlcore_dataset"].append("colour")
        return public

    resigned(globex_archive, tmp_path / "migration.tar", newer_migration)
    assert "mlcore.9999_from_the_future is not applied here" in refused(
        "restore_tenant", "--in", str(tmp_path / "migration.tar"), "--as", "globex2")
    resigned(globex_archive, tmp_path / "column.tar", newer_column)
    assert "mlcore_dataset has column(s) colour" in refused(
        "restore_tenant", "--in", str(tmp_path / "column.tar"), "--as", "globex2")
    assert not Tenant.objects.filter(slug="globex2").exists() and leftovers() == []


def test_a_tampered_archive_is_refused_before_anything_is_written(globex_archive, tmp_path):
    tampered = tmp_path / "tampered.tar"
    rewrite(globex_archive, tampered,
            lambda name, data: data.replace(b'"role": "admin"', b'"role": "viewer"') if name == "public.json" else data)
    count = Tenant.objects.count()
    message = refused("restore_tenant", "--in", str(tampered), "--as", "globex2")
    assert "public.json" in message and "altered" in message
    forged = tmp_path / "forged.tar"
    rewrite(globex_archive, forged,
            lambda name, data: data.replace(b'"slug": "globex"', b'"slug": "globe2"') if name == "manifest.json" else data)
    assert "signature" in refused("restore_tenant", "--in", str(forged), "--as", "globex2")
    assert Tenant.objects.count() == count and leftovers() == []


def test_a_truncated_archive_is_refused(globex_archive, tmp_path):
    cut = tmp_path / "cut.tar"
    data = globex_archive.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    message = refused("restore_tenant", "--in", str(cut))
    assert "truncated" in message or "damaged" in message
    assert leftovers() == []


def test_without_the_master_key_nothing_is_restored_and_the_key_is_named(globex_archive, settings):
    globex = Tenant.objects.get(slug="globex")
    wrapping = TenantKey.objects.get(tenant=globex, version=1).master_key_id
    settings.PORTAL_MASTER_KEYS = [base64.b64encode(os.urandom(32)).decode()]
    count = Tenant.objects.count()
    message = refused("restore_tenant", "--in", str(globex_archive), "--as", "globex2")
    assert f"Master key {wrapping} is not configured" in message
    message = refused("restore_tenant", "--in", str(globex_archive))
    assert wrapping in message
    assert Tenant.objects.count() == count and leftovers() == []


def test_bad_slugs_missing_files_and_other_tenants_are_refused_with_one_line(globex_archive, tmp_path):
    assert "No tenant with the slug 'nobody'" in refused("backup_tenant", "--slug", "nobody", "--out",
                                                         str(tmp_path / "x.tar"))
    assert "exists already" in refused("backup_tenant", "--slug", "globex", "--out", str(globex_archive))
    assert "No archive" in refused("restore_tenant", "--in", str(tmp_path / "missing.tar"))
    assert "not the one this archive was taken from" in refused("restore_tenant", "--in", str(globex_archive),
                                                                 "--as", "acme")
    assert "reserved" in refused("restore_tenant", "--in", str(globex_archive), "--as", "admin")
    assert "lower-case" in refused("restore_tenant", "--in", str(globex_archive), "--as", "Bad_Slug")
    globex = Tenant.objects.get(slug="globex")
    JobTicket.objects.create(tenant=globex, job_id=999_999, kind="training", queue="training")
    assert "1 job(s) queued or running" in refused("restore_tenant", "--in", str(globex_archive))
    not_tar = tmp_path / "notes.txt"
    not_tar.write_text(json.dumps({"hello": "world"}))
    assert "not a readable tenant backup" in refused("restore_tenant", "--in", str(not_tar))
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "x.tar.part").exists()


# --- a whole installation: pg_dump + storage + escrowed keys, onto an empty one -----------------
# Run in the other installation (one Django start-up): read a dataset through the app, then move one
# tenant into it from its archive and read it back, printing one JSON line.
IN_THE_OTHER_INSTALLATION = """
import hashlib, io, json, sys
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from tenants.models import Tenant, User
from tests.factories import bind_session, host

def read(slug, email, dataset_id):
    tenant, user = Tenant.objects.get(slug=slug), User.objects.get(email=email)
    response = bind_session(Client(HTTP_HOST=host(slug)), user, tenant).get(f"/api/v1/datasets/{dataset_id}/download/")
    assert response.status_code == 200, response.status_code
    return hashlib.sha256(b"".join(response.streaming_content)).hexdigest()

def command(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()

acme_id, globex_id, archive = sys.argv[1], sys.argv[2], sys.argv[3]
found = {"acme": read("acme", "bob@acme.test", acme_id)}
command("delete_tenant", "--slug", "globex", "--yes")
found["restore"] = command("restore_tenant", "--in", archive)
found["verify"] = command("verify_audit", "--tenant", "globex")
found["globex"] = read("globex", "charlie@globex.test", globex_id)
print(json.dumps(found))
"""


def pg_tool(name: str) -> str:
    """The PostgreSQL client of the server's major version if installed, else the one next to the
    pg_dump the project uses (PORTAL_PG_DUMP, pgserver's, the system's)."""
    from django.db import connection

    from tenants.schema_template import _pg_dump

    matching = Path(f"/usr/lib/postgresql/{connection.pg_version // 10000}/bin/{name}")
    return str(matching) if matching.exists() else str(Path(_pg_dump()).parent / name)


def pg_args() -> list[str]:
    from django.db import connection

    db = connection.settings_dict
    args = ["-U", db.get("USER") or "postgres"]
    if db.get("HOST"):
        args += ["-h", db["HOST"]]
    if db.get("PORT"):
        args += ["-p", str(db["PORT"])]
    return args


@pytest.fixture
def empty_database(committed):
    import uuid

    import psycopg

    from tests.servers import database_url

    name = f"portal_drill_{uuid.uuid4().hex[:8]}"
    admin = database_url().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name, database_url().rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_drill_a_whole_installation_restored_on_an_empty_one_reads_back_and_verifies(empty_database, tmp_path):
    import shutil
    import subprocess
    import sys
    import time

    from django.db import connection

    name, url = empty_database
    world = factories.world()
    bob, charlie = factories.token_client(world.bob, world.acme), factories.token_client(world.charlie, world.globex)
    acme_data = upload_dataset(bob, churn_csv(), filename="churn.csv", name="Churn")
    globex_data = upload_dataset(charlie, churn_csv(60, seed=4), filename="g.csv", name="G")
    run("verify_audit", "--tenant", "acme")  # signed checkpoints in the witness files, too
    tenant_archive = tmp_path / "globex.tar"
    run("backup_tenant", "--slug", "globex", "--out", str(tenant_archive))

    # 1. The backup: witness files, then the database with pg_dump, then the storage folder; keys apart.
    started = time.monotonic()
    witness_copy = tmp_path / "witness"
    shutil.copytree(settings.PORTAL_AUDIT_WITNESS_DIR, witness_copy)
    dump = tmp_path / "portal.dump"
    env = dict(os.environ, PGPASSWORD=connection.settings_dict.get("PASSWORD") or "")
    subprocess.run([pg_tool("pg_dump"), "-Fc", "-f", str(dump), *pg_args(), "-d", connection.settings_dict["NAME"]],
                   env=env, check=True, timeout=60)
    storage_copy = tmp_path / "storage"
    witness_root = Path(settings.PORTAL_AUDIT_WITNESS_DIR).relative_to(settings.PORTAL_STORAGE_DIR).parts[0]
    shutil.copytree(settings.PORTAL_STORAGE_DIR, storage_copy, ignore=shutil.ignore_patterns(witness_root))
    dumped = time.monotonic() - started
    escrow = {"PORTAL_MASTER_KEYS": ",".join(settings.PORTAL_MASTER_KEYS),
              "PORTAL_SIGNING_KEY": base64.b64encode(_signing_key_bytes()).decode()}

    # 2. The restore onto an empty database and storage folder, then the installation's own commands.
    started = time.monotonic()
    subprocess.run([pg_tool("pg_restore"), "--exit-on-error", *pg_args(), "-d", name, str(dump)],
                   env=env, check=True, timeout=60)
    print(f"\nwhole installation: pg_dump {dump.stat().st_size:,} bytes + storage and witness copies in "
          f"{dumped:.2f} s; pg_restore into an empty database in {time.monotonic() - started:.2f} s")
    other = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings.local", DATABASE_URL=url,
                 PORTAL_STORAGE_DIR=str(storage_copy), PORTAL_AUDIT_WITNESS_DIR=str(witness_copy),
                 PORTAL_CACHE_PREFIX=f"drill-{name}", **escrow)

    def in_other(*args):
        done = subprocess.run([sys.executable, *args], env=other, cwd=settings.BASE_DIR,
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "intact" in in_other("manage.py", "verify_audit", "--tenant", "acme")
    found = json.loads(in_other("-c", IN_THE_OTHER_INSTALLATION, str(acme_data["id"]), str(globex_data["id"]),
                                str(tenant_archive)).strip().splitlines()[-1])
    assert found["acme"] == acme_data["sha256"]
    # One tenant into that other installation: deleted there, restored from its archive.
    assert "restored as a new tenant" in found["restore"] and "intact" in found["verify"]
    assert found["globex"] == globex_data["sha256"]
    # ...and this installation never saw any of it.
    assert Tenant.objects.get(slug="globex").id == world.globex.id


def _signing_key_bytes() -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from tenants.crypto import signing

    return signing._private_key().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
