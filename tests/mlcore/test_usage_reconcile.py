"""Held usage and the uploads in progress: leases given back when their process dies, drift
corrected from what is stored (mlcore/services/usage.py, tenants/limits/leases.py).

An upload "in progress" here is what the upload handler holds mid-stream: an UploadBudget with its
lease and an EncryptedWriter with a .part file. "Its process died" is a lease whose expiry passed
(no keeper renewed it). The real kill -9 and gunicorn timeout are tests/mlcore/test_upload_drill.py.
"""

from __future__ import annotations

import io
import logging
import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from mlcore import storage, tasks
from mlcore.services.datasets import dataset_create
from mlcore.services.uploads import RESERVE_STEP, UploadBudget
from tenants.accounts.access import membership_for
from tenants.limits import leases, quotas
from tenants.models import Tenant, TenantUsage, UploadLease
from tests.mlcore.conftest import churn_csv, upload_dataset
from tests.mlcore.storage_support import empty_storage  # noqa: F401 - fixture
from tests.mlcore.test_limit_changes import operator_sets

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _clean_storage(empty_storage):  # noqa: F811 - the fixture above
    yield


def held(tenant) -> tuple[int, int, int]:
    row = TenantUsage.objects.get(tenant=tenant)
    return row.storage_bytes, row.datasets, row.model_versions


def stored(tenant) -> tuple[int, int]:
    """What the tenant's rows hold: (bytes, datasets)."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT COALESCE(SUM(size_bytes), 0), COUNT(*) FROM "{tenant.schema_name}".mlcore_dataset')  # noqa: S608
        size, count = cursor.fetchone()
    return int(size), int(count)


def part_files(tenant) -> list:
    return sorted((storage.object_path(tenant, "datasets", "0" * 32).parent).glob("*.part"))


class UploadInProgress:
    """Bob's upload, `nbytes` into the stream: its budget (lease) and its writer's .part file."""

    def __init__(self, tenant, user, nbytes: int):
        self.budget = UploadBudget(tenant, membership_for(user_id=user.id, tenant=tenant))
        self.budget.on_progress(0)
        self.writer = storage.EncryptedWriter(tenant, "datasets", self.budget.object_id, background=True)
        self.writer.write(b"x" * nbytes)
        try:
            self.budget.on_progress(nbytes)
        except quotas.QuotaExceeded:  # refused: what the upload session gives back
            self.budget.release_all()
            self.writer.abort()
            raise

    @property
    def lease(self) -> UploadLease:
        return self.budget.lease

    def process_dies(self) -> None:
        """Nobody renews the lease any more: it expired a second ago."""
        leases.keeper.untrack(self.lease.id)
        UploadLease.objects.filter(pk=self.lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


# --- drift ------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_drift_is_corrected_from_what_is_stored_and_each_correction_is_logged(api_as, acme, caplog):
    upload_dataset(api_as("bob"), churn_csv(200))
    size, _ = stored(acme)
    # What three killed uploads left in the old code: bytes and dataset slots nobody holds.
    TenantUsage.objects.filter(tenant=acme).update(storage_bytes=size + 86_500_000, datasets=5, model_versions=2)

    out = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="mlcore.services.usage"):
        call_command("reconcile_usage", stdout=out)

    assert held(acme) == (size, 1, 0)
    assert f"corrected acme: storage_bytes {size + 86_500_000} -> {size}" in out.getvalue()
    assert "corrected acme: datasets 5 -> 1" in out.getvalue()
    assert "corrected acme: model_versions 2 -> 0" in out.getvalue()
    logged = {(r.tenant, r.quota, r.before, r.after) for r in caplog.records if hasattr(r, "quota")}
    assert ("acme", "storage_bytes", size + 86_500_000, size) in logged
    assert ("acme", "datasets", 5, 1) in logged


@pytest.mark.django_db
def test_exact_usage_is_left_alone(api_as, acme, globex, caplog):
    upload_dataset(api_as("bob"), churn_csv(200))
    before = held(acme), held(globex)

    with caplog.at_level(logging.WARNING, logger="mlcore.services.usage"):
        call_command("reconcile_usage", stdout=io.StringIO())

    assert (held(acme), held(globex)) == before
    assert not [r for r in caplog.records if hasattr(r, "quota")]


# --- leases ------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_finished_or_refused_upload_leaves_no_lease_to_renew(api_as, acme):
    bob = api_as("bob")
    upload_dataset(bob, churn_csv(200))
    refused = bob.post("/api/v1/datasets/", {"file": SimpleUploadedFile("bad.csv", b"\xff\xfe\x00bad")},
                       format="multipart")

    assert refused.status_code == 400
    assert not UploadLease.objects.exists()
    assert leases.keeper.holding() == 0
    assert held(acme) == (*stored(acme), 0)


@pytest.mark.django_db
def test_a_live_upload_keeps_its_reservation_and_its_file_through_a_reconcile(api_as, acme, bob):
    upload_dataset(api_as("bob"), churn_csv(200))
    size, _ = stored(acme)
    live = UploadInProgress(acme, bob, 3 * MB)
    TenantUsage.objects.filter(tenant=acme).update(storage_bytes=0, datasets=0)  # drift to correct

    call_command("reconcile_usage", stdout=io.StringIO())
    tasks.reap_upload_leases()

    assert held(acme) == (size + 3 * MB + RESERVE_STEP, 2, 0)
    assert UploadLease.objects.filter(pk=live.lease.pk).exists()
    assert len(part_files(acme)) == 1
    live.budget.release_all()
    live.writer.abort()
    assert held(acme) == (size, 1, 0)


@pytest.mark.django_db
def test_an_upload_whose_process_died_gives_back_its_reservation_and_its_partial_file(api_as, acme, bob, caplog):
    upload_dataset(api_as("bob"), churn_csv(200))
    size, _ = stored(acme)
    dead = UploadInProgress(acme, bob, 5 * MB)
    assert held(acme) == (size + 5 * MB + RESERVE_STEP, 2, 0)
    assert len(part_files(acme)) == 1
    dead.process_dies()

    with caplog.at_level(logging.WARNING):
        assert tasks.reap_upload_leases() == 1  # what beat runs every 15 s

    assert held(acme) == (size, 1, 0)
    assert part_files(acme) == []
    assert not UploadLease.objects.exists()
    assert any(r.message == "reaped the upload lease of a dead process" for r in caplog.records)


@pytest.mark.django_db
def test_an_upload_that_died_after_its_file_was_stored_leaves_no_object(acme, bob):
    dead = UploadInProgress(acme, bob, 2 * MB)
    dead.writer.commit()  # stored, then killed while validating: no dataset row refers to it
    path = storage.object_path(acme, "datasets", dead.budget.object_id)
    assert path.exists()
    dead.process_dies()

    call_command("reconcile_usage", stdout=io.StringIO())

    assert not path.exists()
    assert held(acme) == (0, 0, 0)


@pytest.mark.django_db
def test_a_slow_upload_whose_lease_was_reaped_is_refused_at_its_next_step(acme, bob):
    slow = UploadInProgress(acme, bob, 1 * MB)
    slow.process_dies()  # too slow to renew (frozen for a whole lease): taken for dead
    assert tasks.reap_upload_leases() == 1

    with pytest.raises(leases.LeaseLost) as refused:
        slow.budget.on_progress(1 * MB + RESERVE_STEP + 1)

    assert refused.value.status == 503
    assert held(acme) == (0, 0, 0)
    slow.writer.abort()


@pytest.mark.django_db
def test_a_slow_upload_reaped_before_it_was_kept_becomes_no_dataset(acme, bob):
    content = churn_csv(200)
    budget = UploadBudget(acme, membership_for(user_id=bob.id, tenant=acme))
    budget.on_progress(0)
    budget.on_progress(len(content))
    leases.keeper.untrack(budget.lease.id)
    UploadLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.reap_upload_leases() == 1
    stored_object = _store(acme, budget.object_id, content)  # the stream ends after all

    with tenant_context(acme), pytest.raises(leases.LeaseLost):
        dataset_create(tenant=acme, user=bob, upload=_StoredUpload(acme, stored_object), budget=budget)

    assert stored(acme) == (0, 0)
    assert held(acme) == (0, 0, 0)
    assert not storage.object_path(acme, "datasets", budget.object_id).exists()


def _store(tenant, object_id: str, content: bytes):
    with storage.EncryptedWriter(tenant, "datasets", object_id) as writer:
        writer.write(content)
        return writer.commit()


class _StoredUpload:
    """What the upload handler hands the view once the body is stored."""

    name = "slow.csv"

    def __init__(self, tenant, stored_object):
        self.tenant, self.stored, self.object_id = tenant, stored_object, stored_object.object_id

    def keep(self) -> None:
        pass

    def discard(self) -> None:
        storage.delete_object(self.tenant, "datasets", self.object_id)


@pytest.mark.django_db
def test_a_process_renews_all_its_leases_with_one_update(acme, bob):
    uploads = [UploadInProgress(acme, bob, 1000) for _ in range(3)]
    UploadLease.objects.update(expires_at=timezone.now() + timedelta(seconds=1))

    with CaptureQueriesContext(connection) as queries:
        assert leases.keeper.renew() == 3

    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET search_path")]
    assert len(statements) == 1 and statements[0].startswith("UPDATE")

    assert all(lease.expires_at > timezone.now() + timedelta(seconds=20) for lease in UploadLease.objects.all())
    for upload in uploads:
        upload.budget.release_all()
        upload.writer.abort()


# --- never over the limit while reservations are held ------------------------------------------------
@pytest.mark.django_db
def test_a_reconcile_counts_the_reservations_of_live_uploads_against_the_limit(acme, bob):
    operator_sets(acme, storage_bytes=10 * MB)
    tenant = Tenant.objects.get(pk=acme.pk)
    live = [UploadInProgress(tenant, bob, 3 * MB) for _ in range(3)]  # 9 MB of 10 reserved

    call_command("reconcile_usage", stdout=io.StringIO())

    with pytest.raises(quotas.QuotaExceeded):
        UploadInProgress(tenant, bob, 3 * MB)
    assert held(acme)[0] == 9 * MB
    for upload in live:
        upload.budget.release_all()
        upload.writer.abort()


@pytest.mark.django_db
def test_racing_uploads_that_declare_their_length_finish_as_many_as_fit(acme, bob):
    """Three 1 MB uploads stream in turn, 64 KB at a time, with room for two and a half: reserving
    only what had arrived, each would hold ~0.8 MB when the room ran out and all three would fail.
    Reserving the declared length as they begin, the first two finish and only the third fails."""
    operator_sets(acme, storage_bytes=2 * MB + MB // 2)
    tenant = Tenant.objects.get(pk=acme.pk)
    member = membership_for(user_id=bob.id, tenant=tenant)
    budgets = [UploadBudget(tenant, member, declared_bytes=MB) for _ in range(3)]
    for budget in budgets:
        budget.on_progress(0)
    refused: list[int] = []
    for arrived in range(64 * 1024, MB + 1, 64 * 1024):
        for i, budget in enumerate(budgets):
            if i in refused:
                continue
            try:
                budget.on_progress(arrived)
            except quotas.QuotaExceeded:
                budget.release_all()
                refused.append(i)

    assert refused == [2]
    assert held(acme)[0] == 2 * MB
    for budget in budgets[:2]:
        budget.release_all()
    assert held(acme) == (0, 0, 0)


@pytest.mark.slow
def test_concurrent_uploads_and_reconciles_never_pass_the_limit(acme, bob, committed):
    limit = 10 * MB
    overrides = dict(Tenant.objects.get(pk=acme.pk).limit_overrides or {})
    operator_sets(acme, storage_bytes=limit)
    try:
        tenant = Tenant.objects.get(pk=acme.pk)
        outcomes: list[str] = []
        live: list[UploadInProgress] = []
        peak = [0]
        done = threading.Event()

        def reserve():
            try:
                live.append(UploadInProgress(tenant, bob, 3 * MB))  # left open: its lease stays live
                outcomes.append("reserved")
            except quotas.QuotaExceeded:
                outcomes.append("refused")
            finally:
                connection.close()

        def reconcile_and_watch():
            try:
                while not done.is_set():
                    call_command("reconcile_usage", stdout=io.StringIO())
                    peak[0] = max(peak[0], held(acme)[0])
            finally:
                connection.close()

        watcher = threading.Thread(target=reconcile_and_watch)
        watcher.start()
        threads = [threading.Thread(target=reserve) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        done.set()
        watcher.join(timeout=60)

        assert sorted(outcomes) == ["refused"] * 5 + ["reserved"] * 3
        assert peak[0] <= limit
        assert held(acme)[0] == 9 * MB
        for upload in live:
            upload.budget.release_all()
            upload.writer.abort()
    finally:
        quotas.tenant_limits_set(tenant=Tenant.objects.get(pk=acme.pk), overrides=overrides)

