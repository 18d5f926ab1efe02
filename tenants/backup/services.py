"""Backing up one tenant into a signed archive (README "Backups and upgrades"; restore.py restores).

``tenant_backup`` reads the tenant's rows in one REPEATABLE READ snapshot (its schema table by table
with COPY, its public rows, its audit chain), then adds its encrypted files as stored and its
witness file, and signs the manifest.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from tenants.auditing import audit, witness
from tenants.backup import archive as archives
from tenants.backup import public_rows, tables
from tenants.errors import Conflict, ServiceError
from tenants.models import (
    AuditEvent,
    Tenant,
)

logger = logging.getLogger(__name__)

# The audit entry's columns in the archive (its id and tenant id are this installation's).
AUDIT_COLUMNS = ("seq", "ts", "tenant_slug", "actor_id", "actor_email", "role", "auth_method",
                 "source_ip", "user_agent", "action", "object_type", "object_id", "outcome",
                 "request_id", "details", "prev_hash", "hash")
FILE_RE = re.compile(r"^files/([a-z][a-z0-9_-]{0,39})/([0-9a-f-]{36})\.enc$")


# --- backup -------------------------------------------------------------------------------------
@dataclass
class BackupResult:
    path: Path
    sha256: str
    size: int
    files: int
    tables: int
    audit_entries: int
    seconds: float


def tenant_backup(*, tenant: Tenant, out) -> BackupResult:
    """Write one signed archive of the tenant to `out` (published only when complete)."""
    started = time.monotonic()
    out = Path(out)
    if tenant.is_public:
        raise ValidationError({"slug": "The public site is not a tenant: it cannot be backed up."})
    if out.exists():
        raise Conflict(f"{out} exists already; choose another file name.", field="out")
    if not out.parent.is_dir():
        raise ValidationError({"out": f"The folder {out.parent} does not exist."})
    connection.set_schema_to_public()
    audit.flush_pending(tenant_id=tenant.id)  # every access served so far is in the archived chain
    writer = archives.ArchiveWriter.open(out)
    try:
        with tempfile.TemporaryDirectory(prefix="tenant-backup-") as scratch, _links_folder() as folder:
            with _snapshot():
                links = _link_files(tenant, folder)  # the moment the snapshot was taken
                public = _write_rows(writer, tenant, Path(scratch))
            files = _write_files(writer, links)
        witness_file = witness.witness_path(tenant.id)
        if witness_file.exists():
            writer.add_file("witness/chain.jsonl", witness_file)
        manifest = writer.close({
            "created_at": audit.format_ts(timezone.now()),
            "tenant": {"id": tenant.id, "slug": tenant.slug, "schema": tenant.schema_name},
            "audit_head": public["audit_head"],
            "master_key_ids": sorted({k["master_key_id"] for k in public["keys"]}),
        })
    except BaseException:
        writer.abort()
        raise
    digest = archives.file_sha256(out)
    entries = (public["audit_head"] or {}).get("last_seq", 0)
    audit.record("tenant.backup", tenant=tenant, object_type="tenant", object_id=tenant.id,
                 details={"archive_sha256": digest, "members": len(manifest["members"]),
                          "files": files, "through_seq": entries, "by": os_user()})
    return BackupResult(path=out, sha256=digest, size=out.stat().st_size, files=files,
                        tables=len(public["schema"]["tables"]), audit_entries=entries,
                        seconds=time.monotonic() - started)


@contextmanager
def _snapshot():
    """One consistent view of every row read, taken when this returns. A command runs outside
    any transaction, where the session's default isolation can be set before the transaction opens
    (inside a test's own transaction it cannot, and need not)."""
    outside = not connection.in_atomic_block
    if outside:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")  # the snapshot is taken by the first statement
            yield
    finally:
        if outside:
            with connection.cursor() as cursor:
                cursor.execute("RESET default_transaction_isolation")


def _write_rows(writer: archives.ArchiveWriter, tenant: Tenant, scratch: Path) -> dict:
    schema = tenant.schema_name
    columns = tables.table_columns(schema)
    references = tables.public_references(schema)
    unknown = sorted({target for _, _, target in references} - set(tables.PUBLIC_TARGETS))
    if unknown:
        raise ServiceError(f"Tenant tables point at the public table {unknown[0]}, which backups do "
                           "not cover yet.", code="backup_unsupported")
    data_tables = {name: cols for name, cols in columns.items() if name != "django_migrations"}
    for name, cols in sorted(data_tables.items()):
        _add_copy(writer, f"schema/{name}.copy", scratch,
                  lambda sink, n=name, c=cols: tables.copy_out(schema, n, c, sink))
    _add_copy(writer, "audit/entries.copy", scratch, lambda sink: _audit_out(tenant.id, sink))
    ids = tables.referenced_ids(schema, references)
    public = public_rows.export(tenant, user_ids=ids.get(tables.USER_TABLE, set()))
    public["schema"] = {
        "tables": data_tables, "references": references, "migrations": applied_migrations(schema),
        "permissions": {str(p.id): [p.content_type.app_label, p.content_type.model, p.codename]
                        for p in Permission.objects.filter(id__in=ids.get("auth_permission", ()))
                        .select_related("content_type")},
        "content_types": {str(c.id): [c.app_label, c.model]
                          for c in ContentType.objects.filter(id__in=ids.get("django_content_type", ()))},
        "groups": {str(g.id): g.name for g in Group.objects.filter(id__in=ids.get("auth_group", ()))},
    }
    writer.add_bytes("public.json", json.dumps(public, indent=1, sort_keys=True).encode())
    return public


def _add_copy(writer, name: str, scratch: Path, produce) -> None:
    path = scratch / name.replace("/", "__")
    with open(path, "wb") as sink:
        produce(sink)
    writer.add_file(name, path)
    path.unlink()


def _audit_out(tenant_id: int, sink) -> None:
    cols = ", ".join(AUDIT_COLUMNS)
    sql = (f"COPY (SELECT {cols} FROM {AuditEvent._meta.db_table} WHERE tenant_id = %s "  # noqa: S608
           "ORDER BY seq) TO STDOUT")
    with connection.cursor() as cursor, cursor.cursor.copy(sql, [tenant_id]) as copy:
        for block in copy:
            sink.write(block)


def applied_migrations(schema: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations ORDER BY id')  # noqa: S608
        return [list(row) for row in cursor.fetchall()]


@contextmanager
def _links_folder():
    """A folder beside the tenant folders (same file system: hard links), removed afterwards."""
    folder = storage_root() / f".backup-{secrets.token_hex(6)}"
    folder.mkdir(mode=0o700, parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _link_files(tenant: Tenant, folder: Path) -> list[Path]:
    """Hard links to every committed object of the tenant, made right after the rows' snapshot
    was taken: a file deleted while the tables are copied (its row gone after the snapshot) is
    still in the archive. `.part` files are uploads in flight: not data yet."""
    root = storage_root() / tenant.schema_name
    links = []
    for path in sorted(root.glob("*/*.enc")) if root.is_dir() else ():
        if not FILE_RE.match(f"files/{path.parent.name}/{path.name}"):
            continue
        link = folder / f"{path.parent.name}--{path.name}"
        try:
            os.link(path, link)
        except FileNotFoundError:
            continue  # deleted just now, before the snapshot: so is its row
        links.append(link)
    return links


def _write_files(writer: archives.ArchiveWriter, links: list[Path]) -> int:
    for link in links:
        kind, name = link.name.split("--", 1)
        writer.add_file(f"files/{kind}/{name}", link)
    return len(links)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def storage_root() -> Path:
    return Path(settings.PORTAL_STORAGE_DIR)
