"""Helpers for the encrypted-storage tests: an empty storage folder per test, store/read shortcuts.

Database rows are rolled back after each test but files are not, so each storage test starts and
ends with an empty PORTAL_STORAGE_DIR (a key version rolled back with its test must not leave files
that name it).
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from mlcore import storage

SMALL_CHUNK = 1024  # makes multi-chunk objects cheap; one test per module uses the real size


@pytest.fixture
def empty_storage():
    root = Path(settings.PORTAL_STORAGE_DIR)
    shutil.rmtree(root, ignore_errors=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def store(tenant, data: bytes, *, kind: str = "datasets", chunk_size: int = SMALL_CHUNK,
          object_id=None) -> str:
    object_id = str(object_id or uuid.uuid4())
    with storage.EncryptedWriter(tenant, kind, object_id, chunk_size=chunk_size) as out:
        out.write(data)
        out.commit()
    return object_id


def read(tenant, object_id: str, *, kind: str = "datasets") -> bytes:
    with storage.open_object(tenant, kind, object_id) as reader:
        return reader.read()


def every_file() -> list[Path]:
    root = Path(settings.PORTAL_STORAGE_DIR)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
