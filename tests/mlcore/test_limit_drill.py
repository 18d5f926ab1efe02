"""Drill: 20 parallel ~1 MiB uploads issued 0.5 s after an operator lowered acme's storage limit
to fit exactly 5. Committed rows (the `committed` fixture): the threads have their own database
connections, as the workers of a real server would; one process, so one routing cache."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tenants.limits.quotas import tenant_limits_set
from tenants.models import Tenant, TenantUsage
from tests.mlcore.test_limit_changes import operator_sets


@pytest.fixture(autouse=True)
def _production_tenant_cache(settings):
    settings.PORTAL_TENANT_CACHE_SECONDS = 30


# --- drill: parallel uploads just after the limit was lowered ------------------------------------
def big_csv(target_bytes: int, seed: int) -> bytes:
    line = f"{seed},north,12.5,yes,2024-01-03,some text to fill the row\n".encode()
    return b"id,region,price,flag,day,note\n" + line * (target_bytes // len(line))


@pytest.mark.slow
def test_drill_twenty_parallel_uploads_after_a_lowered_limit_never_pass_it(api_as, acme, committed, settings):
    import threading
    import time

    from django.db import connection

    uploads = 20
    files = [big_csv(1024 * 1024, i) for i in range(uploads)]
    size = max(len(f) for f in files)
    bob = api_as("bob")
    clients = [api_as("bob") for _ in range(uploads)]  # one client (and token) per thread
    assert bob.get("/api/v1/me/").status_code == 200  # the routing cache now holds acme
    for client in clients:
        assert client.get("/api/v1/me/").status_code == 200
    before = TenantUsage.objects.get(tenant=acme)
    overrides = dict(Tenant.objects.get(pk=acme.pk).limit_overrides or {})
    storage_limit = before.storage_bytes + 5 * size + size // 2  # exactly 5 fit, a sixth does not
    dataset_limit = before.datasets + 14
    try:
        operator_sets(acme, storage_bytes=storage_limit, datasets=dataset_limit)
        time.sleep(0.5)

        peaks = {"storage_bytes": 0, "datasets": 0}
        stop = threading.Event()

        def watch():
            try:
                while not stop.is_set():
                    now = TenantUsage.objects.get(tenant=acme)
                    peaks["storage_bytes"] = max(peaks["storage_bytes"], now.storage_bytes)
                    peaks["datasets"] = max(peaks["datasets"], now.datasets)
                    time.sleep(0.01)
            finally:
                connection.close()

        start_together = threading.Barrier(uploads)
        responses: list = [None] * uploads

        def send(i: int):
            try:
                start_together.wait(timeout=30)
                responses[i] = upload_file(clients[i], f"drill-{i}", files[i])
            finally:
                connection.close()

        watcher = threading.Thread(target=watch)
        watcher.start()
        threads = [threading.Thread(target=send, args=(i,)) for i in range(uploads)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
        stop.set()
        watcher.join(timeout=10)
        assert not any(t.is_alive() for t in threads), "uploads still running after 180 s"
        assert time.monotonic() - began < 180

        statuses = [r.status_code for r in responses]
        accepted = statuses.count(201)
        assert accepted == 5, statuses  # each reserves its declared length: as many as fit finish
        for response in responses:
            if response.status_code != 201:
                assert response.status_code in (403, 413), (response.status_code, response.content[:300])
                assert response["Content-Type"].startswith("application/problem+json")
                assert response.json()["type"].endswith("quota-exceeded")
        after = TenantUsage.objects.get(tenant=acme)
        assert after.storage_bytes <= storage_limit
        assert after.datasets <= dataset_limit
        assert after.datasets == before.datasets + accepted
        assert peaks["storage_bytes"] <= storage_limit
        assert peaks["datasets"] <= dataset_limit
        print(f"\n{uploads} parallel uploads 0.5 s after the storage limit was lowered to fit 5: "
              f"{accepted} accepted, {statuses.count(413) + statuses.count(403)} refused; peak storage "
              f"{peaks['storage_bytes'] - before.storage_bytes:,} of {storage_limit - before.storage_bytes:,} "
              f"bytes allowed, peak datasets {peaks['datasets']} of {dataset_limit}")
    finally:
        tenant_limits_set(tenant=Tenant.objects.get(pk=acme.pk), overrides=overrides)


def upload_file(client, name: str, content: bytes):
    return client.post("/api/v1/datasets/", {"file": SimpleUploadedFile(f"{name}.csv", content), "name": name},
                       format="multipart")
