"""How long it takes to create tenants (target: one tenant in under 0.5 s).

    .venv/bin/python bench/tenants.py [--count 100]

Runs against a throw-away database on the configured (DATABASE_URL) or embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _db import bench_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    with bench_database("tenants"):
        from django.db import connection

        from tenants.services import tenant_create

        def create(i: int) -> float:
            t0 = time.perf_counter()
            tenant_create(slug=f"bench-{i}", name=f"Bench {i}", admin_email=f"admin{i}@bench.test",
                          notify=False)
            return time.perf_counter() - t0

        create(0)  # warm-up: first clone defines the clone function, loads code paths
        single = [create(i) for i in range(1, 6)]
        t0 = time.perf_counter()
        batch = [create(i) for i in range(100, 100 + args.count)]
        total = time.perf_counter() - t0
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_bench%%'")
            schemas = cursor.fetchone()[0]

    print(f"{'measure':<38}{'value':>12}")
    print(f"{'one tenant (median of 5), s':<38}{statistics.median(single):>12.3f}")
    print(f"{f'{args.count} tenants in a row, total s':<38}{total:>12.2f}")
    print(f"{f'{args.count} tenants, per tenant median s':<38}{statistics.median(batch):>12.3f}")
    print(f"{f'{args.count} tenants, per tenant p95 s':<38}{sorted(batch)[int(len(batch) * 0.95) - 1]:>12.3f}")
    print(f"{'schemas created':<38}{schemas:>12}")
    print(f"target: one tenant < 0.5 s -> {'met' if statistics.median(single) < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
