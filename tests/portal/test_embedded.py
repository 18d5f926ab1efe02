"""portal/embedded.py: the default that needs only Python, booted for real.

Started the way `make run` starts it (embedded.provide, what the launcher calls), then used by
`manage.py` and gunicorn that find it, without starting anything, through var/embedded.json."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from portal import embedded
from tests.servers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def var_dir():
    """Outside pytest's own temporary folders: any pytest session that starts on this machine
    makes /tmp/pytest-of-<user> private again, and the server runs as another user (pgserver, when
    we are root) that must reach its data folder."""
    folder = Path(tempfile.mkdtemp(prefix="portal-embedded-"))
    folder.chmod(0o755)
    yield folder / "var"
    if (folder / "var").exists():
        embedded.stop(folder / "var")  # whatever a failed test left running
    shutil.rmtree(folder, ignore_errors=True)


def test_the_embedded_servers_start_migrate_serve_a_request_and_stop(var_dir):
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "PORTAL_TEST_RUN", "DJANGO_SETTINGS_MODULE"}}
    env.update(PORTAL_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="portal.settings.local")
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]

    # 1. start (as the launcher does) + migrate: manage.py reads the URLs the launcher recorded.
    subprocess.run([sys.executable, "-c", "from portal import embedded; embedded.provide({})"],
                   env=env, check=True, cwd=settings.BASE_DIR, timeout=300)
    subprocess.run([*manage, "setup_platform", "-v", "0"], env=env, check=True, cwd=settings.BASE_DIR,
                   timeout=300)
    urls = json.loads((var_dir / "embedded.json").read_text())
    assert "%2Fpg" in urls["DATABASE_URL"] or "/pg" in urls["DATABASE_URL"]
    assert urls["REDIS_URL"].startswith("unix://")

    # 2. one request through a real server process.
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind",
                               f"127.0.0.1:{port}", "--workers", "1"], env=env, cwd=settings.BASE_DIR)
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.2)
        assert body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": "localhost"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert b"Go to your workspace" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=15)

    # 3. stop both.
    subprocess.run([sys.executable, "-c", "from portal import embedded; embedded.stop()"], env=env,
                   check=True, cwd=settings.BASE_DIR, timeout=60)
    assert not (var_dir / "pg" / "postmaster.pid").exists()
    assert not (var_dir / "redis" / "redis.pid").exists()
    assert not (var_dir / "embedded.json").exists()  # settings no longer point at them
