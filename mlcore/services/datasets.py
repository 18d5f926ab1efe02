"""Writes for datasets: upload (stream -> encrypt -> validate -> profile), edit, delete.

Sharing is mlcore.services.sharing (one path for datasets and models).

An upload (mlcore.services.uploads.UploadSession: pages and API alike) is streamed by
EncryptingUploadHandler straight into an encrypted object while its UploadBudget reserves storage
(413 as soon as the quota is passed). The same bytes are validated and profiled as they arrive, on a second thread
(an ingest IngestFeed, the handler's tee), so that little is left to do after the last byte.
Where that pass cannot stand for the file (Parquet, read from its end; an encoding declared in
a form field, which comes too late; limits changed meanwhile), the stored object is read back
and validated and profiled in one streaming pass instead. Either way the answer is the same. Any
failure removes the object and releases every reservation: no row, no file, no usage counted.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tenants.accounts.access import MembershipInfo
from tenants.auditing import audit
from tenants.caches import cache_put
from tenants.errors import Conflict, ServiceError
from tenants.limits import quotas
from tenants.models import Tenant

from .. import storage
from ..models import Dataset
from ..storage import DATASETS, PROFILES
from .uploads import UploadBudget, ingest_limits

logger = logging.getLogger(__name__)

SIZE_ERROR_CODES = {"too_many_rows", "too_many_columns", "too_large_to_read"}


class DatasetRejected(ServiceError):
    """The upload cannot become a dataset. `reason` is the ingest's code (too_many_rows...);
    the problem type is dataset-<reason>, with the line and column at fault where known."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid", line=None, column=None,
                 field: str = "file"):
        extra = {k: v for k, v in (("line", line), ("column", column)) if v is not None}
        super().__init__(message, code=f"dataset-{code.replace('_', '-')}", field=field, status=status,
                         **extra)
        self.reason = code
        self.line = line
        self.column = column


# --- create ------------------------------------------------------------------------------------

def _clean_name(name: str) -> str:
    name = re.sub(r"\s+", " ", (name or "").strip())
    if len(name) > 200:
        raise ValidationError({"name": "A name has at most 200 characters."})
    return name


def _name_from_filename(filename: str) -> str:
    base = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    for suffix in (".csv.gz", ".tsv.gz", ".csv", ".tsv", ".parquet", ".txt", ".gz"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return _clean_name(base.replace("_", " ")) or "Untitled dataset"


def free_dataset_name(wanted: str) -> str:
    """A derived name that is taken gets a suffix: "sales", "sales (2)", …"""
    if not Dataset.objects.filter(name__iexact=wanted).exists():
        return wanted
    n = 2
    while Dataset.objects.filter(name__iexact=f"{wanted} ({n})").exists():
        n += 1
    return f"{wanted} ({n})"


def _ensure_name_free(name: str, series=None) -> None:
    taken = Dataset.objects.filter(name__iexact=name)
    if series is not None:
        taken = taken.exclude(series=series)  # the dataset's own versions share its name
    if taken.exists():
        raise Conflict(f"A dataset named '{name}' already exists; choose another name.", field="name")


def dataset_create(*, tenant: Tenant, user, upload, budget: UploadBudget, name: str = "",
                   description: str = "", encoding: str = "", check=None,
                   version_of: Dataset | None = None) -> Dataset:
    """Validate, profile and register an uploaded, already encrypted file.

    With `version_of` (a dataset the caller may edit, access-checked), the file becomes the next
    version of that dataset's series: same name, owner and shares as its latest version.

    `upload` is the EncryptedUploadedFile of the request (or None when no file was sent);
    `encoding` the text encoding the uploader declared (blank: UTF-8, or UTF-16 by its byte order
    mark). The file is stored as it came; the dataset records how to read it. `check(result)`,
    if given, sees the profile (an ingest IngestResult) before anything is kept: a ServiceError
    it raises refuses the file like any invalid upload (no row, no file, no storage counted).
    """
    try:
        if upload is None:
            raise DatasetRejected("Choose a file to upload (form field 'file').", code="required")
        chosen = _clean_name(name)
        if version_of is not None:
            chosen = version_of.name
        elif chosen:
            _ensure_name_free(chosen)
        else:
            chosen = free_dataset_name(_name_from_filename(upload.name or "upload.csv"))
        result = _profile(tenant, upload, encoding=_declared_encoding(encoding))
        if check is not None:
            check(result)
        budget.settle(upload.stored.plaintext_bytes)
        _write_profile(tenant, upload.object_id, result)
        with transaction.atomic():
            dataset = Dataset(
                name=chosen, description=(description or "").strip()[:5000], owner=user,
                object_id=uuid.UUID(upload.object_id), original_filename=(upload.name or "upload.csv")[:255],
                format=result.format, encoding=result.encoding or "", size_bytes=upload.stored.plaintext_bytes,
                sha256=upload.stored.sha256_hex, rows=result.rows, column_count=len(result.columns),
            )
            latest = _join_series(dataset, version_of) if version_of is not None else None
            dataset.full_clean()
            dataset.save()
            if latest is not None:
                _copy_grants(latest, dataset)
                Dataset.objects.filter(series=dataset.series).update(series_last_version=dataset.version)
            audit.record("dataset.upload", tenant=tenant, object_type="dataset", object_id=dataset.id,
                         details={"name": dataset.name, "rows": dataset.rows,
                                  "columns": dataset.column_count, "size_bytes": dataset.size_bytes,
                                  "format": dataset.format, "sha256": dataset.sha256,
                                  "version": dataset.version,
                                  **({"version_of": latest.id} if latest is not None else {})})
            budget.keep()
        budget.kept = True
        upload.keep()
        return dataset
    except (ServiceError, ValidationError, IntegrityError) as exc:
        _discard(tenant, upload, budget)
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        audit.record("dataset.upload", tenant=tenant, object_type="dataset", outcome="failed",
                     details={"filename": upload.name if upload else None, "reason": reason})
        raise
    except BaseException:
        _discard(tenant, upload, budget)
        raise


def _join_series(dataset: Dataset, version_of: Dataset) -> Dataset:
    """Number `dataset` (not saved yet) as the next version of `version_of`'s series and give it
    the series' owner and workspace share; returns the latest version before it. The series' rows
    are locked, so two uploads to one dataset get two numbers."""
    series = list(Dataset.objects.select_for_update().filter(series=version_of.series).order_by("-version"))
    if not series:
        raise Conflict("The dataset was deleted while the new version was uploading.", field="file")
    latest = series[0]
    number = max(row.series_last_version for row in series) + 1
    dataset.series, dataset.version, dataset.series_last_version = latest.series, number, number
    dataset.name, dataset.owner_id = latest.name, latest.owner_id
    dataset.everyone_permission = latest.everyone_permission
    if not dataset.description:
        dataset.description = latest.description
    return latest


def _copy_grants(source: Dataset, target: Dataset) -> None:
    """Whoever was shared the latest version is shared the new one, at the same level."""
    from ..models import DatasetUserObjectPermission

    DatasetUserObjectPermission.objects.bulk_create([
        DatasetUserObjectPermission(content_object=target, user_id=g.user_id, permission_id=g.permission_id)
        for g in DatasetUserObjectPermission.objects.filter(content_object=source)])


def dataset_versions(*, dataset: Dataset):
    """Every version of `dataset`'s series (the rows themselves: their rights are the series'),
    newest first."""
    return Dataset.objects.filter(series=dataset.series).select_related("owner").order_by("-version")


def _declared_encoding(encoding: str) -> str:
    from ..ingest import IngestError, check_encoding

    try:
        return check_encoding((encoding or "").strip() or "utf-8")
    except IngestError as exc:
        raise DatasetRejected(f"{exc} Choose one such as utf-8, cp1252 (Windows-1252), latin-1 or "
                              f"utf-16.", code="unknown_encoding", field="encoding")


def _profile(tenant: Tenant, upload, *, encoding: str):
    """The profile made while the file arrived when that pass read the file as it must be read,
    else that of a pass over the stored file."""
    from ..ingest import IngestError, ingest

    limits, filename = ingest_limits(tenant), upload.name or "upload.csv"
    try:
        result = _profile_made_on_arrival(upload, filename=filename, limits=limits, encoding=encoding)
        if result is not None:
            return result
        with storage.open_object(tenant, DATASETS, upload.object_id) as stream:
            return ingest(stream, filename=filename, encoding=encoding, limits=limits)
    except IngestError as exc:
        status = 413 if exc.code in SIZE_ERROR_CODES else 400
        raise DatasetRejected(str(exc), status=status, code=exc.code, line=exc.line, column=exc.column)


def _profile_made_on_arrival(upload, *, filename: str, limits, encoding: str):
    """The outcome of the upload's IngestFeed (its tee), or None when that pass cannot stand for
    the file; it raises the IngestError of the file."""
    from ..ingest import NeedsRandomAccess

    feed = getattr(upload, "tee", None)
    if feed is None:  # a file the server stored itself
        return None
    reason = ""
    if feed.encoding != encoding:
        reason = "encoding"  # declared in a form field, which came after the file
    elif feed.limits != limits:
        reason = "limits"  # the plan changed while the file arrived
    elif feed.filename != filename:
        reason = "filename"
    else:
        try:
            return feed.result()
        except NeedsRandomAccess:
            reason = "parquet"
    feed.close()  # stop it before the second pass
    logger.info("upload read back to be profiled", extra={"reason": reason})
    return None


def _write_profile(tenant: Tenant, object_id: str, result) -> None:
    body = json.dumps({
        "format": result.format,
        "rows": result.rows,
        "columns": [c.to_dict() for c in result.columns],
        "preview": result.preview,
    }, default=str).encode()
    with storage.EncryptedWriter(tenant, PROFILES, object_id) as writer:
        writer.write(body)
        writer.commit()


def _discard(tenant: Tenant, upload, budget: UploadBudget) -> None:
    if upload is not None:
        upload.discard()
        storage.delete_object(tenant, PROFILES, upload.object_id)
    budget.release_all()


# --- profile (read back from encrypted storage) ----------------------------------------------------
_profile_cache: dict[tuple[str, str], dict] = {}


def dataset_profile(*, tenant: Tenant, dataset: Dataset) -> dict:
    """The stored profile and preview: {"format", "rows", "columns": [...], "preview": [[...]]}."""
    key = (tenant.schema_name, str(dataset.object_id))
    cached = _profile_cache.get(key)
    if cached is not None:
        return cached
    with storage.open_object(tenant, PROFILES, str(dataset.object_id)) as stream:
        profile = json.loads(stream.read())
    cache_put(_profile_cache, key, profile, limit=256)
    return profile


# --- edit, delete -----------------------------------------------------------------------
def dataset_update(*, tenant: Tenant, dataset: Dataset, name: str | None = None,
                   description: str | None = None) -> Dataset:
    changed = {}
    if name is not None:
        cleaned = _clean_name(name)
        if not cleaned:
            raise ValidationError({"name": "A name is required."})
        _ensure_name_free(cleaned, series=dataset.series)
        changed["name"] = (dataset.name, cleaned)
        dataset.name = cleaned
    if description is not None:
        changed["description"] = True
        dataset.description = description.strip()[:5000]
    if changed:
        with transaction.atomic():
            dataset.full_clean()
            dataset.save(update_fields=["name", "description", "updated_at"])
            if "name" in changed:  # one name for every version of the dataset
                Dataset.objects.filter(series=dataset.series).exclude(pk=dataset.pk).update(name=dataset.name)
            audit.record("dataset.update", tenant=tenant, object_type="dataset", object_id=dataset.id,
                         details={k: list(v) if isinstance(v, tuple) else v for k, v in changed.items()})
    return dataset


def dataset_delete(*, tenant: Tenant, dataset: Dataset) -> None:
    """The row goes, the encrypted files go, and the bytes are freed at once."""
    dataset_id, object_id, size = dataset.id, str(dataset.object_id), dataset.size_bytes
    with transaction.atomic():
        dataset.delete()
        quotas.storage_release(tenant, size)
        quotas.count_release(tenant, "datasets")
        audit.record("dataset.delete", tenant=tenant, object_type="dataset", object_id=dataset_id,
                     details={"name": dataset.name, "size_bytes": size})
        transaction.on_commit(lambda: _delete_files(tenant, object_id))
    _profile_cache.pop((tenant.schema_name, object_id), None)


def _delete_files(tenant: Tenant, object_id: str) -> None:
    storage.delete_object(tenant, DATASETS, object_id)
    storage.delete_object(tenant, PROFILES, object_id)


def dataset_open_for_download(*, tenant: Tenant, dataset: Dataset):
    """Verify the whole object first (a clear integrity error beats a truncated download), then
    return a fresh stream for the response."""
    try:
        with storage.open_object(tenant, DATASETS, str(dataset.object_id)) as stream:
            while stream.read(4 * 1024 * 1024):
                pass
    except storage.StorageIntegrityError as exc:
        logger.error("integrity check failed", extra={"dataset": dataset.id, "tenant": tenant.slug})
        audit.record("dataset.download", tenant=tenant, object_type="dataset", object_id=dataset.id,
                     outcome="failed", details={"reason": str(exc)})
        raise
    audit.record("dataset.download", tenant=tenant, object_type="dataset", object_id=dataset.id,
                 details={"name": dataset.name, "size_bytes": dataset.size_bytes})
    return storage.open_object(tenant, DATASETS, str(dataset.object_id))


class _ServerFile:
    """A file the platform itself stores (demo data, scripts): what the upload handler would give."""

    def __init__(self, tenant: Tenant, name: str, content: bytes, object_id: str):
        self.name = name
        self.object_id = object_id
        self.tenant = tenant
        with storage.EncryptedWriter(tenant, DATASETS, self.object_id) as writer:
            writer.write(content)
            self.stored = writer.commit()

    def keep(self) -> None:
        pass

    def discard(self) -> None:
        storage.delete_object(self.tenant, DATASETS, self.object_id)


def dataset_create_from_bytes(*, tenant: Tenant, membership: MembershipInfo, user, filename: str,
                              content: bytes, name: str = "", description: str = "") -> Dataset:
    """The upload path for bytes already in the server, with the same checks and quotas."""
    budget = UploadBudget(tenant, membership)
    budget.on_progress(0)
    budget.on_progress(len(content))
    upload = _ServerFile(tenant, filename, content, budget.object_id)
    return dataset_create(tenant=tenant, user=user, upload=upload, budget=budget, name=name,
                          description=description)
