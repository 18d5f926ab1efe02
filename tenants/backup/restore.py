"""Restoring one tenant from its signed archive (README "Backups and upgrades").

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

import json
import logging
import os
import secrets
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import schema_context

from tenants.accounts import access
from tenants.auditing import audit, audit_chain
from tenants.backup import archive as archives
from tenants.backup import public_rows, tables
from tenants.backup.services import (
    AUDIT_COLUMNS,
    FILE_RE,
    applied_migrations,
    os_user,
    storage_root,
)
from tenants.crypto import keys, signing
from tenants.errors import ServiceError
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

# reseal(source, target, *, kind, object_id, from_schema, to_schema, data_keys) rewrites one
# encrypted object for another schema; the file format belongs to mlcore.storage, which passes it.
Reseal = Callable[..., int]
# loaded(tenant) runs inside the restore's transaction, in the tenant's schema, once its rows are
# in: what other apps derive from those rows (mlcore: the schedules' due index on the tenant row).
Loaded = Callable[[Tenant], None]


class RestoreRefused(ServiceError):
    code = "restore_refused"


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


def tenant_restore(*, path, as_slug: str | None = None, reseal: Reseal | None = None,
                   loaded: Loaded | None = None) -> RestoreResult:
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
        _checkapplied_migrations(public)
        plan = _plan(public)
        data_keys = _data_keys(public, existing)
        if existing is not None:
            _refuse_busy(existing)  # before staging the files; again under the tenant's lock
        schema = existing.schema_name if existing else _new_schema_name(slug)
        try:
            staged = _stage_files(archive, public, schema, data_keys, reseal, in_place=existing is not None)
            result = _restore(archive, public, existing=existing, slug=slug, schema=schema, plan=plan,
                              data_keys=data_keys, staged=staged, loaded=loaded)
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


def _checkapplied_migrations(public: dict) -> None:
    applied = set(map(tuple, applied_migrations(settings.TENANT_BASE_SCHEMA)))
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
def _stage_files(archive, public: dict, schema: str, data_keys: dict[int, bytes], reseal: Reseal | None,
                 *, in_place: bool) -> Path:
    """The tenant's folder as it will be, built beside the storage (same file system: the swap is
    a rename). In place the files are copied as stored; for a new schema they are re-sealed."""
    if not in_place and reseal is None:
        raise RestoreRefused("Restoring as a new tenant needs the storage's reseal function.")
    storage_root().mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = storage_root() / f".restore-{secrets.token_hex(6)}"
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
    live = storage_root() / schema
    old = None
    if live.exists():
        old = storage_root() / f".restore-old-{secrets.token_hex(6)}"
        os.rename(live, old)
    os.rename(staged, live)
    return old


def _swap_back(staged: Path, schema: str, old: Path | None) -> None:
    live = storage_root() / schema
    if live.exists():
        os.rename(live, staged)
    if old is not None:
        os.rename(old, live)


# --- the transaction ----------------------------------------------------------------------------
def _restore(archive, public: dict, *, existing: Tenant | None, slug: str, schema: str, plan: Plan,
             data_keys: dict[int, bytes], staged: Path, loaded: Loaded | None = None) -> RestoreResult:
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
            if loaded is not None:
                with schema_context(schema):
                    loaded(tenant)
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
               "users_created": len(created), "by": os_user()}
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
