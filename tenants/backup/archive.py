"""The backup archive: one tar file, its members listed with their SHA-256 in a signed manifest.

Layout (uncompressed tar: the tenant's files are ciphertext and do not compress)::

    public.json             the tenant's public-schema rows and the people they name
    schema/<table>.copy     each table of the tenant schema, PostgreSQL COPY text format
    audit/entries.copy      the tenant's audit chain, COPY text format, in sequence order
    files/<kind>/<id>.enc   the tenant's encrypted objects, byte for byte as stored
    witness/chain.jsonl     the chain's signed checkpoints (PORTAL_AUDIT_WITNESS_DIR)
    manifest.json           written last: format, tenant, every member's size and SHA-256,
                            signed with the platform's Ed25519 key (tenants/crypto/signing.py)

Reading checks everything before anything is used: the manifest's signature, then that the tar
holds exactly the listed members with those sizes and digests. A truncated or edited archive is
refused with one sentence (ArchiveInvalid).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tenants.crypto import signing
from tenants.errors import ServiceError

FORMAT = "ml-portal-tenant-backup"
VERSION = 1
MANIFEST = "manifest.json"
BLOCK = 1024 * 1024


class ArchiveInvalid(ServiceError):
    code = "backup_invalid"


@dataclass
class ArchiveWriter:
    """Adds members to a tar being written to `path` + ".part"; `close` signs and publishes it."""

    path: Path
    members: dict
    _tar: tarfile.TarFile
    _part: Path

    @classmethod
    def open(cls, path: Path) -> ArchiveWriter:
        part = path.with_name(path.name + ".part")
        return cls(path=path, members={}, _tar=tarfile.open(part, "w", format=tarfile.PAX_FORMAT),
                   _part=part)

    def add_bytes(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o600
        self._tar.addfile(info, io.BytesIO(data))
        self.members[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def add_file(self, name: str, source: Path) -> None:
        """Copies the file as it is; digest and size are of the bytes actually written."""
        with open(source, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            digest = _HashingReader(handle)
            info = tarfile.TarInfo(name)
            info.size, info.mode = size, 0o600
            self._tar.addfile(info, digest)
        self.members[name] = {"size": size, "sha256": digest.hexdigest()}

    def close(self, manifest: dict) -> dict:
        """Sign the manifest (with every member's digest), write it last, fsync, publish."""
        body = {**manifest, "format": FORMAT, "version": VERSION, "members": self.members,
                "key_id": signing.key_id()}
        body["signature"] = signing.sign(body)
        data = json.dumps(body, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(data), 0o600
        self._tar.addfile(info, io.BytesIO(data))
        self._tar.close()
        with open(self._part, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self._part, self.path)
        return body

    def abort(self) -> None:
        self._tar.close()
        self._part.unlink(missing_ok=True)


class _HashingReader:
    def __init__(self, handle):
        self._handle = handle
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._digest.update(data)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


class ArchiveReader:
    """A verified archive: `manifest`, and members read by name. Use `verified_open(path)`."""

    def __init__(self, tar: tarfile.TarFile, manifest: dict, digest: str):
        self._tar = tar
        self.manifest = manifest
        self.digest = digest  # SHA-256 of the whole archive file, recorded in the audit entry

    def names(self, prefix: str) -> list[str]:
        return sorted(name for name in self.manifest["members"] if name.startswith(prefix))

    def read(self, name: str) -> bytes:
        return self._tar.extractfile(name).read()

    def stream(self, name: str):
        return self._tar.extractfile(name)

    def close(self) -> None:
        self._tar.close()


def verified_open(path) -> ArchiveReader:
    """Open and check an archive completely (signature, member list, sizes, digests)."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveInvalid(f"No archive at {path}.", field="in")
    try:
        tar = tarfile.open(path, "r:")
        entries = {member.name: member for member in tar.getmembers()}
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveInvalid(f"{path.name} is not a readable tenant backup (truncated or damaged: {exc}).")
    try:
        manifest = _manifest(tar, entries, path)
        _check_members(tar, entries, manifest, path)
    except BaseException:
        tar.close()
        raise
    return ArchiveReader(tar, manifest, file_sha256(path))


def _manifest(tar: tarfile.TarFile, entries: dict, path: Path) -> dict:
    if MANIFEST not in entries:
        raise ArchiveInvalid(f"{path.name} has no manifest: it is truncated or not a tenant backup.")
    try:
        manifest = json.loads(tar.extractfile(MANIFEST).read())
    except (ValueError, tarfile.TarError, OSError):
        raise ArchiveInvalid(f"The manifest of {path.name} is unreadable: the archive is damaged.")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveInvalid(f"{path.name} is not a tenant backup of this platform.")
    if manifest.get("version") != VERSION:
        raise ArchiveInvalid(f"{path.name} is a version {manifest.get('version')} backup; "
                             f"this installation reads version {VERSION}.")
    if not signing.verify(manifest):
        raise ArchiveInvalid(
            f"The manifest signature of {path.name} does not verify with this installation's signing "
            f"key {signing.key_id()} (signed by {manifest.get('key_id') or 'unknown'}): the archive "
            "was altered, or PORTAL_SIGNING_KEY differs from the one that made it.")
    if not isinstance(manifest.get("members"), dict):
        raise ArchiveInvalid(f"The manifest of {path.name} lists no members.")
    return manifest


def _check_members(tar: tarfile.TarFile, entries: dict, manifest: dict, path: Path) -> None:
    listed = manifest["members"]
    extra = sorted(set(entries) - set(listed) - {MANIFEST})
    if extra:
        raise ArchiveInvalid(f"{path.name} holds {extra[0]}, which its signed manifest does not list.")
    for name, expected in sorted(listed.items()):
        member = entries.get(name)
        if member is None or not member.isfile():
            raise ArchiveInvalid(f"{path.name} lacks {name}, listed in its manifest: it is truncated.")
        if member.size != expected.get("size"):
            raise ArchiveInvalid(f"{name} in {path.name} has {member.size} bytes, the manifest says "
                                 f"{expected.get('size')}: the archive was altered.")
        digest = hashlib.sha256()
        try:
            handle = tar.extractfile(member)
            while block := handle.read(BLOCK):
                digest.update(block)
        except (tarfile.TarError, EOFError, OSError):
            raise ArchiveInvalid(f"{name} in {path.name} cannot be read: the archive is truncated.")
        if digest.hexdigest() != expected.get("sha256"):
            raise ArchiveInvalid(f"{name} in {path.name} does not match its SHA-256 in the signed "
                                 "manifest: the archive was altered.")
