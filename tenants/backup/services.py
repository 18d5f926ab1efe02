"""Backing up one tenant into a signed archive, and restoring it (README "Backups and upgrades").

``tenant_backup`` reads the tenant's rows in one REPEATABLE READ snapshot (its schema table by table
with COPY, its public rows, its audit chain), then adds its encrypted files as stored and its
witness file, and signs the manifest.

``tenant_restore`` checks the whole archive first, then either
- rolls the same tenant back in place (same id and schema, and its live audit chain holds the
  archive's last entry): tenant schema and public rows become the archive's, files are swapped in;
  the audit chain, its witness file and the daily metering are history and stay as they are (newer
  than the backup), with a ``tenant.restored`` entry appended; or
- creates a new tenant (``--as SLUG``, or another installation): a new id and schema, people
  matched by e-mail, data keys re-wrapped for the new id, files re-sealed for the new schema (the
  schema is bound into every chunk), and the audit chain copied as it was.
All database work is one transaction; the files are written to a staging folder beside the
storage and swapped in just before it commits, so a failure leaves the tenant as it was.
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
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from tenants.accounts import access
from tenants.auditing import audit, audit_chain, witness
from tenants.backup import archive as archives
from tenants.backup import public_rows, tables
from tenants.crypto import keys, signing
from tenants.errors import Conflict, ServiceError
from tenants.limits import gate
from tenants.models import (
    ApiToken,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    Domain,
    IdempotentRequest,
    JobTicket,
    Membership,
    Plan,
    Tenant,
    TenantKey,
    TenantUsage,
    UploadLease,
    UsageDaily,
)
from tenants.services import _new_schema_name, tenant_domain, validate_slug

logger = logging.getLogger(__name__)

# The audit entry's columns in the archive (its id and tenant id are this installation's).
AUDIT_COLUMNS = ("seq", "ts", "tenant_slug", "actor_id", "actor_email", "role", "auth_method",
                 "source_ip", "user_agent", "action", "object_type", "object_id", "outcome",
                 "request_id", "details", "prev_hash", "hash")
FILE_RE = re.compile(r"^files/([a-z][a-z0-9_-]{0,39})/([0-9a-f-]{36})\.enc$")

# reseal(source, target, *, kind, object_id, from_schema, to_schema, data_keys) rewrites one
# encrypted object for another schema; the file format belongs to mlcore.storage, which passes it.
Reseal = Callable[..., int]


class RestoreRefused(ServiceError):
    code = "restore_refused"


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
                          "files": files, "through_seq": entries, "by": _os_user()})
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
        "tables": data_tables, "references": references, "migrations": _migrations(schema),
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


def _migrations(schema: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations ORDER BY id')  # noqa: S608
        return [list(row) for row in cursor.fetchall()]


@contextmanager
def _links_folder():
    """A folder beside the tenant folders (same file system: hard links), removed afterwards."""
    folder = _storage() / f".backup-{secrets.token_hex(6)}"
    folder.mkdir(mode=0o700, parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _link_files(tenant: Tenant, folder: Path) -> list[Path]:
    """Hard links to every committed object of the tenant, made right after the rows' snapshot
    was taken: a file deleted while the tables are copied (its row gone after the snapshot) is
    still in the archive. `.part` files are uploads in flight: not data yet."""
    root = _storage() / tenant.schema_name
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


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


# --- restore ------------------------------------------------------------------------------------
@dataclass
class RestoreResult:
    tenant: Tenant
    in_place: bool
    archive_sha256: str
    files: int
    rows: int
    users_created: list[str] = field(default_factory=list)
    tokens_skipped: int = 0
    seconds: float = 0.0
    audit: audit_chain.ChainResult | None = None  # the chain verified right after the restore


def tenant_restore(*, path, as_slug: str | None = None, reseal: Reseal | None = None) -> RestoreResult:
    """Verify the archive, then restore it in place or as a new tenant (see the module's doc)."""
    started = time.monotonic()
    connection.set_schema_to_public()
    archive = archives.verified_open(path)
    staged: Path | None = None
    try:
        public = _public(archive)
        slug = as_slug or public["tenant"]["slug"]
        existing = Tenant.objects.exclude(schema_name="public").filter(slug=slug).first()
        if existing is not None:
            _check_same_tenant(existing, public)
        else:
            validate_slug(slug)
        _check_migrations(public)
        plan = _plan(public)
        data_keys = _data_keys(public, existing)
        if existing is not None:
            _refuse_busy(existing)  # before staging the files; again under the tenant's lock
        schema = existing.schema_name if existing else _new_schema_name(slug)
        try:
            staged = _stage_files(archive, public, schema, data_keys, reseal, in_place=existing is not None)
            result = _restore(archive, public, existing=existing, slug=slug, schema=schema, plan=plan,
                              data_keys=data_keys, staged=staged)
        except (DatabaseError, OSError) as exc:
            # Rolled back and swapped back already; say why in one line (a full disk, a schema
            # this installation cannot take...).
            logger.exception("tenant restore failed", extra={"archive": str(path), "slug": slug})
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RestoreRefused(f"The restore failed and changed nothing: {reason}")
    finally:
        archive.close()
        if staged is not None and staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def _public(archive: archives.ArchiveReader) -> dict:
    try:
        public = json.loads(archive.read("public.json"))
    except (KeyError, ValueError):
        raise archives.ArchiveInvalid("The archive holds no readable public.json.")
    source = public.get("tenant") or {}
    if source.get("id") != archive.manifest.get("tenant", {}).get("id"):
        raise archives.ArchiveInvalid("public.json and the manifest name different tenants.")
    return public


def _check_same_tenant(existing: Tenant, public: dict) -> None:
    """In place only for the tenant the archive was taken from: same id and schema, and a live
    chain that still holds the archive's last entry (the chain only grows)."""
    source = public["tenant"]
    if existing.id != source["id"] or existing.schema_name != source["schema_name"]:
        raise RestoreRefused(f"A tenant '{existing.slug}' exists here and is not the one this archive "
                             "was taken from; restore it under a new slug with --as.", field="as")
    head = public.get("audit_head") or {}
    if not head.get("last_seq"):
        return
    live = (AuditEvent.objects.filter(tenant_id=existing.id, seq=head["last_seq"])
            .values_list("hash", flat=True).first())
    purged = AuditCheckpoint.objects.filter(tenant_id=existing.id, through_seq__gte=head["last_seq"]).exists()
    if live != head["last_hash"] and not purged:
        raise RestoreRefused(f"The audit chain of '{existing.slug}' does not contain the archive's entry "
                             f"#{head['last_seq']}: this archive is not from this tenant's history; use --as.",
                             field="as")


def _check_migrations(public: dict) -> None:
    applied = set(map(tuple, _migrations(settings.TENANT_BASE_SCHEMA)))
    missing = [m for m in map(tuple, public["schema"]["migrations"]) if m not in applied]
    if missing:
        raise RestoreRefused(f"The archive was made by a newer version (migration {missing[0][0]}."
                             f"{missing[0][1]} is not applied here): upgrade this installation first.")


def _plan(public: dict) -> Plan:
    slug = public["tenant"].get("plan") or settings.PORTAL_DEFAULT_PLAN
    plan = Plan.objects.filter(slug=slug).first()
    if plan is None:
        raise RestoreRefused(f"The archive's plan '{slug}' does not exist here; create it first.")
    return plan


def _data_keys(public: dict, existing: Tenant | None) -> dict[int, bytes]:
    """Every data key the archive's files need, unwrapped here: proves this installation holds
    the master keys before anything is written (the error names the missing key's id)."""
    found = {}
    try:
        for row in public["keys"]:
            version = row["version"]
            if existing is not None and TenantKey.objects.filter(tenant=existing, version=version).exists():
                found[version] = keys.data_key(existing, version)
                continue
            master = keys.master_key(row["master_key_id"])
            wrapped = public_rows.parsed({"wrapped_key": row["wrapped_key"]}, TenantKey)["wrapped_key"]
            found[version] = keys.unwrap_key(wrapped, tenant_id=public["tenant"]["id"], version=version,
                                             master=master)
    except keys.KeyUnavailable as exc:
        raise RestoreRefused(f"Cannot restore: {exc}", code="master_key_missing")
    return found


# --- files --------------------------------------------------------------------------------------
def _storage() -> Path:
    return Path(settings.PORTAL_STORAGE_DIR)


def _stage_files(archive, public: dict, schema: str, data_keys: dict[int, bytes], reseal: Reseal | None,
                 *, in_place: bool) -> Path:
    """The tenant's folder as it will be, built beside the storage (same file system: the swap is
    a rename). In place the files are copied as stored; for a new schema they are re-sealed."""
    if not in_place and reseal is None:
        raise RestoreRefused("Restoring as a new tenant needs the storage's reseal function.")
    _storage().mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = _storage() / f".restore-{secrets.token_hex(6)}"
    staged.mkdir(mode=0o700)
    for name in archive.names("files/"):
        match = FILE_RE.match(name)
        if match is None:
            raise archives.ArchiveInvalid(f"The archive holds an unexpected file name {name!r}.")
        kind, object_id = match.group(1), str(uuid.UUID(match.group(2)))
        folder = staged / kind
        folder.mkdir(mode=0o700, exist_ok=True)
        target = folder / f"{object_id}.enc"
        source = folder / f".{object_id}.source" if not in_place else target
        with open(source, "wb") as sink:
            shutil.copyfileobj(archive.stream(name), sink, archives.BLOCK)
            os.fsync(sink.fileno())
        if not in_place:
            reseal(source, target, kind=kind, object_id=object_id,
                   from_schema=public["tenant"]["schema_name"], to_schema=schema, data_keys=data_keys)
            source.unlink()
    return staged


def _swap_in(staged: Path, schema: str) -> Path | None:
    live = _storage() / schema
    old = None
    if live.exists():
        old = _storage() / f".restore-old-{secrets.token_hex(6)}"
        os.rename(live, old)
    os.rename(staged, live)
    return old


def _swap_back(staged: Path, schema: str, old: Path | None) -> None:
    live = _storage() / schema
    if live.exists():
        os.rename(live, staged)
    if old is not None:
        os.rename(old, live)


# --- the transaction ----------------------------------------------------------------------------
def _restore(archive, public: dict, *, existing: Tenant | None, slug: str, schema: str, plan: Plan,
             data_keys: dict[int, bytes], staged: Path) -> RestoreResult:
    swapped, old = False, None
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            user_map, created = public_rows.users_match(public["users"])
            if existing is not None:
                tenant = Tenant.objects.select_for_update().get(pk=existing.pk)
                _refuse_busy(tenant)
                rows = _load_schema(archive, public, schema, user_map, truncate=True)
                skipped = _public_in_place(tenant, public, plan, user_map)
            else:
                tenant = _tenant_create(public, slug=slug, schema=schema, plan=plan)
                rows = _load_schema(archive, public, schema, user_map, truncate=False)
                skipped = _public_new(tenant, public, user_map, data_keys)
                _audit_copy(archive, public, tenant)
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # a bad reference fails here, not later
            _record_restore(tenant, archive, public, in_place=existing is not None, created=created)
            old = _swap_in(staged, schema)
            swapped = True
    except BaseException:
        if swapped:
            _swap_back(staged, schema, old)
        raise
    connection.set_schema_to_public()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _forget_caches(tenant, user_map.values())
    verified = audit_chain.chains_verify(tenant_ids=[tenant.id], trigger="command")[0]  # witnesses the head
    return RestoreResult(tenant=tenant, in_place=existing is not None, archive_sha256=archive.digest,
                         files=len(archive.names("files/")), rows=rows, users_created=created,
                         tokens_skipped=skipped, audit=verified)


def _refuse_busy(tenant: Tenant) -> None:
    jobs = JobTicket.objects.filter(tenant=tenant).exclude(state=JobTicket.State.FINISHED).count()
    uploads = UploadLease.objects.filter(tenant=tenant).count()
    if jobs or uploads:
        raise RestoreRefused(f"'{tenant.slug}' has {jobs} job(s) queued or running and {uploads} "
                             "upload(s) in progress: let them finish or cancel them, then restore.")


def _load_schema(archive, public: dict, schema: str, user_map: dict[int, int], *, truncate: bool) -> int:
    live = tables.table_columns(schema)
    archived = public["schema"]["tables"]
    for name, cols in archived.items():
        lacking = sorted(set(cols) - set(live.get(name, ())))
        if lacking:
            raise RestoreRefused(f"The archive's table {name} has column(s) {', '.join(lacking)} that "
                                 "this installation lacks: upgrade it first.")
    data_tables = sorted(name for name in live if name != "django_migrations")
    if truncate:
        tables.truncate_all(schema, data_tables)
    for name, cols in sorted(archived.items()):
        tables.copy_in(schema, name, cols, archive.stream(f"schema/{name}.copy"))
    references = [tuple(r) for r in tables.public_references(schema)]
    snapshot = public["schema"]
    tables.remap(schema, references, tables.USER_TABLE, user_map)
    tables.remap(schema, references, "auth_permission", _permission_map(snapshot["permissions"]))
    tables.remap(schema, references, "django_content_type", _content_type_map(snapshot["content_types"]))
    tables.remap(schema, references, "auth_group", {int(k): Group.objects.get_or_create(name=v)[0].id
                                                    for k, v in snapshot["groups"].items()})
    if not truncate:  # a new schema; in place the sequences are already past every archived id
        tables.reset_sequences(schema, data_tables)
    return _count_rows(schema, sorted(archived))


def _count_rows(schema: str, names: list[str]) -> int:
    total = 0
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"SELECT count(*) FROM {tables.quoted(schema, name)}")  # noqa: S608
            total += cursor.fetchone()[0]
    return total


def _permission_map(archived: dict) -> dict[int, int]:
    mapping = {}
    for old, (app_label, model, codename) in archived.items():
        here = (Permission.objects.filter(content_type__app_label=app_label, content_type__model=model,
                                          codename=codename).values_list("id", flat=True).first())
        if here is None:
            raise RestoreRefused(f"The permission {app_label}.{codename} does not exist here: migrate first.")
        mapping[int(old)] = here
    return mapping


def _content_type_map(archived: dict) -> dict[int, int]:
    return {int(old): ContentType.objects.get_by_natural_key(app_label, model).id
            for old, (app_label, model) in archived.items()}


def _public_in_place(tenant: Tenant, public: dict, plan: Plan, user_map: dict[int, int]) -> int:
    """The tenant's public rows become the archive's, ids kept. Daily metering is consumption
    history (billing), not state: it stays as it is, like the audit chain."""
    source = public["tenant"]
    tenant.name, tenant.plan = source["name"], plan
    tenant.limit_overrides, tenant.is_active = source["limit_overrides"], source["is_active"]
    tenant.require_admin_2fa = source["require_admin_2fa"]
    tenant.full_clean()
    tenant.save(update_fields=["name", "plan", "limit_overrides", "is_active", "require_admin_2fa"])
    members_before = set(Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True))
    Membership.objects.filter(tenant=tenant).delete()
    ApiToken.objects.filter(tenant=tenant).delete()
    JobTicket.objects.filter(tenant=tenant).delete()
    # Answers kept for Idempotency-Key retries describe rows the rollback undid: a retry must run
    # again, not be told of a dataset or job that no longer exists.
    IdempotentRequest.objects.filter(tenant=tenant).delete()
    _bulk(Membership, public["memberships"], tenant, user_map, keep_ids=True)
    _bulk(ApiToken, public["api_tokens"], tenant, user_map, keep_ids=True)
    _bulk(JobTicket, public["job_tickets"], tenant, user_map, keep_ids=True)
    for user_id in members_before:
        gate.bump_user_epoch(user_id)
    if public["usage"]:
        TenantUsage.objects.update_or_create(tenant=tenant, defaults=public["usage"])
    live_versions = set(TenantKey.objects.filter(tenant=tenant).values_list("version", flat=True))
    for row in public["keys"]:
        if row["version"] not in live_versions:  # destroyed since: the archive's wrapped copy
            TenantKey.objects.create(tenant=tenant, **public_rows.parsed(row, TenantKey))
    return 0  # the archived ids came from this installation's sequences: no id is handed out twice


def _tenant_create(public: dict, *, slug: str, schema: str, plan: Plan) -> Tenant:
    source = public["tenant"]
    tenant = Tenant(slug=slug, name=source["name"], plan=plan, schema_name=schema,
                    limit_overrides=source["limit_overrides"], is_active=source["is_active"],
                    require_admin_2fa=source["require_admin_2fa"])
    tenant.full_clean()
    tenant.save()  # builds the schema from the template, inside this transaction
    connection.set_schema_to_public()
    Domain.objects.create(domain=tenant_domain(slug), tenant=tenant, is_primary=True)
    TenantUsage.objects.create(tenant=tenant, **(public["usage"] or {}))
    return tenant


def _public_new(tenant: Tenant, public: dict, user_map: dict[int, int], data_keys: dict[int, bytes]) -> int:
    """The archive's public rows under the new tenant id. A token is a credential of one tenant:
    tokens whose digest this installation already holds (the original's) are not copied."""
    _bulk(Membership, public["memberships"], tenant, user_map, keep_ids=False)
    taken = set(ApiToken.objects.filter(digest__in=[t["digest"] for t in public["api_tokens"]])
                .values_list("digest", flat=True))
    _bulk(ApiToken, [t for t in public["api_tokens"] if t["digest"] not in taken], tenant, user_map,
          keep_ids=False)
    _bulk(JobTicket, public["job_tickets"], tenant, user_map, keep_ids=False)
    _bulk(UsageDaily, public["usage_daily"], tenant, user_map, keep_ids=False)
    master = keys.newest_master_key()
    for row in public["keys"]:
        fields = public_rows.parsed(row, TenantKey)
        fields["wrapped_key"] = keys.wrap_key(data_keys[row["version"]], tenant_id=tenant.id,
                                              version=row["version"], master=master)
        fields["master_key_id"] = master.id
        TenantKey.objects.create(tenant=tenant, **fields)
    return len(taken)


def _bulk(model, rows: list[dict], tenant: Tenant, user_map: dict[int, int], *, keep_ids: bool) -> None:
    objects = []
    for row in rows:
        fields = public_rows.parsed(row, model)
        if not keep_ids:
            fields.pop("id", None)
        if fields.get("user_id") is not None:
            fields["user_id"] = user_map[fields["user_id"]]
        objects.append(model(tenant=tenant, **fields))
    model.objects.bulk_create(objects)


# --- the audit chain of a new tenant ------------------------------------------------------------
def _audit_copy(archive, public: dict, tenant: Tenant) -> None:
    """The archive's chain under the new tenant id, entries as they were: an entry's hash covers
    its stored slug, not the tenant id, so the copy verifies from genesis. Retention checkpoints
    (signed over the old id) are checked and signed again for the new id; the archive's witness
    checkpoints are checked against the entries here (they name the old id, so they are not copied:
    the restore witnesses the copied head itself, in chains_verify)."""
    table = AuditEvent._meta.db_table
    cols = ", ".join(AUDIT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE _restore_audit ON COMMIT DROP AS SELECT {cols} FROM {table} "  # noqa: S608
                       "WITH NO DATA")
        with cursor.cursor.copy(f"COPY _restore_audit ({cols}) FROM STDIN") as copy:
            stream = archive.stream("audit/entries.copy")
            while block := stream.read(archives.BLOCK):
                copy.write(block)
        cursor.execute(f"INSERT INTO {table} (tenant_id, {cols}) SELECT %s, {cols} FROM _restore_audit "  # noqa: S608
                       "ORDER BY seq", [tenant.id])
        cursor.execute("DROP TABLE _restore_audit")
    original = public["tenant"]["id"]
    for row in public["audit_checkpoints"]:
        _checkpoint_copy(row, original, tenant)
    head = public.get("audit_head")
    if head and head["last_seq"]:
        AuditChainHead.objects.create(tenant_id=tenant.id, **head)
    result = audit_chain.chain_verify(tenant_id=tenant.id)
    if not result.ok:
        raise archives.ArchiveInvalid(f"The archive's audit chain does not verify at entry "
                                      f"#{result.first_bad_seq}: {result.reason}.")
    _check_witnessed(archive, original, tenant)


def _checkpoint_copy(row: dict, original: int, tenant: Tenant) -> None:
    fields = public_rows.parsed(row, AuditCheckpoint)
    checkpoint = AuditCheckpoint(tenant_id=original, **fields)
    if not signing.verify(audit_chain.checkpoint_body(checkpoint)):
        raise archives.ArchiveInvalid(f"The archive's retention checkpoint through #{checkpoint.through_seq} "
                                      "has an invalid signature.")
    checkpoint.tenant_id, checkpoint.key_id = tenant.id, signing.key_id()
    checkpoint.signature = signing.sign(audit_chain.checkpoint_body(checkpoint))
    checkpoint.save()


def _check_witnessed(archive, original: int, tenant: Tenant) -> None:
    if "witness/chain.jsonl" not in archive.manifest["members"]:
        return
    hashes = dict(AuditEvent.objects.filter(tenant_id=tenant.id).values_list("seq", "hash"))
    for number, line in enumerate(archive.read("witness/chain.jsonl").decode().splitlines(), start=1):
        if not line.strip():
            continue
        body = json.loads(line)
        if not signing.verify(body) or body.get("tenant_id") != original:
            raise archives.ArchiveInvalid(f"Line {number} of the archive's witness file is not a valid "
                                          "signed checkpoint of this chain.")
        seq = body.get("seq")
        if seq in hashes and hashes[seq] != body.get("hash"):
            raise archives.ArchiveInvalid(f"The archive's entry #{seq} does not match its signed "
                                          f"checkpoint of {body.get('at')}.")


# --- after ------------------------------------------------------------------------------------
def _record_restore(tenant: Tenant, archive, public: dict, *, in_place: bool, created: list[str]) -> None:
    source = public["tenant"]
    details = {"archive_sha256": archive.digest, "backup_created_at": archive.manifest.get("created_at"),
               "mode": "in place" if in_place else "new tenant", "from_tenant_id": source["id"],
               "from_slug": source["slug"], "from_schema": source["schema_name"],
               "backup_through_seq": (public.get("audit_head") or {}).get("last_seq", 0),
               "users_created": len(created), "by": _os_user()}
    audit.record("tenant.restored", tenant=tenant, object_type="tenant", object_id=tenant.id,
                 details=details)
    audit.record("tenant.restored", tenant=None, object_type="tenant", object_id=tenant.id,
                 details={**details, "slug": tenant.slug})


def _forget_caches(tenant: Tenant, user_ids) -> None:
    gate.bump_tenant_epoch(tenant.id)
    for user_id in set(user_ids):
        gate.bump_user_epoch(user_id)
    access.forget_tenant_hosts()
    access.forget_cached_credentials()
    keys.forget_cached_keys(tenant.id)
