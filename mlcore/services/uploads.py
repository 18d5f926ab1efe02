"""One request's file upload, the same for pages and the API: what it holds of the tenant's quotas
(UploadBudget, on a lease) and the encrypting handler it streams through (UploadSession).
mlcore.services.datasets and mlcore.services.predictions turn the stored upload into a dataset or
a prediction job.
"""

from __future__ import annotations

import uuid

from django.conf import settings

from tenants.accounts.access import MembershipInfo
from tenants.errors import ServiceError
from tenants.limits import leases, quotas
from tenants.models import Tenant, UploadLease

from .. import storage
from ..storage import DATASETS

# Storage is reserved ahead of the stream in steps, so a 1 GB upload costs ~100 UPDATEs, not 16,000.
RESERVE_STEP = 8 * 1024 * 1024


class UploadNotAccepted(ServiceError):
    """An upload refused before it could become a dataset: the role, the size limit, a second file.
    Like the API's other request errors, no problem type of its own (about:blank)."""

    code = ""


class UploadBudget:
    """What one upload holds of the tenant's quotas: a dataset slot and reserved bytes, on a lease
    (tenants.limits.leases) that this process renews while it lives, so the reservation of an
    upload whose process dies is given back and its files (named by `object_id`) deleted.

    Its on_progress hook runs inside the upload handler: first with 0 before any byte is stored
    (role and dataset-count checks, the lease opened), then as plaintext bytes arrive (size and
    storage checks). It refuses with ServiceErrors (QuotaExceeded for quotas), which stop the upload.

    When the request declares its length (`declared_bytes`, from Content-Length), the whole of it is
    reserved as the upload begins: of many uploads racing for the last room, those that fit get all
    they need at once and finish, instead of each taking a share chunk by chunk until none can go
    on. If the declared length does not fit (it counts the form's own bytes too), the upload goes
    on reserving as it streams, and the file is refused only when its own bytes do not fit.
    """

    def __init__(self, tenant: Tenant, membership: MembershipInfo | None, *, object_id=None,
                 declared_bytes: int | None = None):
        self.tenant = tenant
        self.membership = membership
        self.object_id = str(object_id or uuid.uuid4())
        self.lease: UploadLease | None = None
        self.kept = False
        self.max_bytes = settings.PORTAL_MAX_UPLOAD_BYTES
        self.declared_bytes = declared_bytes

    @property
    def reserved(self) -> int:
        return self.lease.storage_bytes if self.lease is not None else 0

    def begin(self) -> None:
        if self.lease is not None:
            return
        if self.membership is None or not self.membership.can_write_data:
            raise UploadNotAccepted("Your role does not allow uploading datasets.", status=403)
        self.lease = leases.lease_open(tenant=self.tenant, object_id=self.object_id)
        if self.declared_bytes:
            try:
                leases.lease_resize(self.lease, min(self.declared_bytes, self.max_bytes))
            except quotas.QuotaExceeded:
                pass  # the file alone may still fit: reserve as it streams

    def on_progress(self, total_bytes: int) -> None:
        """Called by the upload handler as plaintext bytes arrive; raises to stop the upload."""
        if total_bytes == 0:
            self.begin()
            return
        if total_bytes > self.max_bytes:
            raise UploadNotAccepted(
                f"The file is larger than the {quotas.human_bytes(self.max_bytes)} upload limit.",
                field="file", status=413)
        if total_bytes <= self.reserved:
            return
        try:
            leases.lease_resize(self.lease, total_bytes + RESERVE_STEP)
        except quotas.QuotaExceeded:
            leases.lease_resize(self.lease, total_bytes)  # the last bytes may still fit without the step

    def settle(self, final_bytes: int) -> None:
        """Keep exactly what was stored."""
        leases.lease_resize(self.lease, final_bytes)

    def keep(self) -> None:
        """Inside the transaction that saves the dataset: the reservation becomes its usage. Set
        `kept` once that transaction has committed."""
        leases.lease_settle(self.lease)

    def release_all(self) -> None:
        """Undo every reservation of an upload that did not become a dataset."""
        if self.kept or self.lease is None:
            return
        leases.lease_release(self.lease)
        self.lease = None


def _declared_length(request) -> int | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    return length if length > 0 else None


def _refused_by_storage(refusal: storage.UploadRefused) -> ServiceError:
    return UploadNotAccepted(refusal.message, field="file", status=400)


class UploadSession:
    """One request's file upload, the same for pages and the API: the quota it holds (an
    UploadBudget), the encrypting upload handler, and the release of whatever did not become a
    dataset. Every refusal while the body streams in is a ServiceError.

    Open it before anything reads the body, the CSRF check included::

        # a page: csrf_exempt outside, csrf_protect on the inner view
        with UploadSession(request) as upload:
            return inner_view(request, upload)     # dataset_create(..., budget=upload.budget)

        # the API: open in initial() before super().initial(), close in finalize_response()

    Only a POST carries a file; for other methods the session holds nothing. A stored file that
    does not become a dataset is deleted when the request ends (delete_unless_kept). The file is
    validated and profiled while it arrives (`_profile_as_it_arrives`, used by dataset_create).
    """

    def __init__(self, request):
        django_request = getattr(request, "_request", request)  # a DRF Request wraps the HttpRequest
        self.request = request
        self.budget = UploadBudget(django_request.tenant, getattr(django_request, "membership", None),
                                   declared_bytes=_declared_length(django_request))
        self.handler: storage.EncryptingUploadHandler | None = None

    def open(self) -> UploadSession:
        if self.request.method == "POST":
            self.handler = storage.install_encrypting_upload(
                self.request, kind=DATASETS, field="file", tenant=self.budget.tenant,
                object_id=self.budget.object_id, on_progress=self.budget.on_progress,
                on_refused=_refused_by_storage, delete_unless_kept=True,
                tee=self._profile_as_it_arrives)
        return self

    def _profile_as_it_arrives(self, file_name: str):
        # The encoding field of the form may come after the file: start with the default, and
        # _profile reads the stored file back if another one was declared.
        from ..ingest.feed import IngestFeed

        return IngestFeed(filename=file_name, limits=ingest_limits(self.budget.tenant))

    def close(self) -> None:
        if self.handler is not None:
            self.handler.close()  # a body that broke off mid-file
        self.budget.release_all()  # a no-op once the upload became a dataset

    def __enter__(self) -> UploadSession:
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()


def ingest_limits(tenant: Tenant):
    # Imported here: pyarrow is heavy and only upload requests need it.
    from ..ingest import IngestLimits

    limits = quotas.effective_limits(tenant)
    return IngestLimits(max_rows=limits["rows_per_dataset"], max_columns=limits["columns_per_dataset"])
