"""Drill for `python -m portal.launcher run` (`make run`): a worker killed with SIGKILL comes back on
its own while the web keeps serving, there is always exactly one scheduler, and nothing the launcher
started outlives it.

The launcher runs against this test run's database and Redis with its own queue prefix, port and
var/ folder, without the demo data (PORTAL_RUN_DEMO=0)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from django.conf import settings

from tests.servers import database_url, free_port

WORKERS = 3  # training, prediction (+ default), webhooks (portal/launcher.py _children)

pytestmark = pytest.mark.slow


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _descendants(launcher: subprocess.Popen, recursive: bool = True) -> list[psutil.Process]:
    try:
        return psutil.Process(launcher.pid).children(recursive=recursive)
    except psutil.NoSuchProcess:
        return []


def _command(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _celery(launcher: subprocess.Popen, command: str) -> list[psutil.Process]:
    """The launcher's own `celery … worker` or `celery … beat` processes (not their pool)."""
    return [p for p in _descendants(launcher, recursive=False)
            if "celery" in _command(p) and command in _command(p)]


def _schedulers(launcher: subprocess.Popen) -> list[psutil.Process]:
    """Every descendant running a beat scheduler: its own process, or a worker's --beat."""
    return [p for p in _descendants(launcher) if "beat" in _command(p) or "--beat" in _command(p)]


def _wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def _serves_until_replaced(launcher: subprocess.Popen, port: int, killed: int, timeout: float) -> tuple[bool, bool]:
    """Polls until a new worker replaces `killed`; returns (web answered every poll, replaced)."""
    always_healthy = True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        always_healthy &= _healthy(port)
        pids = {p.pid for p in _celery(launcher, "worker")}
        if len(pids) == WORKERS and killed not in pids:
            return always_healthy, True
        time.sleep(0.3)
    return always_healthy, False


@pytest.fixture
def launcher(committed, tmp_path):
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url(), REDIS_URL=os.environ["REDIS_URL"],
               DJANGO_SETTINGS_MODULE="portal.settings.local", PORT=str(port),
               PORTAL_VAR_DIR=str(tmp_path / "var"), PORTAL_QUEUE_PREFIX=f"l{os.getpid()}-",
               PORTAL_RUN_DEMO="0", WEB_CONCURRENCY="1", PORTAL_TRAINING_CONCURRENCY="1",
               PORTAL_PREDICTION_CONCURRENCY="1")
    log = (tmp_path / "launcher.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "portal.launcher", "run"], env=env,  # noqa: S603
                            cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.port = port
    proc.log_path = tmp_path / "launcher.log"
    proc.seen = []
    yield proc
    # Whatever the drill's outcome, leave no process behind.
    survivors = [*proc.seen, *_descendants(proc)]
    proc.kill()
    proc.wait()
    for process in survivors:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    log.close()


@pytest.mark.alone
def test_a_killed_worker_comes_back_alone_with_one_scheduler_and_nothing_outlives_the_launcher(launcher):
    up = _wait_until(lambda: _healthy(launcher.port) and len(_celery(launcher, "worker")) == WORKERS,
                     timeout=120)
    assert up, launcher.log_path.read_text()[-3000:]
    assert len(_schedulers(launcher)) == 1
    launcher.seen = _descendants(launcher)
    # The prediction worker: the one that used to carry the scheduler (--beat).
    [victim] = [p for p in _celery(launcher, "worker") if any("prediction" in arg for arg in _command(p))]

    victim.send_signal(signal.SIGKILL)
    always_healthy, replaced = _serves_until_replaced(launcher, launcher.port, victim.pid, timeout=15)

    assert always_healthy
    assert replaced, launcher.log_path.read_text()[-3000:]
    assert launcher.poll() is None
    assert len(_schedulers(launcher)) == 1
    assert _wait_until(lambda: _healthy(launcher.port), timeout=5)

    launcher.seen += _descendants(launcher)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=20) == 0
    _, alive = psutil.wait_procs(launcher.seen, timeout=5)
    assert alive == []


@pytest.mark.alone
def test_nothing_outlives_a_launcher_killed_with_sigkill(launcher):
    up = _wait_until(lambda: _healthy(launcher.port) and len(_celery(launcher, "worker")) == WORKERS,
                     timeout=120)
    assert up, launcher.log_path.read_text()[-3000:]
    launcher.seen = _descendants(launcher)

    launcher.kill()
    launcher.wait(timeout=5)

    _, alive = psutil.wait_procs(launcher.seen, timeout=20)
    assert alive == []


def _get(port: int, host: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Host": host})
    response = conn.getresponse()
    return response.status, response.read().decode()


def test_make_run_answers_missing_pages_and_unknown_hosts_with_the_products_own_404(launcher):
    port = launcher.port
    assert _wait_until(lambda: _healthy(port), timeout=120), launcher.log_path.read_text()[-3000:]

    for host, start_link in ((f"localhost:{port}", 'href="/"'),
                             (f"nope.localhost:{port}", f'href="http://localhost:{port}/"')):
        status, body = _get(port, host, "/no/such/page/")
        assert status == 404
        assert "URLconf" not in body and "Django" not in body  # not the technical 404
        assert "/static/css/portal.css" in body
        assert f'{start_link} data-testid="start-page"' in body
