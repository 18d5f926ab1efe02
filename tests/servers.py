"""Real processes for tests: a gunicorn web server and a Celery worker on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The test database as a URL, for processes started by tests."""
    db = connection.settings_dict
    host = db.get("HOST") or ""
    host = quote(host, safe="") if host.startswith("/") else host
    port = f":{db['PORT']}" if db.get("PORT") else ""
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


def process_env(**extra) -> dict[str, str]:
    """Same run (PORTAL_TEST_RUN and, under pytest-xdist, PYTEST_XDIST_WORKER: cache prefix,
    storage, queues) and the test database."""
    return dict(os.environ, DATABASE_URL=database_url(), DJANGO_SETTINGS_MODULE="portal.settings.test",
                PORTAL_JOB_ISOLATION="fork", **extra)


class _Started:
    """A process a test started (self.proc, its log in self.log): stopped gently, then killed."""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Worker(_Started):
    """A Celery worker consuming this test run's job queues."""

    def __init__(self, name: str = "worker", concurrency: int = 2, beat: bool = False, webhooks: bool = False):
        from mlcore.jobs import all_queues
        from tenants.webhooks.delivery import queue_name as webhook_queue

        ARTIFACTS.mkdir(exist_ok=True)
        queues = [*all_queues(), settings.CELERY_TASK_DEFAULT_QUEUE, *([webhook_queue()] if webhooks else [])]
        extra = ["--beat", "--schedule", str(ARTIFACTS / f"{name}-beat-schedule")] if beat else []
        self.log_path = ARTIFACTS / f"{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel", "INFO",
             "--queues", ",".join(queues), "--concurrency", str(concurrency),
             "--hostname", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat", *extra],
            env=process_env(), cwd=settings.BASE_DIR, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log_path}")
            if "ready." in self.log_path.read_text():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s; see {self.log_path}")

    def job_processes(self) -> list:
        """The forked job processes (grandchildren of the worker)."""
        import psutil

        pool = psutil.Process(self.proc.pid).children()
        return [job for p in pool for job in p.children()]

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes (not the job processes: they must die on
        their own when their parent does)."""
        import psutil

        parent = psutil.Process(self.proc.pid)
        for process in parent.children() + [parent]:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()


class WebServer(_Started):
    """gunicorn with sync workers on the test database, as production serves the site (workers
    forked warm: tests/gunicorn_warm.py)."""

    def __init__(self, name: str = "web", workers: int = 2, timeout: int = 10, **env):
        ARTIFACTS.mkdir(exist_ok=True)
        self.port = free_port()
        self.log_path = ARTIFACTS / f"{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--timeout", str(timeout), "--graceful-timeout", "5",
             "--config", str(Path(__file__).with_name("gunicorn_warm.py"))],
            env=process_env(**env), cwd=settings.BASE_DIR, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self._wait_ready(workers)

    def _wait_ready(self, workers: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            if self.log_path.read_text().count("Booting worker") >= workers:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {timeout}s; see {self.log_path}")

    def workers(self) -> list:
        import psutil

        return psutil.Process(self.proc.pid).children()

    def worker_serving(self, client_port: int) -> int | None:
        """The pid of the worker holding the connection from this client port (a /proc scan)."""
        import psutil

        for worker in self.workers():
            try:
                for conn in worker.net_connections(kind="tcp"):
                    if conn.raddr and conn.raddr.port == client_port and conn.laddr.port == self.port:
                        return worker.pid
            except psutil.NoSuchProcess:
                continue
        return None

