"""Upgrades (issue 14): a new migration applied to N tenants in parallel, and what the site feels.

    .venv/bin/python bench/migrate.py [--tenants 1000] [--workers 1,2,4] [--probes 8]
    .venv/bin/python bench/migrate.py --database NAME   # an existing (throw-away!) database's tenants

On a throw-away database (bench/_db.py) the bench creates --tenants tenants (tenant_create, as
bench/scale.py; every tenth gets a dataset), or takes the tenants of --database as they are. A bench
app (`bench_upgrade`, in a temporary folder, a tenant app) is installed for the run; for each entry
of --workers it writes one NEW migration — a column with a default added to the datasets table
(mlcore_dataset, read by every dataset list) plus an index on it, in one transaction, as a real
upgrade does — and applies it with `tenants.upgrades.tenants_upgrade` (what `manage.py
upgrade_tenants` runs): public, the template, then every tenant on that many processes.

Meanwhile a real gunicorn (2 sync workers) serves the site and one thread per probed tenant
(--probes, spread over the tenant order) keeps requesting that tenant's dataset list with a bearer
token. Printed per run: total time, per-tenant migration time p50/p95, and the per-tenant
"unavailability": the longest dataset-list request that overlapped that tenant's own migration
(its lock wait included), against the same requests outside it, and any failed request.
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _db import ROOT, _server_urls, bench_database
from _platform import isolate_queues, make_member_client, upload

APP = "bench_upgrade"
SETTINGS = f"""
from portal.settings.local import *  # noqa: F403

TENANT_APPS = [*TENANT_APPS, "{APP}"]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, "{APP}"]  # noqa: F405
ALLOWED_HOSTS = ["*"]
"""
MIGRATION = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = {dependencies!r}
    operations = [migrations.RunSQL(
        "ALTER TABLE mlcore_dataset ADD COLUMN {column} integer NOT NULL DEFAULT 0; "
        "CREATE INDEX {column}_idx ON mlcore_dataset ({column})",
        "DROP INDEX {column}_idx; ALTER TABLE mlcore_dataset DROP COLUMN {column}",
    )]
'''


def install_app() -> Path:
    """The bench app in a temporary folder, on sys.path, with no migration yet."""
    folder = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    (folder / APP / "migrations").mkdir(parents=True)
    (folder / APP / "__init__.py").write_text("")
    (folder / APP / "migrations" / "__init__.py").write_text("")
    (folder / "bench_upgrade_settings.py").write_text(SETTINGS)
    sys.path.insert(0, str(folder))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_upgrade_settings"
    return folder


def write_migration(folder: Path, step: int, previous: str | None, run: str) -> tuple[str, str]:
    latest = sorted(p.stem for p in (ROOT / "mlcore" / "migrations").glob("0*.py"))[-1]
    dependencies = [("mlcore", latest)] + ([(APP, previous)] if previous else [])
    name, column = f"{step:04d}_b{run}", f"bench_{run}_{step}"
    (folder / APP / "migrations" / f"{name}.py").write_text(
        MIGRATION.format(dependencies=dependencies, column=column))
    importlib.invalidate_caches()
    return name, column


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def use_database(name: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    database, redis = _server_urls()
    os.environ["DATABASE_URL"] = urlunsplit(urlsplit(database)._replace(path=f"/{name}"))
    os.environ["REDIS_URL"] = redis
    os.environ.setdefault("PORTAL_CACHE_PREFIX", "portal-migrate")
    import django

    django.setup()


def create_tenants(n: int) -> None:
    import logging

    from tenants.services import tenant_create

    logging.getLogger("tenants.services").setLevel(logging.WARNING)  # one line per tenant otherwise
    started = time.perf_counter()
    for i in range(n):
        tenant = tenant_create(slug=f"m{i:05d}", name=f"Upgrade {i}", admin_email=f"admin@m{i:05d}.test",
                               notify=False).tenant
        if i % 10 == 0:
            upload(make_member_client(tenant), b"a,b\n1,2\n3,4\n", filename="data.csv")
        if (i + 1) % 100 == 0:
            print(f"  {i + 1} tenants created, {time.perf_counter() - started:.0f} s", flush=True)


def probe_tokens(count: int) -> list[tuple[str, str]]:
    """(slug, bearer secret) of `count` tenants spread evenly over the migration order."""
    from tenants import services
    from tenants.models import Membership, Tenant

    tenants = list(Tenant.objects.exclude(schema_name="public").order_by("id"))
    step = max(1, len(tenants) // count)
    out = []
    for tenant in tenants[step // 2::step][:count]:
        admin = Membership.objects.filter(tenant=tenant, role="admin").select_related("user").first().user
        _, secret = services.api_token_create(user=admin, tenant=tenant, name="bench", scope="read", days=1)
        out.append((tenant.slug, secret))
    return out


class Probe(threading.Thread):
    """Requests one tenant's dataset list over and over, recording (start, end, status)."""

    def __init__(self, port: int, slug: str, secret: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.slug, self.stop = port, slug, stop
        self.headers = {"Host": f"{slug}.localhost", "Authorization": f"Bearer {secret}"}
        self.samples: list[tuple[float, float, int]] = []

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            began = time.time()
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                conn.request("GET", "/api/v1/datasets/", headers=self.headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status, conn = 0, None
            self.samples.append((began, time.time(), status))
            time.sleep(0.02)


def start_web(port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings.local", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "--workers", "2", "--timeout", "300",
         "--bind", f"127.0.0.1:{port}"], env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/healthz")
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"gunicorn did not start; see {log}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailability(probes: list[Probe], windows: dict[str, tuple[float, float]], since: float) -> dict:
    """Per probed tenant: longest request overlapping its own migration vs the ones outside it
    (from `since`: the warm-up requests are left out)."""
    inside, outside, failed, seen = [], [], 0, 0
    for probe in probes:
        start, end = windows.get(probe.slug, (0.0, 0.0))
        samples = [sample for sample in probe.samples if sample[0] >= since]
        overlapping = [(b, e, s) for b, e, s in samples if b <= end and e >= start]
        outside += [(e - b) * 1000 for b, e, s in samples if (b, e, s) not in overlapping and s == 200]
        failed += sum(1 for _, _, s in samples if s != 200)
        if overlapping:
            seen += 1
            inside.append(max(e - b for b, e, _ in overlapping) * 1000)
    return {"inside": inside, "outside": outside, "failed": failed, "seen": seen}


def run_once(folder: Path, step: int, previous: str | None, run: str, workers: int, port: int,
             tokens: list[tuple[str, str]]) -> str:
    from tenants.upgrades import tenants_upgrade

    name, column = write_migration(folder, step, previous, run)
    stop = threading.Event()
    probes = [Probe(port, slug, secret, stop) for slug, secret in tokens]
    for probe in probes:
        probe.start()
    deadline = time.monotonic() + 120
    while min(len(p.samples) for p in probes) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)  # warm: the first requests of a gunicorn worker import half the stack
    time.sleep(1.0)  # a baseline before the first tenant
    t0 = time.time()
    report = tenants_upgrade(workers=workers)
    time.sleep(0.5)
    stop.set()
    for probe in probes:
        probe.join(timeout=150)
    if report.halted:
        raise SystemExit(report.halted)
    times = [r.seconds for r in report.results if r.status == "migrated"]
    windows = {r.tenant: (r.started, r.started + r.seconds) for r in report.results}
    u = unavailability(probes, windows, since=t0 - 1.0)
    print(f"\n{workers} worker(s): migration {name} ({column} + index on mlcore_dataset) on "
          f"{len(report.results)} tenants in {report.seconds:.1f} s "
          f"({len(report.results) / report.seconds:.1f} tenants/s); migrated {len(times)}, "
          f"up to date {report.count('up to date')}, failed {len(report.failed)}")
    if times:
        print(f"  per tenant: p50 {statistics.median(times):.3f} s, p95 {percentile(times, 95):.3f} s, "
              f"max {max(times):.3f} s")
    if u["inside"]:
        base = u["outside"] or [0.0]
        print(f"  unavailability ({u['seen']} probed tenants, dataset list through gunicorn): longest request "
              f"during the tenant's own migration p50 {statistics.median(u['inside']):.0f} ms, max "
              f"{max(u['inside']):.0f} ms; outside it p50 {statistics.median(base):.0f} ms, "
              f"p99 {percentile(base, 99):.0f} ms; failed requests {u['failed']}")
    else:
        print(f"  unavailability: no probe request overlapped a probed tenant's migration; failed {u['failed']}")
    for r in report.failed[:5]:
        print(f"  FAILED {r.tenant}: {r.error}")
    return name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--database", default="", help="use this existing database's tenants (throw-away!)")
    parser.add_argument("--workers", default="1,2,4", help="comma-separated process counts, one run each")
    parser.add_argument("--probes", type=int, default=8, help="tenants whose dataset list is probed")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    folder = install_app()
    isolate_queues()
    run = uuid.uuid4().hex[:6]
    if args.database:
        use_database(args.database)
        from contextlib import nullcontext

        context = nullcontext(args.database)
    else:
        context = bench_database("migrate")
    with context as database:
        from tenants.models import Tenant

        if not args.database:
            began = time.perf_counter()
            create_tenants(args.tenants)
            print(f"{args.tenants} tenants created in {time.perf_counter() - began:.0f} s")
        count = Tenant.objects.exclude(schema_name="public").count()
        print(f"database {database}: {count} tenants")
        tokens = probe_tokens(args.probes)
        port = free_port()
        web = start_web(port, folder / "gunicorn.log")
        try:
            previous = None
            for step, w in enumerate(workers, start=1):
                previous = run_once(folder, step, previous, run, w, port, tokens)
        finally:
            web.terminate()
            web.wait(timeout=30)


if __name__ == "__main__":
    main()
