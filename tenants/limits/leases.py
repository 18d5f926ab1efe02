"""Upload leases: what a live upload holds of its tenant's quotas, given back when its process dies.

An upload reserves a dataset slot and storage bytes in TenantUsage as its body streams in. Each
reservation is also written on the upload's UploadLease row, owned by the web process serving it
(host, pid and a token of its own). A keeper thread in that process pushes the expiry of all its
leases forward with one UPDATE every third of PORTAL_UPLOAD_LEASE_SECONDS. A process that dies
mid-upload (kill -9, out of memory, gunicorn's --timeout) stops renewing; leases_reap_expired (a
beat task every 15 s, and the reconcile_usage command) then gives the reservation back and lets
its caller delete the upload's files.

Every change writes the lease row first and TenantUsage second, in one transaction (the reaper
takes them in the same order), so that at every commit TenantUsage = what the rows hold + what the
live leases hold: mlcore.services.usage recomputes it that way and corrects any drift.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.functions import Now

from tenants.errors import ServiceError
from tenants.limits import quotas
from tenants.models import Tenant, UploadLease

logger = logging.getLogger(__name__)


class LeaseLost(ServiceError):
    """The upload's lease was reaped (its process looked dead for a whole lease period): what it
    reserved was given back and its file deleted, so the upload cannot be kept."""

    status = 503
    code = "upload-lease-lost"


def _expiry() -> models.Expression:
    # The database's clock, for every web process and the reaper alike.
    return models.ExpressionWrapper(Now() + timedelta(seconds=settings.PORTAL_UPLOAD_LEASE_SECONDS),
                                    output_field=models.DateTimeField())


# --- the keeper: one per process --------------------------------------------------------------------
class _Keeper:
    """The leases this process holds, renewed by a daemon thread with one UPDATE per round."""

    def __init__(self):
        self._lock = threading.Lock()
        self._live: set[int] = set()
        self._pid: int | None = None
        self._owner = ""
        self._thread: threading.Thread | None = None

    @property
    def owner(self) -> str:
        self._after_fork()
        return self._owner

    def _after_fork(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:  # a forked child holds none of its parent's leases, nor its thread
            self._pid = pid
            self._owner = f"{socket.gethostname()[:80]}:{pid}:{secrets.token_hex(4)}"
            self._live = set()
            self._thread = None

    def track(self, lease_id: int) -> None:
        self._after_fork()
        with self._lock:
            self._live.add(lease_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="upload-lease-keeper", daemon=True)
                self._thread.start()

    def untrack(self, lease_id: int) -> None:
        with self._lock:
            self._live.discard(lease_id)

    def holding(self) -> int:
        with self._lock:
            return len(self._live)

    def renew(self) -> int:
        """Push the expiry of every lease of this process forward; returns how many."""
        return UploadLease.objects.filter(owner=self.owner).update(expires_at=_expiry())

    def _run(self) -> None:
        while True:
            time.sleep(settings.PORTAL_UPLOAD_LEASE_SECONDS / 3)
            if not self.holding():
                connection.close()  # this thread's own connection: none kept while idle
                continue
            try:
                self.renew()
            except Exception:  # the database briefly away: the next round tries again
                logger.exception("could not renew upload leases")
                connection.close()


keeper = _Keeper()


# --- the lease of one upload ------------------------------------------------------------------------
def lease_open(*, tenant: Tenant, object_id, dataset_slot: bool = True) -> UploadLease:
    """An upload starts: its dataset slot is reserved (403 past the limit) under a new lease."""
    with transaction.atomic():
        lease = UploadLease.objects.create(tenant=tenant, object_id=object_id, dataset_slot=dataset_slot,
                                           owner=keeper.owner, expires_at=_expiry())
        if dataset_slot:
            quotas.count_reserve(tenant, "datasets")
    keeper.track(lease.id)
    return lease


def _lost(lease: UploadLease) -> LeaseLost:
    keeper.untrack(lease.id)
    return LeaseLost("This upload was interrupted for too long and its space was given back; "
                     "send the file again.", field="file")


def lease_resize(lease: UploadLease, storage_bytes: int) -> None:
    """Reserve (413 past the limit) or give back bytes so that the lease holds `storage_bytes`."""
    change = storage_bytes - lease.storage_bytes
    if change == 0:
        return
    with transaction.atomic():
        if not UploadLease.objects.filter(pk=lease.pk).update(storage_bytes=storage_bytes):
            raise _lost(lease)
        if change > 0:
            quotas.storage_reserve(lease.tenant, change)
        else:
            quotas.storage_release(lease.tenant, -change)
    lease.storage_bytes = storage_bytes


def lease_settle(lease: UploadLease) -> None:
    """The upload became a row: what the lease holds is now that row's usage. Call it inside the
    transaction that saves the row, so the row and the end of the lease commit together."""
    if not UploadLease.objects.filter(pk=lease.pk).delete()[0]:
        raise _lost(lease)
    # No renewal from now on: should the transaction roll back, the caller releases the lease
    # (or, if this process dies first, the reaper does).
    keeper.untrack(lease.id)


def lease_release(lease: UploadLease) -> None:
    """The upload failed: give back whatever its lease holds (nothing if it was already reaped)."""
    with transaction.atomic():
        if UploadLease.objects.filter(pk=lease.pk).delete()[0]:
            _give_back(lease)
    keeper.untrack(lease.id)


def _give_back(lease: UploadLease) -> None:
    quotas.storage_release(lease.tenant, lease.storage_bytes)
    if lease.dataset_slot:
        quotas.count_release(lease.tenant, "datasets")


# --- the reaper -------------------------------------------------------------------------------------
def leases_reap_expired(*, on_reap: Callable[[UploadLease], None] | None = None) -> list[UploadLease]:
    """Leases their process stopped renewing: `on_reap(lease)` (deletes the upload's files) runs
    with the lease locked, then the reservation is given back and the lease deleted, together.

    A process that was only slow finds its lease gone at its next step (LeaseLost). A lease whose
    on_reap fails stays for the next round (logged)."""
    reaped: list[UploadLease] = []
    expired = list(UploadLease.objects.filter(expires_at__lt=Now()).values_list("pk", flat=True))
    for lease_id in expired:
        try:
            with transaction.atomic():
                lease = (UploadLease.objects.select_for_update(skip_locked=True)
                         .filter(pk=lease_id, expires_at__lt=Now()).first())
                if lease is None:  # renewed, settled, released, or another reaper has it
                    continue
                if on_reap is not None:
                    on_reap(lease)
                lease.delete()
                _give_back(lease)
        except Exception:
            logger.exception("could not reap an upload lease", extra={"lease": lease_id})
            continue
        logger.warning("reaped the upload lease of a dead process", extra={
            "tenant": lease.tenant.slug, "owner": lease.owner, "object_id": str(lease.object_id),
            "storage_bytes": lease.storage_bytes, "dataset_slot": lease.dataset_slot})
        reaped.append(lease)
    return reaped

