"""Auditors' exports: streamed CSV or JSON Lines, each with a signed manifest.

The stream reads the entries through a server-side cursor and hashes the bytes as it sends them, so
a million entries export in constant memory. When the last byte is known the manifest (count,
first and last sequence numbers, head hash, SHA-256 of the exact bytes) is signed and stored, and a
signed checkpoint of the chain at the export's snapshot is witnessed (tenants/auditing/witness.py); it is
served at /api/v1/audit-events/exports/{id}/manifest/ and checked offline by
``manage.py verify_audit --export FILE --manifest FILE`` (``export_file_verify`` below).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from tenants.auditing import audit, witness
from tenants.auditing import online as audit_online
from tenants.crypto import signing
from tenants.models import AuditChainHead, AuditEvent, AuditExport

FORMATS = ("csv", "jsonl")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
CHUNK_ROWS = 2_000

# docs/api.md: a cell that is not a plain number and starts with one of these is prefixed with '.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def csv_safe(value) -> str:
    """A CSV cell that spreadsheets will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = audit.canonical(value).decode() if isinstance(value, dict) else json.dumps(value)
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


# --- starting an export -------------------------------------------------------------------------
def audit_export_start(*, tenant, fmt: str, filters: dict, user) -> AuditExport:
    """Flush pending counted entries, fix the snapshot (the chain's last seq now), log the export."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    audit_online.flush_before_export(tenant.id)
    head = AuditChainHead.objects.filter(tenant_id=tenant.id).values_list("last_seq", flat=True).first()
    export = AuditExport.objects.create(
        tenant_id=tenant.id, tenant_slug=tenant.slug, format=fmt, filters=filters,
        through_seq=head or 0, actor_id=user.pk, actor_email=user.email,
    )
    audit.record("audit.export", tenant=tenant, object_type="audit_export", object_id=export.id,
                 details={"format": fmt, "filters": filters, "through_seq": export.through_seq})
    return export


def export_queryset(export: AuditExport, events: QuerySet) -> QuerySet:
    """The entries of an export: the filtered ones up to the snapshot, in chain order."""
    return events.filter(seq__lte=export.through_seq).order_by("seq")


# --- streaming ----------------------------------------------------------------------------------
@dataclass
class _Tally:
    digest: object
    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str = ""

    def add(self, entry: dict) -> None:
        if self.first_seq is None:
            self.first_seq = entry["seq"]
        self.last_seq = entry["seq"]
        self.head_hash = entry["hash"]
        self.count += 1


def stream(export: AuditExport, queryset: QuerySet) -> Iterator[bytes]:
    """The export's bytes, chunk by chunk; the manifest is signed before the last chunk leaves."""
    tally = _Tally(digest=hashlib.sha256())
    encode = _csv_lines if export.format == "csv" else _jsonl_lines
    rows = queryset.values_list(*audit.ROW_COLUMNS).iterator(chunk_size=CHUNK_ROWS)
    pending: list[dict] = []
    header = _csv_header() if export.format == "csv" else b""
    tally.digest.update(header)
    chunk = header
    for row in rows:
        entry = audit.entry_from_row(row)
        tally.add(entry)
        pending.append(entry)
        if len(pending) >= CHUNK_ROWS:
            data = encode(pending)
            tally.digest.update(data)
            if chunk:
                yield chunk
            chunk, pending = data, []
    if pending:
        data = encode(pending)
        tally.digest.update(data)
        if chunk:
            yield chunk
        chunk = data
    # Sign before the last bytes go out: a client that has the whole file can fetch its manifest.
    audit_export_finish(export, tally)
    if chunk:
        yield chunk


def _csv_header() -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(audit.FIELDS)
    return buffer.getvalue().encode()


def _csv_lines(entries: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for entry in entries:
        writer.writerow([csv_safe(entry[field]) for field in audit.FIELDS])
    return buffer.getvalue().encode()


def _jsonl_lines(entries: list[dict]) -> bytes:
    return b"".join(audit.canonical(entry) + b"\n" for entry in entries)


def audit_export_finish(export: AuditExport, tally: _Tally) -> AuditExport:
    export.count = tally.count
    export.first_seq = tally.first_seq
    export.last_seq = tally.last_seq
    export.head_hash = tally.head_hash
    export.sha256 = tally.digest.hexdigest()
    export.key_id = signing.key_id()
    export.completed_at = timezone.now()
    export.signature = signing.sign(manifest(export))
    export.save(update_fields=["count", "first_seq", "last_seq", "head_hash", "sha256", "key_id",
                               "completed_at", "signature"])
    _witness_snapshot(export)
    return export


def _witness_snapshot(export: AuditExport) -> None:
    """A signed checkpoint of the chain at the export's snapshot (tenants/auditing/witness.py):
    the auditor's file and the platform's witness now both say what the chain held then."""
    snapshot_hash = (AuditEvent.objects.filter(tenant_id=export.tenant_id, seq=export.through_seq)
                     .values_list("hash", flat=True).first())
    if snapshot_hash is None:  # an empty chain, or purged since the export started
        return
    witness.checkpoint_record(tenant_id=export.tenant_id, tenant_slug=export.tenant_slug,
                              seq=export.through_seq, entry_hash=snapshot_hash, reason="export")


def manifest(export: AuditExport) -> dict:
    """docs/api.md: {export_id, format, filters, first_seq, last_seq, count, head_hash, sha256,
    created_at, key_id, signature}, plus the tenant it belongs to."""
    return {
        "export_id": str(export.id), "tenant": export.tenant_slug, "format": export.format,
        "filters": export.filters, "first_seq": export.first_seq, "last_seq": export.last_seq,
        "count": export.count, "head_hash": export.head_hash, "sha256": export.sha256,
        "created_at": audit.format_ts(export.created_at), "key_id": export.key_id,
        "signature": export.signature,
    }


# --- offline verification -----------------------------------------------------------------------
@dataclass
class ExportCheck:
    ok: bool
    reason: str = ""
    first_bad_seq: int | None = None
    count: int = 0


def export_file_verify(data_path, manifest_path, *, public_key: str | None = None) -> ExportCheck:
    """Check an export against its manifest without the database.

    The manifest's signature (platform key, or `public_key`), the SHA-256 of the exact bytes, the
    count, first/last sequence numbers and head hash; for JSON Lines also each entry's own hash and,
    where two exported entries are neighbours in the chain, the link between them.
    """
    with open(manifest_path, "rb") as handle:
        body = json.loads(handle.read())
    if not signing.verify(body, public_key=public_key):
        return ExportCheck(False, "the manifest's signature is not valid for this key")
    digest = hashlib.sha256()
    with open(data_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != body.get("sha256"):
        return ExportCheck(False, "the file's SHA-256 differs from the manifest: the bytes were changed")
    if body.get("format") == "jsonl":
        return _jsonl_verify(data_path, body)
    return _csv_verify(data_path, body)


def _jsonl_verify(data_path, body: dict) -> ExportCheck:
    tally = _Tally(digest=None)
    previous = None
    with open(data_path, encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            seq = entry.get("seq")
            if audit.entry_hash(entry) != entry.get("hash"):
                return ExportCheck(False, f"entry #{seq} does not match its hash", seq, tally.count)
            if previous is not None and seq <= previous["seq"]:
                return ExportCheck(False, f"entry #{seq} is out of order", seq, tally.count)
            if previous is not None and seq == previous["seq"] + 1 and entry["prev_hash"] != previous["hash"]:
                return ExportCheck(False, f"entry #{seq} does not link to #{seq - 1}", seq, tally.count)
            tally.add(entry)
            previous = entry
    return _compare_tally(tally, body)


def _csv_verify(data_path, body: dict) -> ExportCheck:
    # CSV cells may be neutralised for spreadsheets, so entries cannot be re-hashed: the signed
    # SHA-256 already proved the bytes; the rows must agree with the manifest.
    tally = _Tally(digest=None)
    with open(data_path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            tally.add({"seq": int(row["seq"]), "hash": row["hash"]})
    return _compare_tally(tally, body)


def _compare_tally(tally: _Tally, body: dict) -> ExportCheck:
    for name in ("count", "first_seq", "last_seq", "head_hash"):
        expected = body.get(name) if body.get(name) is not None else ("" if name == "head_hash" else None)
        if getattr(tally, name) != expected:
            return ExportCheck(False, f"{name} is {getattr(tally, name)!r} in the file but "
                                      f"{body.get(name)!r} in the manifest", tally.last_seq, tally.count)
    return ExportCheck(True, count=tally.count)
