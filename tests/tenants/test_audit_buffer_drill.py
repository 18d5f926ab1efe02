"""The drill for the buffered access log (tenants/auditing/audit.py, migration 0011): requests
served by a real gunicorn, whose processes are then killed with SIGKILL before any flush ran (no
beat); a flush in another process killed between its chain INSERT and its DELETE; a last flush by
yet another process. Every served request ends with exactly one chain entry, in the order it was
served, and verify_audit passes."""

import http.client
import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from tenants.models import AuditEvent, PendingAuditEvent
from tenants.services import api_token_create
from tests import factories
from tests.servers import WebServer, process_env

pytestmark = [pytest.mark.slow, pytest.mark.alone]

REQUESTS = 60
BATCH = 20


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


def manage(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *args], env=process_env(), cwd=settings.BASE_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def other_connection() -> psycopg.Connection:
    params = {k: v for k, v in connection.get_connection_params().items()
              if k in ("dbname", "host", "port", "user", "password", "sslmode", "sslrootcert")}
    return psycopg.connect(**params, connect_timeout=10)


def backend_waiting_on_delete() -> int | None:
    """The PostgreSQL backend of a flush blocked in its DELETE of buffered entries."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND query LIKE 'DELETE FROM tenants_pendingauditevent%%'")
        row = cursor.fetchone()
    return row[0] if row else None


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def test_drill_kill_9_of_the_web_and_of_a_flush_loses_and_doubles_no_entry(committed, acme, bob):
    _, token = api_token_create(user=bob, tenant=acme, name="drill", scope="read", days=1)
    run = uuid.uuid4().hex[:10]
    ids = [f"drill-{run}-{i:03d}" for i in range(REQUESTS)]
    web = WebServer("audit-drill-web", workers=2, timeout=10)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
        for request_id in ids:
            conn.request("GET", "/api/v1/datasets/", headers={
                "Host": factories.host("acme"), "Authorization": f"Bearer {token}",
                "X-Request-Id": request_id})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        conn.close()
        # Right after the last response, before anything flushed: the whole web tier dies.
        for worker in web.workers():
            os.kill(worker.pid, signal.SIGKILL)
        os.kill(web.proc.pid, signal.SIGKILL)
        web.proc.wait(10)
    finally:
        web.stop()
    served = PendingAuditEvent.objects.filter(tenant_id=acme.id, request_id__in=ids)
    assert served.count() == REQUESTS
    assert not AuditEvent.objects.filter(tenant_id=acme.id, request_id__in=ids).exists()

    # A flush (another process) killed between its chain INSERT and its DELETE: a row lock held
    # here on an entry of its second batch stops it there, after its first batch committed.
    blocker = other_connection()
    blocker.execute("SELECT id FROM tenants_pendingauditevent WHERE id = %s FOR UPDATE",
                    [served.order_by("id").values_list("id", flat=True)[BATCH + 5]])
    flusher = manage("flush_audit", "--tenant", "acme", "--batch", str(BATCH))
    try:
        wait_for(lambda: backend_waiting_on_delete() is not None, 30, "the flush blocked in its DELETE")
        backend = backend_waiting_on_delete()
        os.kill(flusher.pid, signal.SIGKILL)
        flusher.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    wait_for(lambda: not backend_alive(backend), 30, "the killed flush's transaction rolled back")
    in_chain = AuditEvent.objects.filter(tenant_id=acme.id, request_id__in=ids)
    assert in_chain.count() == BATCH  # the first batch only: the second was rolled back
    assert served.count() == REQUESTS - BATCH

    last = manage("flush_audit")
    out, _ = last.communicate(timeout=60)
    assert last.returncode == 0, out
    entries = list(in_chain.order_by("seq").values_list("request_id", "seq"))
    assert [request_id for request_id, _ in entries] == ids  # once each, in the order served
    assert [seq for _, seq in entries] == sorted(seq for _, seq in entries)
    assert not served.exists()

    verify = manage("verify_audit", "--tenant", "acme")
    out, _ = verify.communicate(timeout=60)
    assert verify.returncode == 0, out
    assert "acme: intact" in out
    print(f"\n{REQUESTS} requests served, gunicorn killed (-9) before any flush: {REQUESTS} buffered; "
          f"a flush killed (-9) between INSERT and DELETE of its 2nd batch: {BATCH} appended, "
          f"{REQUESTS - BATCH} left buffered; the next flush: {len(entries)} entries, one per request, "
          "in order; verify_audit: intact")
