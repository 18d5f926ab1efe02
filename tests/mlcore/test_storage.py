"""The encrypted object store: round trips, random access, integrity, isolation between tenants."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import random
import shutil
import stat
import uuid

import pytest

from mlcore import storage
from mlcore.storage.objects import HEADER, TAG_BYTES, WRITEBACK_BYTES
from tenants.crypto import keys
from tests.mlcore.storage_support import (
    SMALL_CHUNK,
    empty_storage,  # noqa: F401 - fixture
    every_file,
    new_master_key,
    read,
    store,
)

pytestmark = pytest.mark.usefixtures("empty_storage")

RECORD = SMALL_CHUNK + TAG_BYTES
INTEGRITY = r"The stored file for dataset {id} failed its integrity check \(.+\): it was altered or corrupted\."


def integrity_error(object_id: str) -> str:
    return INTEGRITY.format(id=object_id)


# --- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, SMALL_CHUNK - 1, SMALL_CHUNK, SMALL_CHUNK + 1,
                                  3 * SMALL_CHUNK, 3 * SMALL_CHUNK + 7])
def test_objects_of_any_size_read_back_exactly(acme, size):
    data = os.urandom(size)
    object_id = store(acme, data)
    assert read(acme, object_id) == data


@pytest.mark.parametrize("size", [0, storage.CHUNK_SIZE, 2 * storage.CHUNK_SIZE + 12345])
def test_objects_in_real_one_mib_chunks_read_back_exactly(acme, size):
    data = os.urandom(size)
    object_id = store(acme, data, chunk_size=storage.CHUNK_SIZE)
    assert read(acme, object_id) == data
    expected_chunks = max(1, -(-size // storage.CHUNK_SIZE))
    path = storage.object_path(acme, "datasets", object_id)
    assert path.stat().st_size == HEADER.size + size + expected_chunks * TAG_BYTES


def test_many_small_writes_give_the_same_object_as_one_big_write(acme):
    data = os.urandom(5 * SMALL_CHUNK + 3)
    object_id = str(uuid.uuid4())
    with storage.EncryptedWriter(acme, "models", object_id, chunk_size=SMALL_CHUNK) as out:
        for start in range(0, len(data), 37):
            out.write(data[start:start + 37])
        stored = out.commit()
    assert read(acme, object_id, kind="models") == data
    assert stored.plaintext_bytes == len(data)


def test_a_stored_object_reports_its_size_hash_and_key_version(acme):
    data = b"a,b\n1,2\n" * 1000
    object_id = str(uuid.uuid4())
    with storage.EncryptedWriter(acme, "datasets", object_id) as out:
        out.write(data)
        stored = out.commit()
    assert stored.plaintext_bytes == len(data)
    assert stored.sha256_hex == hashlib.sha256(data).hexdigest()
    assert stored.key_version == keys.current_data_key(acme)[0]
    assert stored.path == storage.object_path(acme, "datasets", object_id)
    assert storage.verify_object(acme, "datasets", object_id) == stored


def test_seek_and_read_return_any_range(acme):
    data = os.urandom(5 * SMALL_CHUNK + 3)
    object_id = store(acme, data)
    rng = random.Random(7)
    ranges = [(0, 10), (SMALL_CHUNK - 5, 10), (SMALL_CHUNK, SMALL_CHUNK), (100, 4 * SMALL_CHUNK),
              (len(data) - 1, 10), (len(data), 10), (len(data) + 50, 10)]
    ranges += [(rng.randrange(len(data)), rng.randrange(1, 3000)) for _ in range(50)]
    with storage.open_object(acme, "datasets", object_id) as reader:
        assert reader.seekable() and reader.readable()
        for start, length in ranges:
            assert reader.seek(start) == start
            assert reader.read(length) == data[start:start + length]
        assert reader.seek(-10, io.SEEK_END) == len(data) - 10
        assert reader.read() == data[-10:]
        reader.seek(5)
        reader.seek(20, io.SEEK_CUR)
        assert reader.tell() == 25
        assert reader.read(3) == data[25:28]


def test_readinto_fills_a_large_buffer_across_chunks(acme):
    data = os.urandom(4 * SMALL_CHUNK + 100)
    object_id = store(acme, data)
    buffer = bytearray(len(data) + 500)
    with storage.open_object(acme, "datasets", object_id) as reader:
        assert reader.readinto(buffer) == len(data)
        assert reader.readinto(buffer) == 0
    assert bytes(buffer[:len(data)]) == data


def test_the_reader_works_behind_a_buffered_reader_and_pyarrow(acme):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"n": list(range(20_000)), "s": [f"row {i}" for i in range(20_000)]})
    object_id = str(uuid.uuid4())
    with storage.EncryptedWriter(acme, "datasets", object_id, chunk_size=4096) as out:
        pq.write_table(table, out)
        out.commit()
    with storage.open_object(acme, "datasets", object_id) as reader:
        assert pq.read_table(reader).equals(table)
    with io.BufferedReader(storage.open_object(acme, "datasets", object_id)) as buffered:
        assert buffered.read(4) == b"PAR1"


def test_the_reader_never_exposes_its_ciphertext_descriptor(acme):
    object_id = store(acme, b"secret")
    with storage.open_object(acme, "datasets", object_id) as reader:
        with pytest.raises(io.UnsupportedOperation):
            reader.fileno()


# --- nothing in the clear -----------------------------------------------------------------------
def test_a_canary_written_to_an_object_is_nowhere_in_the_storage_folder(acme):
    canary = b"CANARY-7f3a9c1e-do-not-leak"
    data = b"id,comment\n" + b"".join(b"%d,%s\n" % (i, canary) for i in range(5000))
    object_id = store(acme, data, chunk_size=storage.CHUNK_SIZE)
    files = every_file()
    assert files == [storage.object_path(acme, "datasets", object_id)]
    for path in files:
        content = path.read_bytes()
        assert canary not in content
        assert canary[:12] not in content
    assert canary in read(acme, object_id)


def test_files_and_folders_are_private(acme):
    object_id = store(acme, b"x")
    path = storage.object_path(acme, "datasets", object_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


# --- writers ------------------------------------------------------------------------------------
def test_nothing_is_published_before_commit(acme):
    object_id = str(uuid.uuid4())
    out = storage.EncryptedWriter(acme, "datasets", object_id)
    out.write(b"half an upload")
    files = every_file()
    assert len(files) == 1 and files[0].name.endswith(".part")
    out.abort()
    assert every_file() == []
    with pytest.raises(storage.ObjectMissing, match=f"dataset {object_id} is missing"):
        storage.open_object(acme, "datasets", object_id)


def test_an_error_inside_the_writer_block_removes_the_partial_file(acme):
    with pytest.raises(RuntimeError, match="boom"):
        with storage.EncryptedWriter(acme, "datasets", uuid.uuid4()) as out:
            out.write(os.urandom(3 * storage.CHUNK_SIZE))
            raise RuntimeError("boom")
    assert every_file() == []


def test_a_writer_dropped_without_commit_leaves_no_file(acme):
    out = storage.EncryptedWriter(acme, "datasets", uuid.uuid4())
    out.write(b"abandoned")
    del out
    gc.collect()
    assert every_file() == []


def test_an_object_is_never_overwritten(acme):
    object_id = store(acme, b"first")
    with pytest.raises(storage.ObjectExists, match="already stored"):
        store(acme, b"second", object_id=object_id)
    assert read(acme, object_id) == b"first"
    assert len(every_file()) == 1


def test_object_names_cannot_leave_the_tenant_folder(acme):
    with pytest.raises(ValueError, match="UUID"):
        storage.object_path(acme, "datasets", "../../globex/datasets/x")
    with pytest.raises(ValueError, match="kind"):
        storage.object_path(acme, "../models", uuid.uuid4())


def test_deleting_an_object_removes_its_file(acme):
    object_id = store(acme, b"gone soon")
    assert storage.delete_object(acme, "datasets", object_id) is True
    assert storage.delete_object(acme, "datasets", object_id) is False
    assert every_file() == []


def test_iter_objects_lists_kind_id_and_key_version_from_headers(acme, globex):
    ids = {store(acme, b"d", kind="datasets"), store(acme, b"m", kind="models")}
    store(globex, b"other tenant")
    (storage.object_path(acme, "datasets", uuid.uuid4()).parent / "junk.txt").write_bytes(b"x")
    version = keys.current_data_key(acme)[0]
    listed = set(storage.iter_objects(acme))
    assert {(info.object_id, info.key_version) for info in listed} == {(i, version) for i in ids}
    assert {info.kind for info in listed} == {"datasets", "models"}
    assert storage.count_by_key_version(acme) == {version: 2}


@pytest.mark.parametrize("size", [0, 1, SMALL_CHUNK, 7 * SMALL_CHUNK + 5])
def test_a_background_writer_stores_the_same_bytes_and_hash(acme, size):
    data = os.urandom(size)
    object_id = str(uuid.uuid4())
    with storage.EncryptedWriter(acme, "datasets", object_id, chunk_size=SMALL_CHUNK,
                                 background=True) as out:
        for start in range(0, len(data), 1000):
            out.write(data[start:start + 1000])
        stored = out.commit()
    assert read(acme, object_id) == data
    assert stored.sha256_hex == hashlib.sha256(data).hexdigest()
    assert stored.plaintext_bytes == size
    assert not _flush_threads()


def test_a_background_writer_that_starts_writeback_on_the_way_stores_the_same_bytes(acme):
    data = os.urandom(3 * WRITEBACK_BYTES + 12_345)  # writeback starts three times
    object_id = str(uuid.uuid4())
    with storage.EncryptedWriter(acme, "datasets", object_id, background=True) as out:
        for start in range(0, len(data), 256 * 1024):
            out.write(data[start:start + 256 * 1024])
        stored = out.commit()
    assert read(acme, object_id) == data
    assert stored.sha256_hex == hashlib.sha256(data).hexdigest()
    assert not _flush_threads()


def test_a_disk_error_on_the_background_thread_fails_the_commit_and_leaves_no_file(acme, monkeypatch):
    from mlcore.storage import objects

    real_write = objects._write_all
    writes = []

    def full_disk(fd, data):
        writes.append(len(data))
        if len(writes) > 3:  # the header and two chunks fit
            raise OSError(28, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(objects, "_write_all", full_disk)
    object_id = str(uuid.uuid4())
    with pytest.raises(OSError, match="No space left on device"):
        with storage.EncryptedWriter(acme, "datasets", object_id, chunk_size=SMALL_CHUNK,
                                     background=True) as out:
            for _ in range(20):
                out.write(os.urandom(SMALL_CHUNK))
            out.commit()
    assert every_file() == []
    assert not _flush_threads()


def test_a_background_writer_aborted_or_dropped_leaves_no_file_and_no_thread(acme):
    aborted = storage.EncryptedWriter(acme, "datasets", uuid.uuid4(), chunk_size=SMALL_CHUNK,
                                      background=True)
    aborted.write(os.urandom(5 * SMALL_CHUNK))
    aborted.abort()
    dropped = storage.EncryptedWriter(acme, "datasets", uuid.uuid4(), chunk_size=SMALL_CHUNK,
                                      background=True)
    dropped.write(os.urandom(5 * SMALL_CHUNK))
    del dropped
    gc.collect()
    assert every_file() == []
    assert not _flush_threads()


def _flush_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "storage-flush"]


# --- integrity ----------------------------------------------------------------------------------
def _three_and_a_half_chunks(tenant) -> tuple[str, bytes]:
    data = os.urandom(3 * SMALL_CHUNK + 500)
    return store(tenant, data), data


def _flip(path, position: int) -> None:
    content = bytearray(path.read_bytes())
    content[position] ^= 0xFF
    path.write_bytes(bytes(content))


@pytest.mark.parametrize("position", list(range(HEADER.size)))
def test_flipping_any_header_byte_gives_an_integrity_error(acme, position):
    object_id, _ = _three_and_a_half_chunks(acme)
    _flip(storage.object_path(acme, "datasets", object_id), position)
    with pytest.raises(storage.StorageIntegrityError, match=integrity_error(object_id)):
        storage.verify_object(acme, "datasets", object_id)


@pytest.mark.parametrize(("offset", "chunk"), [
    (HEADER.size, "chunk 1 of 4"),
    (HEADER.size + RECORD + 100, "chunk 2 of 4"),
    (HEADER.size + 2 * RECORD - 1, "chunk 2 of 4"),  # the tag
    (HEADER.size + 3 * RECORD + 10, "chunk 4 of 4"),
    (-1, "chunk 4 of 4"),
])
def test_flipping_one_byte_of_a_chunk_names_the_chunk(acme, offset, chunk):
    object_id, _ = _three_and_a_half_chunks(acme)
    path = storage.object_path(acme, "datasets", object_id)
    _flip(path, offset if offset >= 0 else path.stat().st_size + offset)
    with pytest.raises(storage.StorageIntegrityError, match=integrity_error(object_id)) as error:
        storage.verify_object(acme, "datasets", object_id)
    assert f"({chunk})" in str(error.value)


def test_a_damaged_middle_chunk_still_lets_earlier_bytes_be_read(acme):
    object_id, data = _three_and_a_half_chunks(acme)
    _flip(storage.object_path(acme, "datasets", object_id), HEADER.size + RECORD + 5)
    with storage.open_object(acme, "datasets", object_id) as reader:
        assert reader.read(SMALL_CHUNK) == data[:SMALL_CHUNK]
        with pytest.raises(storage.StorageIntegrityError, match=r"\(chunk 2 of 4\)"):
            reader.read(10)


@pytest.mark.parametrize("keep", [0, 10, HEADER.size, HEADER.size + 2 * RECORD,
                                  HEADER.size + 3 * RECORD, HEADER.size + 3 * RECORD + 8, -1])
def test_a_truncated_file_gives_an_integrity_error(acme, keep):
    object_id, _ = _three_and_a_half_chunks(acme)
    path = storage.object_path(acme, "datasets", object_id)
    content = path.read_bytes()
    path.write_bytes(content[:keep] if keep >= 0 else content[:keep])
    with pytest.raises(storage.StorageIntegrityError, match=integrity_error(object_id)):
        storage.verify_object(acme, "datasets", object_id)


def test_appending_a_chunk_gives_an_integrity_error(acme):
    object_id = store(acme, os.urandom(2 * SMALL_CHUNK))
    path = storage.object_path(acme, "datasets", object_id)
    content = path.read_bytes()
    path.write_bytes(content + content[HEADER.size:HEADER.size + RECORD])
    with pytest.raises(storage.StorageIntegrityError, match=integrity_error(object_id)):
        storage.verify_object(acme, "datasets", object_id)


def test_swapping_two_chunks_gives_an_integrity_error(acme):
    object_id, _ = _three_and_a_half_chunks(acme)
    path = storage.object_path(acme, "datasets", object_id)
    content = path.read_bytes()
    first = slice(HEADER.size, HEADER.size + RECORD)
    second = slice(HEADER.size + RECORD, HEADER.size + 2 * RECORD)
    swapped = bytearray(content)
    swapped[first], swapped[second] = content[second], content[first]
    path.write_bytes(bytes(swapped))
    with pytest.raises(storage.StorageIntegrityError, match=r"\(chunk 1 of 4\)"):
        storage.verify_object(acme, "datasets", object_id)


def test_acmes_file_copied_over_a_globex_object_does_not_decrypt(acme, globex):
    acme_id = store(acme, b"acme's numbers " * 200)
    globex_id = store(globex, b"globex's numbers " * 200)
    shutil.copyfile(storage.object_path(acme, "datasets", acme_id),
                    storage.object_path(globex, "datasets", globex_id))
    with pytest.raises(storage.StorageIntegrityError, match=integrity_error(globex_id)):
        storage.verify_object(globex, "datasets", globex_id)


def test_a_file_copied_to_another_object_or_kind_does_not_decrypt(acme):
    first = store(acme, b"first " * 300)
    second = store(acme, b"second " * 300)
    shutil.copyfile(storage.object_path(acme, "datasets", first),
                    storage.object_path(acme, "datasets", second))
    with pytest.raises(storage.StorageIntegrityError, match=integrity_error(second)):
        storage.verify_object(acme, "datasets", second)
    model_path = storage.object_path(acme, "models", first)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(storage.object_path(acme, "datasets", first), model_path)
    with pytest.raises(storage.StorageIntegrityError, match=f"model {first} failed"):
        storage.verify_object(acme, "models", first)


# --- keys ---------------------------------------------------------------------------------------
def test_after_the_tenants_keys_are_destroyed_nothing_decrypts(acme, globex):
    object_id = store(acme, b"shred me")
    globex_id = store(globex, b"keep me")
    keys.destroy_tenant_keys(acme)
    with pytest.raises(storage.StorageKeyError,
                       match=f"dataset {object_id} cannot be decrypted: .*destroyed"):
        storage.open_object(acme, "datasets", object_id)
    assert read(globex, globex_id) == b"keep me"


def test_a_file_under_a_master_key_that_is_not_configured_cannot_be_read(acme, settings):
    object_id = store(acme, b"needs the old master key")
    settings.PORTAL_MASTER_KEYS = [new_master_key()]
    with pytest.raises(storage.StorageKeyError, match="is not configured in PORTAL_MASTER_KEYS"):
        storage.open_object(acme, "datasets", object_id)


def test_abandoned_partial_files_are_swept_after_an_hour(acme, settings):
    import os
    import time

    from mlcore import storage

    folder = settings.PORTAL_STORAGE_DIR / acme.schema_name / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    old, fresh = folder / "a.1234.part", folder / "b.5678.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert storage.sweep_partial_files() == 1
    assert not old.exists() and fresh.exists()
    fresh.unlink()
