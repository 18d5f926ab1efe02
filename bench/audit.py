"""Audit trail figures: append rate under concurrency, verify time, export time and memory.

    .venv/bin/python bench/audit.py [--verify-n 100000] [--export-n 1000000] [--workers 1,4,16]

Runs in a scratch database on the same PostgreSQL server as the platform (DATABASE_URL, else the
embedded one), created and dropped by this script. Prints:
  - entries/s written by N processes (like gunicorn workers), all for one tenant's chain and for N
    separate chains, each committed before the call returns, by the two paths:
    direct: tenants.auditing.audit.record(), as a significant action does (one transaction per
    entry, queued on the chain's head lock), and buffered: audit.record_access(), as the access log
    of every request does (one INSERT into the buffer, no chain lock);
  - entries/s moved from the buffer into one chain by audit.flush_pending() (batches of 1,000 under
    one head lock each), which must keep up with the buffered rate;
  - seconds to verify a chain of 100,000 entries (tenants.auditing.audit_chain.chain_verify);
  - seconds and peak RSS growth to export 1,000,000 entries as JSON Lines and as CSV
    (tenants.auditing.audit_export.stream), in a fresh process; the growth is the peak resident set during
    the export (VmHWM, reset when it starts) over the resident set before it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
BENCH_CHAIN = 800_000_000  # chain ids far from real tenants'


# --- a scratch database -------------------------------------------------------------------------
def _server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url
    from portal import embedded

    return embedded.start_postgres(embedded.var_dir())[0]


def _with_db(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(_with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    # Signed checkpoints of the scratch chains must not land among the real ones (var/storage).
    import atexit
    import shutil
    import tempfile

    witness_dir = tempfile.mkdtemp(prefix="bench-audit-witness-")
    atexit.register(shutil.rmtree, witness_dir, ignore_errors=True)
    os.environ["PORTAL_AUDIT_WITNESS_DIR"] = witness_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()


# --- building chains fast (COPY, hashes computed here) ------------------------------------------
def build_chain(tenant_id: int, n: int) -> float:
    from datetime import UTC, datetime, timedelta

    from django.db import connection

    from tenants.auditing import audit
    from tenants.models import AuditChainHead

    columns = ("tenant_id", "tenant_slug", "seq", "ts", "actor_id", "actor_email", "role",
               "auth_method", "source_ip", "user_agent", "action", "object_type", "object_id",
               "outcome", "request_id", "details", "prev_hash", "hash")
    start, prev, t0 = datetime(2026, 1, 1, tzinfo=UTC), audit.GENESIS_HASH, time.monotonic()
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY tenants_auditevent ({', '.join(columns)}) FROM STDIN") as copy:
        for seq in range(1, n + 1):
            ts = start + timedelta(milliseconds=seq)
            entry = {"seq": seq, "ts": audit.format_ts(ts), "tenant": "bench", "actor_id": seq % 50,
                     "actor_email": f"user{seq % 50}@bench.test", "role": "member",
                     "auth_method": "token", "source_ip": "10.1.2.3",
                     "user_agent": "python-requests/2.32", "action": "access.read",
                     "object_type": "dataset", "object_id": str(seq % 997),
                     "outcome": "allowed" if seq % 13 else "denied", "request_id": f"{seq:032x}",
                     "details": {"method": "GET", "path": f"/api/v1/datasets/{seq % 997}/",
                                 "status": 200}, "prev_hash": prev}
            prev = audit.entry_hash(entry)
            copy.write_row((tenant_id, "bench", seq, ts, entry["actor_id"], entry["actor_email"],
                            "member", "token", "10.1.2.3", entry["user_agent"], "access.read",
                            "dataset", entry["object_id"], entry["outcome"], entry["request_id"],
                            json.dumps(entry["details"]), entry["prev_hash"], prev))
    AuditChainHead.objects.update_or_create(tenant_id=tenant_id,
                                            defaults={"last_seq": n, "last_hash": prev})
    return time.monotonic() - t0


# --- the measurements ---------------------------------------------------------------------------
class _Tenant:
    """What record() needs of a tenant."""

    def __init__(self, tenant_id: int):
        self.id, self.slug, self.is_public = tenant_id, f"bench{tenant_id % 1000}", False


def append_rate(workers: int, per_worker: int, separate_chains: bool, base_chain: int,
                buffered: bool = False) -> float:
    """Entries/s written by `workers` processes (like gunicorn's sync workers), each calling
    record() (or, buffered, record_access()) in a loop as its requests would."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # each forked worker opens its own connection
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers + 1)
    processes = [context.Process(target=_append_worker,
                                 args=(barrier, index, per_worker, base_chain + (index if separate_chains else 0),
                                       buffered))
                 for index in range(workers)]
    for process in processes:
        process.start()
    barrier.wait()
    t0 = time.monotonic()
    for process in processes:
        process.join()
    elapsed = time.monotonic() - t0
    if any(process.exitcode for process in processes):
        raise RuntimeError("an append worker failed")
    return workers * per_worker / elapsed


def _append_worker(barrier, index: int, count: int, chain: int, buffered: bool) -> None:
    from django.db import connection

    from tenants.auditing import audit

    tenant = _Tenant(chain)
    actor = audit.Actor(actor_id=index, actor_email=f"w{index}@bench.test", role="member",
                        auth_method="token", source_ip="10.0.0.1", user_agent="bench")
    write = audit.record_access if buffered else audit.record
    connection.ensure_connection()
    barrier.wait()
    for i in range(count):
        write("access.read", tenant=tenant, object_type="dataset", object_id=i,
              details={"status": 200}, actor=actor)
    connection.close()


def flush_rate(chains: list[int]) -> tuple[int, float]:
    """(entries, entries/s) moved from the buffer into their chains by flush_pending()."""
    from tenants.auditing import audit

    t0 = time.monotonic()
    moved = sum(audit.flush_pending(tenant_id=chain) for chain in chains)
    return moved, moved / (time.monotonic() - t0)


def verify_time(tenant_id: int) -> tuple[float, bool, int]:
    from tenants.auditing.audit_chain import chain_verify

    t0 = time.monotonic()
    result = chain_verify(tenant_id=tenant_id)
    return time.monotonic() - t0, result.ok, result.entries


def export_child(tenant_id: int, fmt: str) -> None:
    """In a fresh process: stream the whole chain, print seconds, bytes and peak RSS growth."""
    import hashlib

    from tenants.auditing.audit_export import export_queryset, stream
    from tenants.models import AuditChainHead, AuditEvent, AuditExport

    head = AuditChainHead.objects.get(tenant_id=tenant_id)
    export = AuditExport.objects.create(tenant_id=tenant_id, tenant_slug="bench", format=fmt,
                                        through_seq=head.last_seq)
    events = export_queryset(export, AuditEvent.objects.filter(tenant_id=tenant_id))
    digest, size = hashlib.sha256(), 0
    before = _reset_peak_rss()
    t0 = time.monotonic()
    for chunk in stream(export, events):
        digest.update(chunk)
        size += len(chunk)
    seconds = time.monotonic() - t0
    peak = _proc_status_kib("VmHWM")
    export.refresh_from_db()
    assert export.sha256 == digest.hexdigest() and export.count == head.last_seq
    print(json.dumps({"seconds": seconds, "bytes": size, "rss_before_kib": before,
                      "rss_growth_kib": peak - before, "count": export.count}))


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss() -> int:
    """Start the peak (VmHWM) from the current RSS, so it measures the export alone (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _proc_status_kib("VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--workers", default="1,4,16", help="concurrent processes, comma-separated")
    parser.add_argument("--per-worker", type=int, default=500)
    parser.add_argument("--verify-n", type=int, default=100_000)
    parser.add_argument("--export-n", type=int, default=1_000_000)
    parser.add_argument("--export-child", nargs=2, metavar=("CHAIN", "FORMAT"), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.export_child:
        _setup_django(args.database_url)
        export_child(int(args.export_child[0]), args.export_child[1])
        return

    server = _server_url()
    name = f"portal_bench_{os.getpid()}"
    _admin(server, f'CREATE DATABASE "{name}"')
    bench_url = _with_db(server, name)
    try:
        _setup_django(bench_url)
        from django.core.management import call_command

        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        _run(args, bench_url)
    finally:
        from django.db import connections

        connections.close_all()
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(args, bench_url: str) -> None:
    from django.db import connection

    print(f"PostgreSQL {connection.cursor().connection.info.server_version}, "
          f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
    print("\n== entries/s committed: direct append (audit.record) vs buffered (audit.record_access) ==")
    for count, n in enumerate(int(t) for t in args.workers.split(",")):
        figures = {}
        for buffered in (False, True):
            base = BENCH_CHAIN + (20_000 if buffered else 0) + count * 100
            figures[buffered] = (append_rate(n, args.per_worker, False, base, buffered),
                                 append_rate(n, args.per_worker, True, base + 10_000, buffered))
        (one, many), (one_b, many_b) = figures[False], figures[True]
        print(f"{n:>3} process(es), one chain: direct {one:7.0f}/s, buffered {one_b:7.0f}/s "
              f"({one_b / one:.1f}x); {n} chain(s): direct {many:7.0f}/s, buffered {many_b:7.0f}/s "
              f"({many_b / many:.1f}x)")
        moved, rate = flush_rate([BENCH_CHAIN + 20_000 + count * 100])
        print(f"    then the one chain's {moved:,} buffered entries flushed into it at {rate:7.0f} entries/s")
    moved, rate = flush_rate(sorted(set(
        BENCH_CHAIN + 30_000 + count * 100 + i for count, n in enumerate(int(t) for t in args.workers.split(","))
        for i in range(n))))
    print(f"flush of the separate chains' {moved:,} buffered entries: {rate:7.0f} entries/s")

    print(f"\n== verify a chain of {args.verify_n:,} entries ==")
    built = build_chain(BENCH_CHAIN + 50_000, args.verify_n)
    seconds, ok, entries = verify_time(BENCH_CHAIN + 50_000)
    print(f"built in {built:.1f} s; verified {entries:,} entries in {seconds:.2f} s "
          f"({entries / seconds:,.0f} entries/s), intact={ok}")

    print(f"\n== export {args.export_n:,} entries (streamed, fresh process each) ==")
    chain = BENCH_CHAIN + 60_000
    built = build_chain(chain, args.export_n)
    connection.close()
    print(f"built in {built:.1f} s")
    for fmt in ("jsonl", "csv"):
        out = subprocess.run([sys.executable, __file__, "--export-child", str(chain), fmt,
                              "--database-url", bench_url], capture_output=True, text=True,
                             check=True, cwd=BASE_DIR)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{fmt:>5}: {figures['count']:,} entries, {figures['bytes'] / 1e6:,.0f} MB in "
              f"{figures['seconds']:.1f} s ({figures['count'] / figures['seconds']:,.0f} entries/s); "
              f"peak RSS growth {figures['rss_growth_kib'] / 1024:.1f} MiB "
              f"(process at {figures['rss_before_kib'] / 1024:.0f} MiB before)")


if __name__ == "__main__":
    main()
