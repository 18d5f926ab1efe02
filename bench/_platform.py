"""Shared set-up for benchmarks that need a tenant, people, data and real workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def isolate_queues() -> str:
    """Give this benchmark its own Celery queues (set before Django starts)."""
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    os.environ["PORTAL_QUEUE_PREFIX"] = prefix
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("PORTAL_JOB_STALE_SECONDS", "60")
    return prefix


def make_tenant(slug: str, *, plan: str = "team", members: int = 1):
    """A tenant with `members` members; returns (tenant, [(user, api client)])."""
    from rest_framework.test import APIClient

    from tenants import services

    tenant = services.tenant_create(slug=slug, name=slug.title(), admin_email=f"admin@{slug}.test",
                                    plan=plan, notify=False).tenant
    people = []
    for i in range(members):
        email = f"user{i}@{slug}.test"
        services.membership_add(tenant=tenant, email=email, role="member", actor=None, notify=False)
        from tenants.models import User

        user = User.objects.get(email=email)
        _, secret = services.api_token_create(user=user, tenant=tenant, name="bench", scope="write", days=1)
        client = APIClient(HTTP_HOST=f"{slug}.localhost")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        people.append((user, client))
    return tenant, people


def make_member_client(tenant):
    """An API client with a write token of the tenant's first admin (created with the tenant)."""
    from rest_framework.test import APIClient

    from tenants import services
    from tenants.models import Membership

    admin = Membership.objects.filter(tenant=tenant, role="admin").select_related("user").first().user
    _, secret = services.api_token_create(user=admin, tenant=tenant, name="bench", scope="write", days=1)
    client = APIClient(HTTP_HOST=f"{tenant.slug}.localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def upload(client, content: bytes, filename: str = "data.csv") -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post("/api/v1/datasets/", {"file": SimpleUploadedFile(filename, content)},
                           format="multipart")
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.content[:300]!r}")
    return response.json()


class Worker:
    """A Celery worker on this benchmark's queues and database."""

    def __init__(self, queues: list[str], concurrency: int, log: Path):
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel", "WARNING",
             "--queues", ",".join(queues), "--concurrency", str(concurrency),
             "--hostname", f"bench-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            env=dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings.local", PORTAL_JOB_ISOLATION="fork"),
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        """Ready once the ML stack is imported in the pool processes (a ping job would do too)."""
        from celery import current_app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log.name}")
            replies = current_app.control.ping(timeout=0.5)
            if replies:
                time.sleep(3)  # let each pool process finish importing scikit-learn
                return
        raise RuntimeError("worker not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def wsgi_caller(*, method: str, path: str, host: str, token: str, body: bytes = b"", query: str = "",
                content_type: str = ""):
    """A function that sends one request through Django's WSGI handler in this process, with the
    environ gunicorn builds (no socket, no test client), and checks it answered 200: what the
    profiling benchmarks time and profile."""
    import io

    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()

    def call() -> None:
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
                   "HTTP_HOST": host, "REMOTE_ADDR": "127.0.0.1", "HTTP_AUTHORIZATION": f"Bearer {token}",
                   "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}
        if body:
            environ.update(CONTENT_TYPE=content_type, CONTENT_LENGTH=str(len(body)))
        status = []
        response = handler(environ, lambda s, h, *a: status.append(s))
        b"".join(response)
        response.close()
        assert status[0].startswith("200"), status

    return call


def wait_jobs(client, job_ids: list[int], timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    pending, done = set(job_ids), {}
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} jobs not finished after {timeout}s")
        for job_id in list(pending):
            body = client.get(f"/api/v1/jobs/{job_id}/").json()
            if body["status"] in ("succeeded", "failed", "cancelled"):
                done[job_id] = body
                pending.discard(job_id)
        time.sleep(0.2)
    return [done[j] for j in job_ids]


def clean_redis(*prefixes: str) -> None:
    """A run's keys: its counters and epochs (cache prefix) and its wake-up queues (queue prefix)."""
    from tenants.limits import gate

    redis = gate.client()
    for prefix in prefixes:
        for key in redis.scan_iter(match=f"*{prefix}*", count=1000):
            redis.delete(key)
