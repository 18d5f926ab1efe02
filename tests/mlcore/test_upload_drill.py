"""Drill: web workers die in the middle of uploads; the quota they reserved comes back.

Real gunicorn (2 sync workers, --timeout 10) on the test database and a real Celery worker with
beat, which runs the lease reaper every 15 s as in production (PORTAL_UPLOAD_LEASE_SECONDS stays at
its default, 30 s). Bob streams uploads by hand over a socket: five times the worker serving one is
killed with SIGKILL once its reservation is visible, then one upload is sent at 250 KB/s until
gunicorn's timeout kills its worker. Within a minute of the last death, acme's held usage must equal
what its rows hold, with no lease, no .part file and no stored object without a dataset left.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid

import pytest
from django.db import connection

from mlcore import storage
from tenants.models import TenantUsage, UploadLease
from tenants.services import api_token_create
from tests.factories import host
from tests.servers import WebServer, Worker

pytestmark = [pytest.mark.slow, pytest.mark.alone]

MB = 1024 * 1024
KILLS = 5
SETTLE_LIMIT_SECONDS = 60


def csv_body(target_bytes: int) -> bytes:
    line = b"7,north,12.5,yes,2024-01-03,some text to fill the row\n"
    return b"id,region,price,flag,day,note\n" + line * (target_bytes // len(line))


class StreamedUpload:
    """A multipart POST /api/v1/datasets/ whose body is sent piece by piece."""

    def __init__(self, port: int, token: str, name: str, content: bytes):
        boundary = uuid.uuid4().hex
        self.head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n"
                     f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}.csv\"\r\n"
                     f"Content-Type: text/csv\r\n\r\n").encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.content = content
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.local_port = self.sock.getsockname()[1]
        length = len(self.head) + len(content) + len(self.tail)
        self.sock.sendall((f"POST /api/v1/datasets/ HTTP/1.1\r\nHost: {host('acme')}\r\n"
                           f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
                           f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                           f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode() + self.head)
        self.sent = 0

    def send(self, nbytes: int) -> None:
        piece = self.content[self.sent:self.sent + nbytes]
        self.sock.sendall(piece)
        self.sent += len(piece)

    def finish(self) -> int:
        self.send(len(self.content))
        self.sock.sendall(self.tail)
        answer = b""
        while chunk := self.sock.recv(65536):
            answer += chunk
        self.sock.close()
        return int(answer.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


def held(tenant) -> tuple[int, int]:
    usage = TenantUsage.objects.get(tenant=tenant)
    return usage.storage_bytes, usage.datasets


def stored(tenant) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT COALESCE(SUM(size_bytes), 0), COUNT(*) FROM "{tenant.schema_name}".mlcore_dataset')  # noqa: S608
        size, count = cursor.fetchone()
    return int(size), int(count)


def files(tenant) -> tuple[int, int]:
    """(.part files, stored dataset objects) in acme's storage."""
    folder = storage.object_path(tenant, "datasets", uuid.UUID(int=0)).parent
    return len(list(folder.glob("*.part"))), len(list(folder.glob("*.enc")))


def wait_for(condition, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


@pytest.fixture
def servers(committed):
    web = WebServer("drill-web", workers=2, timeout=10)
    reaper = Worker("drill-worker", concurrency=1, beat=True)
    yield web, reaper
    web.stop()
    reaper.stop()


def test_drill_kill_9_mid_upload_and_an_upload_past_the_timeout_give_every_reservation_back(acme, bob, servers):
    web, reaper = servers
    _, token = api_token_create(user=bob, tenant=acme, name="drill", scope="write", days=1)
    assert StreamedUpload(web.port, token, "kept", csv_body(2 * MB)).finish() == 201
    assert held(acme) == stored(acme)
    baseline = held(acme)

    for i in range(KILLS):
        upload = StreamedUpload(web.port, token, f"killed-{i}", csv_body(30 * MB))
        upload.send(12 * MB)
        # Mid-stream: the reservation and the partial file are there when the worker dies.
        wait_for(lambda: held(acme)[0] > baseline[0] + 8 * MB and files(acme)[0] > 0, 30, "reservation")
        pid = web.worker_serving(upload.local_port)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        upload.close()
        wait_for(lambda dead=pid: len(web.workers()) == 2 and dead not in [w.pid for w in web.workers()],
                 30, "a new worker")
    leaked_after_kills = held(acme)[0] - baseline[0], held(acme)[1] - baseline[1]

    slow = StreamedUpload(web.port, token, "slow", csv_body(30 * MB))
    began = time.monotonic()
    slow.send(256 * 1024)
    wait_for(lambda: web.worker_serving(slow.local_port) is not None, 10, "a worker on the slow upload")
    pid = web.worker_serving(slow.local_port)
    try:
        while time.monotonic() - began < 40 and slow.sent < len(slow.content):
            slow.send(25 * 1024)  # 250 KB/s
            time.sleep(0.1)
    except OSError:
        pass  # its worker was killed by gunicorn's timeout
    slow.close()
    assert time.monotonic() - began < 40, "gunicorn's timeout did not stop the slow upload"
    wait_for(lambda: pid not in [w.pid for w in web.workers()], 30, "the slow upload's worker gone")
    slow_died = time.monotonic() - began
    assert held(acme) > baseline  # the dead workers' reservations are still held here

    settled = wait_for(
        lambda: held(acme) == stored(acme) == baseline and files(acme) == (0, baseline[1])
        and not UploadLease.objects.exists(),
        SETTLE_LIMIT_SECONDS, "usage exact with no partial file")
    log = reaper.log_path.read_text()
    reaped, corrected = log.count("reaped the upload lease of a dead process"), log.count("usage drift corrected")
    assert reaped == KILLS + 1
    print(f"\nkill -9 mid-upload x {KILLS} (held {leaked_after_kills[0] / MB:.1f} MB and "
          f"{leaked_after_kills[1]} dataset slots more than stored), upload at 250 KB/s past gunicorn's "
          f"--timeout 10 x 1 (its worker gone after {slow_died:.0f} s): usage exact "
          f"{settled:.0f} s after the last death, {files(acme)[0]} partial files, {reaped} leases reaped, "
          f"{corrected} drift corrections needed")
