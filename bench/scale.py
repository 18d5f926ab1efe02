"""Thousands of tenants (issue 14): does anything per request grow with the number of tenants?

    .venv/bin/python bench/scale.py [--tenants 1000] [--requests 200]

On a throw-away database (bench/_db.py), in this one process (Django's test client: the whole
request path — host routing, token or session, membership, gate, quota, audit — without a network
hop): two tenants with data and a trained model are measured first (p50/p99 of the dashboard page,
the dataset list and an online prediction, and the SQL statements each request runs); then tenants
are created up to --tenants, each with a member and a dataset, timing every creation; then the same
three requests are measured again. Printed: creation time per tenant (p50/p95) by stretch as N
grows, PostgreSQL's catalog (relations, database size), this process's memory, and the latency and
statement counts with 2 tenants against N. Target: N within 20% of 2, and the same statements.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _db import bench_database
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


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    isolate_queues()
    os.environ["PORTAL_JOB_ISOLATION"] = "inline"  # train the two measured tenants' models here
    os.environ.setdefault("PORTAL_TENANT_CACHE_SECONDS", "30")
    with bench_database("scale"):
        from django.conf import settings

        settings.ALLOWED_HOSTS = ["*"]
        from tenants.services import tenant_create

        probes = [Probe(*seed_tenant(slug, train=True)) for slug in ("scalea", "scaleb")]
        before = [p.measure(args.requests) for p in probes]
        cat_before, mem_before = catalog(), rss_mb()

        created: list[float] = []
        started = time.perf_counter()
        for i in range(len(probes), args.tenants):
            began = time.perf_counter()
            tenant = tenant_create(slug=f"s{i:05d}", name=f"Scale {i}", admin_email=f"admin@s{i:05d}.test",
                                   notify=False).tenant
            created.append(time.perf_counter() - began)
            if i % 10 == 0:  # some data in a tenth of them: a dataset row and its stored file
                upload(make_member_client(tenant), churn_csv(50, seed=i), filename="data.csv")
            if i % 100 == 0:
                print(f"  {i + 1} tenants, {time.perf_counter() - started:.0f} s", flush=True)
        total = time.perf_counter() - started
        after = [p.measure(args.requests) for p in probes]
        cat_after, mem_after = catalog(), rss_mb()

    n = args.tenants
    print(f"\nscale: 2 tenants measured, then {n} in all ({n - 2} created in {total:.0f} s)")
    print(f"{'creation stretch':<28}{'p50 s':>10}{'p95 s':>10}")
    tenth = max(1, len(created) // 10)
    for label, part in (("first tenth", created[:tenth]), ("last tenth", created[-tenth:]), ("all", created)):
        if part:
            print(f"{label:<28}{statistics.median(part):>10.3f}{percentile(part, 95):>10.3f}")
    print(f"catalog: {cat_before[0]:,} -> {cat_after[0]:,} relations, {cat_before[1]} -> {cat_after[1]} tenant "
          f"schemas, database {cat_before[2] / 2**20:,.0f} -> {cat_after[2] / 2**20:,.0f} MB")
    print(f"this process (web path): {mem_before:,.0f} -> {mem_after:,.0f} MB RSS")
    print(f"{'request':<26}{'p50 @2':>9}{'p50 @N':>9}{'p99 @2':>9}{'p99 @N':>9}{'ratio':>7}{'SQL @2/@N':>11}")
    worst = 0.0
    for name in before[0]:
        b = statistics.median([m[name]["p50"] for m in before])
        a = statistics.median([m[name]["p50"] for m in after])
        b99 = statistics.median([m[name]["p99"] for m in before])
        a99 = statistics.median([m[name]["p99"] for m in after])
        qb, qa = before[0][name]["queries"], after[0][name]["queries"]
        worst = max(worst, a / b)
        print(f"{name:<26}{b:>9.2f}{a:>9.2f}{b99:>9.2f}{a99:>9.2f}{a / b:>7.2f}{f'{qb}/{qa}':>11}")
    print(f"target: p50 with {n} tenants within 20% of 2 tenants -> {'met' if worst <= 1.2 else 'NOT met'} "
          f"(worst ratio {worst:.2f}); times in ms, in-process (no network)")


if __name__ == "__main__":
    main()
