"""Thousands of tenants (issue 14): does anything per request grow with the number of tenants?

    .venv/bin/python bench/scale.py [--tenants 1000] [--workers 1] [--requests 200] [--rounds 3]
                                    [--visit 300] [--keep] [--database NAME]

Two throw-away databases (bench/_db.py) on the same server: a small one with two tenants, and a
large one with the same two tenants (data and a trained model each) and then tenants created up to
--tenants (a tenth of them with a dataset), timing every creation. Then, alternating between the
two databases for --rounds rounds so that the machine's load hits both alike, a fresh process per
round measures through the whole request path in-process (Django's test client: host routing,
token or session, membership, gate, quota, audit — without a network hop) the p50/p99 of the
dashboard page, the dataset list and an online prediction, and the SQL statements each runs; then,
as a web process, its memory after serving the dashboards of --visit different tenants (twice
round), and as a worker process (jobs forked, as `PORTAL_JOB_ISOLATION=fork` runs them) its memory
after training jobs of --visit/10 different tenants. In the small database the same number of
visits and jobs go to its two tenants, so memory that grows with the tenants a process has seen
shows as a difference. Printed: creation time per tenant (p50/p95) by stretch as N grows,
PostgreSQL's catalog (relations, database size), the latency and statement counts and process
memory with 2 tenants against N. Target: N within 20% of 2, the same statements, no memory growth
per tenant seen. Tenants are created on --workers processes at once. --keep keeps the large
database (its name is printed); --database NAME takes one kept earlier, grows it to --tenants if it
holds fewer, and measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _db import bench_database, drop_database
from _platform import isolate_queues, make_member_client, make_tenant, upload

ROWS = [{"tenure": 12, "monthly": 70.5, "plan": "basic", "autopay": "no"}]


def churn_csv(rows: int, seed: int) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = ["tenure,monthly,plan,autopay,churned"]
    for _ in range(rows):
        tenure, monthly = int(rng.integers(1, 72)), round(float(rng.normal(60, 20)), 2)
        plan, autopay = rng.choice(["basic", "plus", "pro"]), rng.choice(["yes", "no"])
        churned = "yes" if -0.05 * tenure + 0.03 * monthly + rng.normal(0, 0.5) > 0.8 else "no"
        lines.append(f"{tenure},{monthly},{plan},{autopay},{churned}")
    return ("\n".join(lines) + "\n").encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Probe:
    """The three requests of one tenant: dashboard (session), dataset list and online predict (token)."""

    def __init__(self, tenant, user, api, model_id: int):
        from django.test import Client

        from tenants.accounts.access import SESSION_TENANT_KEY

        self.api, self.model_id = api, model_id
        self.page = Client(HTTP_HOST=f"{tenant.slug}.localhost")
        self.page.force_login(user)
        session = self.page.session
        session[SESSION_TENANT_KEY] = tenant.schema_name
        session.save()

    def calls(self):
        return {
            "dashboard page (/)": lambda: self.page.get("/"),
            "dataset list (API)": lambda: self.api.get("/api/v1/datasets/"),
            "online prediction (API)": lambda: self.api.post(f"/api/v1/models/{self.model_id}/predict/",
                                                             {"rows": ROWS}, format="json"),
        }

    def measure(self, n: int) -> dict[str, dict]:
        from django.db import connection

        out = {}
        for name, call in self.calls().items():
            for _ in range(10):  # warm caches, as a serving process is
                assert call().status_code == 200, name
            statements = [0]

            def count(execute, sql, params, many, context, statements=statements):
                statements[0] += 1
                return execute(sql, params, many, context)

            with connection.execute_wrapper(count):  # (the test client's request_started resets
                call()                                # connection.queries, so count them here)
            times = []
            for _ in range(n):
                began = time.perf_counter()
                response = call()
                times.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (name, response.status_code)
            out[name] = {"p50": statistics.median(times), "p99": percentile(times, 99),
                         "queries": statements[0]}
        return out


def seed_tenant(slug: str, *, train: bool):
    tenant, [(user, api)] = make_tenant(slug)
    dataset = upload(api, churn_csv(300, seed=len(slug)), filename="churn.csv")
    model_id = None
    if train:
        from mlcore.jobs import queue_for
        from mlcore.jobs.runner import run_available

        job = api.post("/api/v1/training-jobs/", {"dataset": dataset["id"], "model_name": "Churn",
                                                 "target": "churned", "algorithm": "logistic_regression"},
                       format="json").json()
        run_available(queue_for("training"))
        model_id = api.get(f"/api/v1/jobs/{job['id']}/").json()["result"]["model"]
    return tenant, user, api, model_id


def catalog() -> tuple[int, int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class")
        relations = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%%'")
        schemas = cursor.fetchone()[0]
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
    return relations, schemas, size


def autovacuum_workers() -> int:
    """PostgreSQL's autovacuum workers busy now (on any database): after thousands of schemas are
    created they vacuum and analyze the catalog for a while, taking CPU from the requests timed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
        return cursor.fetchone()[0]


CATALOG = ("pg_class", "pg_attribute", "pg_type", "pg_depend", "pg_constraint", "pg_index", "pg_namespace",
           "pg_attrdef", "pg_sequence", "pg_statistic")


def vacuum(database: str) -> float:
    """VACUUM (ANALYZE) of the catalog tables tenant creation fills (and leaves dead rows in), as
    autovacuum would or an operator after a bulk onboarding; returns its seconds."""
    with bench_database(existing=database):
        from django.db import connection

        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) " + ", ".join(f"pg_catalog.{t}" for t in CATALOG))
        return time.perf_counter() - began


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def python_heap_mb() -> tuple[float, float]:
    """(live Python objects, pymalloc arenas) in MB, after a collection: what the process keeps
    against the memory its allocator holds for it. CPython prints these statistics to its stderr."""
    import gc
    import re

    gc.collect()
    read_end, write_end = os.pipe()
    saved = os.dup(2)
    try:
        os.dup2(write_end, 2)
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write_end)
    with os.fdopen(read_end) as stream:
        text = stream.read()

    def figure(label: str) -> float:
        return int(re.search(rf"{label}\s*=\s*([0-9,]+)", text).group(1).replace(",", "")) / 2**20

    return figure("# bytes in allocated blocks"), figure(r"\d+ arenas \* \d+ bytes/arena")


def memory() -> dict:
    live, arenas = python_heap_mb()
    return {"rss": rss_mb(), "live": live, "arenas": arenas}


def create_tenants(first: int, last: int, step: int = 1) -> list[list[float]]:
    """Tenants s<first>, s<first+step>... below s<last>; returns [[index, seconds], ...]."""
    from tenants.services import tenant_create

    created: list[list[float]] = []
    started = time.perf_counter()
    for i in range(first, last, step):
        began = time.perf_counter()
        tenant = tenant_create(slug=f"s{i:05d}", name=f"Scale {i}", admin_email=f"admin@s{i:05d}.test",
                               notify=False).tenant
        created.append([i, time.perf_counter() - began])
        if i % 10 == 0:  # some data in a tenth of them: a dataset row and its stored file
            upload(make_member_client(tenant), churn_csv(50, seed=i), filename="data.csv")
        if len(created) % 100 == 0:
            print(f"  s{i:05d} created, {len(created)} by this process in {time.perf_counter() - started:.0f} s",
                  flush=True)
    return created


def build() -> dict:
    """A kept database with the two measured tenants (data and a trained model each)."""
    os.environ["PORTAL_JOB_ISOLATION"] = "inline"  # train the two measured tenants' models here
    with bench_database("scale", keep=True) as name:
        for slug in ("scalea", "scaleb"):
            seed_tenant(slug, train=True)
    return {"database": name}


def grow_part(database: str, first: int, last: int, step: int) -> dict:
    with bench_database(existing=database):
        return {"created": create_tenants(first, last, step)}


def tenant_count(database: str) -> tuple[int, int]:
    """(tenants, next free index of s<index>) of a kept database."""
    return tuple(subprocess_json(["--count", database])["count"])


def count(database: str) -> dict:
    with bench_database(existing=database):
        from tenants.models import Tenant

        slugs = list(Tenant.objects.filter(slug__regex=r"^s[0-9]{5}$").values_list("slug", flat=True))
        total = Tenant.objects.exclude(schema_name="public").count()
    return {"count": [total, max((int(s[1:]) for s in slugs), default=1) + 1]}


def grow(database: str, target: int, workers: int) -> tuple[list[list[float]], float]:
    """Create tenants until the database holds `target`, on `workers` processes at once."""
    from concurrent.futures import ThreadPoolExecutor

    have, first = tenant_count(database)
    last = first + max(0, target - have)
    if last == first:
        return [], 0.0
    print(f"  {have} tenants in {database}: creating {last - first} more on {workers} process(es)", flush=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda k: subprocess_json(
            ["--grow-part", database, str(first + k), str(last), str(workers)], echo=True), range(workers)))
    created = sorted(item for part in parts for item in part["created"])
    return created, time.perf_counter() - started


def subprocess_json(args: list[str], echo: bool = False) -> dict:
    """Run this script in a fresh process (one Django set-up per database); its last line is JSON."""
    with tempfile.TemporaryFile("w+") as log:  # (a pipe left unread would fill and stop the child)
        proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=log, text=True)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if echo and not line.startswith("{"):
                print(line, end="", flush=True)
        if proc.wait() != 0:
            log.seek(0)
            raise RuntimeError(f"{args} failed:\n{''.join(lines)[-2000:]}\n{log.read()[-4000:]}")
    return json.loads(lines[-1])


def visit_dashboards(slugs: list[str], visits: int) -> None:
    """Serve the dashboard of each tenant in turn (a session per tenant), `visits` requests in all."""
    from django.test import Client

    from tenants.accounts.access import SESSION_TENANT_KEY
    from tenants.models import Membership, Tenant

    clients = []
    for slug in slugs:
        tenant = Tenant.objects.get(slug=slug)
        user = Membership.objects.filter(tenant=tenant, role="admin").select_related("user").first().user
        client = Client(HTTP_HOST=f"{slug}.localhost")
        client.force_login(user)
        session = client.session
        session[SESSION_TENANT_KEY] = tenant.schema_name
        session.save()
        clients.append(client)
    for i in range(visits):
        assert clients[i % len(clients)].get("/").status_code == 200


def train_jobs(slugs: list[str], jobs: int) -> None:
    """Training jobs of these tenants' datasets, run here as a worker runs them (each forked)."""
    from django_tenants.utils import tenant_context

    from mlcore.jobs import queue_for
    from mlcore.jobs.runner import run_available
    from mlcore.models import Dataset
    from tenants.models import Tenant

    for i in range(jobs):
        tenant = Tenant.objects.get(slug=slugs[i % len(slugs)])
        with tenant_context(tenant):
            dataset = Dataset.objects.order_by("id").first()
        api = make_member_client(tenant)
        response = api.post("/api/v1/training-jobs/", {"dataset": dataset.id, "model_name": f"M{i}",
                                                       "target": "churned", "algorithm": "logistic_regression"},
                            format="json")
        assert response.status_code in (201, 202), response.content[:300]
        run_available(queue_for("training"))


def measure(database: str, requests: int, visit: int) -> dict:
    """One round in this process (run as a subprocess of main): latency, statements, memory."""
    os.environ["PORTAL_JOB_ISOLATION"] = "fork"
    with bench_database(existing=database):
        from django.conf import settings

        from tenants import services
        from tenants.models import Membership, Tenant, User

        settings.ALLOWED_HOSTS = ["*"]
        probes = []
        for slug in ("scalea", "scaleb"):
            tenant = Tenant.objects.get(slug=slug)
            user = User.objects.get(email=f"user0@{slug}.test")
            _, secret = services.api_token_create(user=user, tenant=tenant, name="probe", scope="write", days=1)
            from rest_framework.test import APIClient

            api = APIClient(HTTP_HOST=f"{slug}.localhost")
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
            model_id = api.get("/api/v1/models/").json()["results"][0]["id"]
            probes.append(Probe(tenant, user, api, model_id))
        vacuums = autovacuum_workers()
        out = {"latency": [p.measure(requests) for p in probes], "mem_probed": memory()}
        out["autovacuum"] = max(vacuums, autovacuum_workers())
        with_data = list(Membership.objects.filter(role="admin", tenant__slug__startswith="s")
                         .exclude(tenant__slug__startswith="scale")
                         .order_by("tenant__slug").values_list("tenant__slug", flat=True).distinct())
        slugs = with_data[:visit] if len(with_data) >= visit else ["scalea", "scaleb"]
        out["web_tenants"] = len(slugs)
        visit_dashboards(slugs, visit)
        out["mem_web_1"] = memory()
        visit_dashboards(slugs, visit)
        out["mem_web_2"] = memory()
        jobs = max(2, visit // 10)
        data_slugs = [s for s in with_data if int(s[1:]) % 10 == 0] if slugs[0] != "scalea" else slugs
        data_slugs = data_slugs[:jobs]
        out["worker_tenants"] = len(data_slugs)
        train_jobs(data_slugs, jobs)
        out["mem_worker"] = memory()
        out["catalog"] = catalog()
    return out


def run_round(database: str, args) -> dict:
    return subprocess_json(["--measure", database, "--requests", str(args.requests), "--visit", str(args.visit)])


def report(n: int, created: list[list[float]], total: float, small: list[dict], large: list[dict],
           workers: int) -> None:
    if created:
        print(f"\nscale: {n} tenants; {len(created)} created in {total:.0f} s on {workers} process(es) "
              f"({len(created) / total:.1f} per second)")
        print(f"{'creation, tenants numbered':<28}{'p50 s':>10}{'p95 s':>10}")
        stretch = max(1, len(created) // 5)
        for start in range(0, len(created), stretch):
            part = created[start:start + stretch]
            seconds = [t for _, t in part]
            print(f"{f'{int(part[0][0])}-{int(part[-1][0])}':<28}{statistics.median(seconds):>10.3f}"
                  f"{percentile(seconds, 95):>10.3f}")
    cs, cl = small[-1]["catalog"], large[-1]["catalog"]
    print(f"catalog: {cs[0]:,} -> {cl[0]:,} relations, {cs[1]} -> {cl[1]} tenant schemas, "
          f"database {cs[2] / 2**20:,.0f} -> {cl[2] / 2**20:,.0f} MB")
    print(f"{len(small)} rounds alternating the 2-tenant and the {n}-tenant database; per request: "
          f"median over rounds and the two measured tenants")
    print(f"{'request':<26}{'p50 @2':>9}{'p50 @N':>9}{'p99 @2':>9}{'p99 @N':>9}{'ratio':>7}{'SQL @2/@N':>11}")
    worst = 0.0
    for name in small[0]["latency"][0]:
        def over(rounds, key, name=name):
            return statistics.median([m[name][key] for r in rounds for m in r["latency"]])
        b, a, b99, a99 = over(small, "p50"), over(large, "p50"), over(small, "p99"), over(large, "p99")
        qb, qa = small[0]["latency"][0][name]["queries"], large[0]["latency"][0][name]["queries"]
        worst = max(worst, a / b)
        print(f"{name:<26}{b:>9.2f}{a:>9.2f}{b99:>9.2f}{a99:>9.2f}{a / b:>7.2f}{f'{qb}/{qa}':>11}")
    busy = [r.get("autovacuum", 0) for r in large]
    print(f"autovacuum workers busy while the {n}-tenant rounds were timed: {busy}")
    print(f"target: p50 with {n} tenants within 20% of 2 tenants -> {'met' if worst <= 1.2 else 'NOT met'} "
          f"(worst ratio {worst:.2f}); times in ms, in-process (no network)")

    def mem(label: str, key: str, note: str = "") -> None:
        row = []
        for part in ("rss", "live", "arenas"):
            row += [statistics.median([r[key][part] for r in rounds]) for rounds in (small, large)]
        print(f"{label:<40}" + "".join(f"{mb:>8.1f}" for mb in row) + note)

    web, jobs = large[0]["web_tenants"], large[0]["worker_tenants"]
    print(f"{'process memory, MB (median over rounds)':<40}{'RSS @2':>8}{'@N':>8}{'live @2':>8}{'@N':>8}"
          f"{'arena @2':>8}{'@N':>8}")
    mem("web, after the probes", "mem_probed")
    mem(f"web, {web} dashboards served", "mem_web_1", f"   (@N: {web} different tenants, @2: the 2)")
    mem(f"web, {web} more", "mem_web_2")
    mem(f"worker, {jobs} training jobs (forked)", "mem_worker", f"   (@N: {jobs} different tenants)")
    print("live: Python objects the process keeps (caches); arena: what pymalloc holds for them. A "
          "growth of arenas without live objects is fragmentation, bounded by recycling processes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--visit", type=int, default=300, help="different tenants' dashboards per round")
    parser.add_argument("--workers", type=int, default=1, help="processes creating tenants at once")
    parser.add_argument("--keep", action="store_true", help="keep the large database (name printed)")
    parser.add_argument("--database", help="a database kept earlier: grown to --tenants if smaller, measured")
    parser.add_argument("--vacuum", action="store_true",
                        help="VACUUM (ANALYZE) the catalog of the large database before the rounds (as after a bulk onboarding)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count", help=argparse.SUPPRESS)
    parser.add_argument("--grow-part", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    isolate_queues()
    os.environ.setdefault("PORTAL_TENANT_CACHE_SECONDS", "30")
    if args.measure or args.build or args.count or args.grow_part:
        if args.grow_part:
            database, *bounds = args.grow_part
            result = grow_part(database, *map(int, bounds))
        else:
            result = (measure(args.measure, args.requests, args.visit) if args.measure
                      else count(args.count) if args.count else build())
        print(json.dumps(result))
        return
    large_db = args.database or subprocess_json(["--build"])["database"]
    created, total = grow(large_db, args.tenants, args.workers)
    if args.vacuum:
        print(f"  VACUUM (ANALYZE) of the {args.tenants}-tenant catalog: {vacuum(large_db):.0f} s", flush=True)
    small_db = subprocess_json(["--build"])["database"]
    small, large = [], []
    try:
        for r in range(args.rounds):
            print(f"  round {r + 1} of {args.rounds}", flush=True)
            small.append(run_round(small_db, args))
            large.append(run_round(large_db, args))
    finally:
        drop_database(small_db)
        if not args.keep and not args.database:
            drop_database(large_db)
    report(large[-1]["catalog"][1], created, total, small, large, args.workers)


if __name__ == "__main__":
    main()
