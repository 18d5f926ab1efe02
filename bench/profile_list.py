"""Where a warm audited dataset list spends its time (issue 14: audited reads at full speed).

    .venv/bin/python bench/profile_list.py [--requests 2000] [--datasets 20]

On a throw-away database: one tenant, its admin's API token, --datasets small datasets; then
GET /api/v1/datasets/?page_size=50 through Django's WSGI handler in process (the environ gunicorn
builds; no socket, no test client), timed per request, then under cProfile (cumulative and own
time). bench/load.py --audit-only measures the same list over real connections against a bare DRF
list; this shows what the difference is made of.
"""

from __future__ import annotations

import argparse
import time

from _db import bench_database
from _platform import isolate_queues, make_tenant, upload, wsgi_caller


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--lines", type=int, default=45, help="profile lines printed per sort")
    parser.add_argument("--full-paths", action="store_true", help="file paths in the profile")
    args = parser.parse_args()
    isolate_queues()
    with bench_database("profile"):
        import cProfile
        import pstats

        from tenants import services
        from tenants.models import Membership

        tenant, [(_, client)] = make_tenant("lister", members=1)
        for i in range(args.datasets):
            upload(client, f"a,b\n{i},2\n3,4\n".encode(), f"d{i}.csv")
        admin = Membership.objects.filter(tenant=tenant, role="admin").select_related("user").first().user
        _, secret = services.api_token_create(user=admin, tenant=tenant, name="profile", scope="read", days=1)
        call = wsgi_caller(method="GET", path="/api/v1/datasets/", query="page_size=50",
                           host=f"{tenant.slug}.localhost", token=secret)

        for _ in range(300):
            call()
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            call()
        print(f"SQL statements of one warm request: {len(queries.captured_queries)}")
        for query in queries.captured_queries:
            print(f"  {query['time']} s  {query['sql'][:600]}")
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.requests):
            call()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"audited list through WSGIHandler in process: {wall / args.requests * 1e3:.2f} ms per request "
              f"({cpu / args.requests * 1e3:.2f} ms CPU)", flush=True)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            call()
        profiler.disable()
        stats = pstats.Stats(profiler)
        if not args.full_paths:
            stats.strip_dirs()
        stats.sort_stats("cumulative").print_stats(args.lines)
        stats.sort_stats("tottime").print_stats(args.lines)


if __name__ == "__main__":
    main()
