"""Re-encrypting a tenant's objects under a new data-key version (`manage.py rotate_keys`)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field

from tenants.auditing import audit
from tenants.crypto import keys

from .objects import (
    CHUNK_SIZE,
    EncryptedWriter,
    ObjectInfo,
    ObjectMissing,
    StorageError,
    iter_objects,
    open_object,
)

logger = logging.getLogger(__name__)


def count_by_key_version(tenant) -> dict[int | None, int]:
    """How many objects are on each data-key version (None: unreadable header)."""
    return dict(sorted(Counter(info.key_version for info in iter_objects(tenant)).items(),
                       key=lambda item: (item[0] is None, item[0] or 0)))


def reencrypt_object(tenant, kind: str, object_id) -> bool:
    """Rewrite one object under the tenant's newest data key; False if it already was (or it was
    deleted meanwhile). Readers that opened the old file keep reading their open descriptor."""
    buffer = bytearray(CHUNK_SIZE)
    with open_object(tenant, kind, object_id) as reader:
        with EncryptedWriter(tenant, kind, object_id) as writer:
            if writer.key_version == reader.key_version:
                return False
            while count := reader.readinto(buffer):
                writer.write(memoryview(buffer)[:count])
            return writer._commit(replacing=os.fstat(reader._fd)) is not None


@dataclass
class ReencryptResult:
    version: int
    before: dict[int | None, int]
    after: dict[int | None, int]
    rewritten: int = 0
    failed: list[str] = field(default_factory=list)


def reencrypt_tenant(tenant, *, passes: int = 3) -> ReencryptResult:
    """New data-key version for the tenant, every object rewritten under it, older versions retired.

    Safe while the site serves: writers made after the new version exists use it, readers use the
    version in each file's header. A writer that took the old key just before the switch may
    commit after a pass has listed the folder, hence the further passes.
    """
    before = count_by_key_version(tenant)
    version = keys.new_key_version(tenant)
    result = ReencryptResult(version=version, before=before, after={})
    for _ in range(passes):
        stale = [info for info in iter_objects(tenant)
                 if info.key_version != version and f"{info.kind}/{info.object_id}" not in result.failed]
        if not stale:
            break
        for info in stale:
            result.rewritten += _reencrypt_one(tenant, info, result.failed)
    keys.retire_versions(tenant, below=version)
    result.after = count_by_key_version(tenant)
    audit.record("keys.rotate", tenant=tenant, object_type="tenant_key", object_id=version,
                 details={"operation": "reencrypt", "version": version,
                          "objects_rewritten": result.rewritten, "objects_failed": len(result.failed),
                          "before": _json_counts(before), "after": _json_counts(result.after)})
    return result


def _reencrypt_one(tenant, info: ObjectInfo, failed: list[str]) -> int:
    try:
        return int(reencrypt_object(tenant, info.kind, info.object_id))
    except ObjectMissing:
        return 0
    except StorageError as exc:
        # One damaged file must not stop the rotation of all the others; it is reported.
        logger.warning("re-encryption failed", extra={"tenant": tenant.slug, "kind": info.kind,
                                                      "object_id": info.object_id, "error": str(exc)})
        failed.append(f"{info.kind}/{info.object_id}")
        return 0


def _json_counts(counts: dict[int | None, int]) -> dict[str, int]:
    return {("unreadable" if version is None else f"v{version}"): n for version, n in counts.items()}
