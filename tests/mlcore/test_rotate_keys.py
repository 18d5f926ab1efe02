"""`manage.py rotate_keys`: master keys re-wrapped, files re-encrypted, nothing lost meanwhile."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mlcore import storage
from mlcore.storage import rotation
from tenants.crypto import keys
from tenants.models import AuditEvent, TenantKey
from tests.mlcore.storage_support import (
    empty_storage,  # noqa: F401 - fixture
    every_file,
    new_master_key,
    read,
    store,
)

pytestmark = pytest.mark.usefixtures("empty_storage")


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=out)
    return out.getvalue()


def some_objects(tenant) -> dict[tuple[str, str], bytes]:
    """Objects of every kind and shape: empty, one chunk, several chunks (real chunk size too)."""
    contents = {
        "datasets": [b"", b"a,b\n1,2\n", os.urandom(5000)],
        "models": [os.urandom(storage.CHUNK_SIZE + 10)],
        "predictions": [b"row,prediction\n1,yes\n" * 300],
    }
    return {(kind, store(tenant, data, kind=kind, chunk_size=1024 if len(data) < 10_000
                         else storage.CHUNK_SIZE)): data
            for kind, items in contents.items() for data in items}


def assert_all_read_back(tenant, objects: dict[tuple[str, str], bytes]) -> None:
    for (kind, object_id), data in objects.items():
        assert read(tenant, object_id, kind=kind) == data


def test_a_new_master_key_rewraps_every_data_key_and_every_file_still_reads(settings, acme, globex):
    acme_objects, globex_objects = some_objects(acme), some_objects(globex)
    stale = TenantKey.objects.count()
    new = new_master_key()
    settings.PORTAL_MASTER_KEYS = [new, *settings.PORTAL_MASTER_KEYS]

    report = rotate()

    newest = keys.newest_master_key().id
    assert f"Master key {newest}: {stale} data key(s) re-wrapped" in report
    assert "acme: before v1=5; after v1=5" in report
    assert "globex: before v1=5; after v1=5" in report
    assert set(TenantKey.objects.values_list("master_key_id", flat=True)) == {newest}
    settings.PORTAL_MASTER_KEYS = [new]  # rotation done: the old master key may go
    keys.forget_cached_keys()
    assert_all_read_back(acme, acme_objects)
    assert_all_read_back(globex, globex_objects)
    assert f"Master key {newest}: 0 data key(s) re-wrapped" in rotate()


def test_reencrypt_moves_every_object_of_a_tenant_to_a_new_data_key(acme, globex):
    acme_objects, globex_objects = some_objects(acme), some_objects(globex)

    report = rotate("--reencrypt", "--tenant", "acme")

    assert "acme: before v1=5; after v2=5 (data key v2, 5 object(s) re-encrypted)" in report
    assert "globex" not in report
    assert {info.key_version for info in storage.iter_objects(acme)} == {2}
    assert {info.key_version for info in storage.iter_objects(globex)} == {1}
    assert_all_read_back(acme, acme_objects)
    assert_all_read_back(globex, globex_objects)
    versions = {row.version: row.retired_at for row in TenantKey.objects.filter(tenant=acme)}
    assert versions[1] is not None and versions[2] is None
    assert not [path for path in every_file() if path.name.endswith(".part")]


def test_rotating_master_and_data_keys_together_leaves_everything_on_the_newest(settings, acme, globex):
    objects = {acme: some_objects(acme), globex: some_objects(globex)}
    new = new_master_key()
    settings.PORTAL_MASTER_KEYS = [new, *settings.PORTAL_MASTER_KEYS]

    report = rotate("--reencrypt")

    settings.PORTAL_MASTER_KEYS = [new]
    keys.forget_cached_keys()
    for tenant, tenant_objects in objects.items():
        assert f"{tenant.slug}: before v1=5; after v2=5" in report
        assert_all_read_back(tenant, tenant_objects)
        assert storage.count_by_key_version(tenant) == {2: 5}
    assert set(TenantKey.objects.values_list("master_key_id", flat=True)) == {keys.newest_master_key().id}


def test_reencrypting_again_moves_on_to_the_next_version(acme):
    objects = some_objects(acme)
    rotate("--reencrypt", "--tenant", "acme")
    report = rotate("--reencrypt", "--tenant", "acme")
    assert "acme: before v2=5; after v3=5" in report
    assert_all_read_back(acme, objects)


def test_rotation_is_audited(acme, django_capture_on_commit_callbacks):
    some_objects(acme)
    with django_capture_on_commit_callbacks(execute=True):
        rotate("--reencrypt", "--tenant", "acme")
    entries = {e.details["operation"]: e.details
               for e in AuditEvent.objects.filter(tenant_id=acme.id, action="keys.rotate")}
    assert entries["new_data_key"]["version"] == 2
    assert entries["reencrypt"]["objects_rewritten"] == 5
    assert entries["reencrypt"]["before"] == {"v1": 5} and entries["reencrypt"]["after"] == {"v2": 5}


def test_a_reader_opened_before_reencryption_keeps_reading_the_old_file(acme):
    data = os.urandom(5000)
    object_id = store(acme, data)
    with storage.open_object(acme, "datasets", object_id) as reader:
        first = reader.read(100)
        rotate("--reencrypt", "--tenant", "acme")
        assert first + reader.read() == data
    assert storage.count_by_key_version(acme) == {2: 1}


def test_a_file_written_during_reencryption_ends_up_on_the_new_key(acme, monkeypatch):
    store(acme, b"before the rotation")
    late = storage.EncryptedWriter(acme, "datasets", "6f1c5a1e-0000-4000-8000-000000000001")
    late.write(b"started under v1, committed after the first pass listed the folder")
    real = rotation.reencrypt_object

    def commit_the_late_writer_first(*args, **kwargs):
        if not late.closed:
            late.commit()
        return real(*args, **kwargs)

    monkeypatch.setattr(rotation, "reencrypt_object", commit_the_late_writer_first)
    report = rotate("--reencrypt", "--tenant", "acme")

    assert "acme: before v1=1; after v2=2 (data key v2, 2 object(s) re-encrypted)" in report


def test_an_object_deleted_during_reencryption_is_not_brought_back(acme, monkeypatch):
    object_id = store(acme, os.urandom(3000))
    real_write = storage.EncryptedWriter.write

    def delete_then_write(writer, data):
        storage.delete_object(acme, "datasets", object_id)
        return real_write(writer, data)

    keys.new_key_version(acme)
    monkeypatch.setattr(storage.EncryptedWriter, "write", delete_then_write)

    assert storage.reencrypt_object(acme, "datasets", object_id) is False
    assert every_file() == []


def test_a_damaged_object_is_reported_and_the_others_are_still_rotated(acme):
    objects = some_objects(acme)
    damaged_kind, damaged_id = next(iter(objects))
    path = storage.object_path(acme, damaged_kind, damaged_id)
    path.write_bytes(path.read_bytes()[:-1])
    out = io.StringIO()

    with pytest.raises(CommandError, match="1 object\\(s\\) could not be re-encrypted"):
        call_command("rotate_keys", "--reencrypt", "--tenant", "acme", stdout=out, stderr=out)

    assert f"could not re-encrypt {damaged_kind}/{damaged_id}" in out.getvalue()
    assert "after v1=1, v2=4" in out.getvalue()
    del objects[(damaged_kind, damaged_id)]
    assert_all_read_back(acme, objects)


def test_an_unknown_tenant_is_an_error(acme):
    with pytest.raises(CommandError, match="No tenant with the slug 'nope'"):
        rotate("--tenant", "nope")
