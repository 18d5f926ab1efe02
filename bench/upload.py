"""Upload and profile a 1,000,000-row CSV through the real web stack, at loopback speed and at a
network's.

    .venv/bin/python bench/upload.py [--rows 1000000] [--runs 3] [--rate 50] [--before REV]

A gunicorn worker (one, so its memory is the upload's) receives the file over HTTP from a client
that streams it from disk, once as fast as loopback goes and once paced to ``--rate`` MB/s (the
multipart body sent in 64 kB pieces, each when the rate allows it). The platform encrypts the file
as it arrives (storage quota checked while streaming), validates and profiles it, and registers
the dataset. Printed per rate: the whole upload's seconds, the seconds from the last byte the
client sent to the answer (what a user waits once the file is sent), and the web worker's CPU
seconds (all threads), in all and after the last byte (the work left, which on a machine busy
with other work also waits for a core); then how much the worker's peak memory grew. Targets: at most 0.2 s from
the last byte to the answer at 50 MB/s; growth < 64 MB whatever the file size.

In the same run, interleaved:
- a second gunicorn (bench/_receive_only.py) only receives and stores the same file through the
  same upload handler: the floor under any profiler;
- with ``--before REV``, a third gunicorn serves the code of git revision REV (checked out in a
  temporary worktree, same database and storage): the figures before a change;
- a profiler peer on the same file in a fresh process: polars reads the CSV, ``describe()``s it
  and counts the distinct values of every column (``n_unique()``).

The servers store into a temporary storage folder, removed at the end with the database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from _db import bench_database
from _platform import ROOT
from ingest import CACHE, generate

BOUNDARY = "benchupload5d1e"
PIECE = 64 * 1024  # what a paced client sends at a time
TARGET_TAIL_S = 0.2
TARGET_GROWTH_MB = 64
HOST = "uploader.localhost"


def vm_hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def reset_hwm(pid: int) -> None:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    with open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")


class Body:
    """multipart/form-data around a file on disk, read in blocks (never whole)."""

    def __init__(self, path: Path):
        self.head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"{path.name}\"\r\nContent-Type: text/csv\r\n\r\n").encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.file = open(path, "rb")  # noqa: SIM115 - closed by read() at the end
        self.length = len(self.head) + path.stat().st_size + len(self.tail)
        self.stage = 0

    def read(self, n: int = 65536) -> bytes:
        if self.stage == 0:
            self.stage = 1
            return self.head
        if self.stage == 1:
            block = self.file.read(n)
            if block:
                return block
            self.file.close()
            self.stage = 2
            return self.tail
        return b""


def upload(port: int, token: str, path: Path, rate_mbps: float | None,
           at_last_byte=lambda: None) -> tuple[float, float, dict]:
    """(seconds for the whole request, seconds from the last byte sent to the answer, body).

    The last byte counts as sent when the kernel took it: at loopback speed the socket buffers
    still hold some of the file then, at a network's pace they are nearly empty.
    """
    body = Body(path)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.putrequest("POST", "/api/v1/datasets/", skip_host=True)
    for name, value in (("Host", HOST), ("Authorization", f"Bearer {token}"),
                        ("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"),
                        ("Content-Length", str(body.length))):
        conn.putheader(name, value)
    conn.endheaders()
    sent = 0
    while block := body.read(PIECE if rate_mbps else 1 << 20):
        if rate_mbps:
            due = started + sent / (rate_mbps * 1e6)
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
        conn.send(block)
        sent += len(block)
    last_byte = time.perf_counter()
    at_last_byte()
    response = conn.getresponse()
    payload = json.loads(response.read())
    answered = time.perf_counter()
    conn.close()
    if response.status != 201:
        raise RuntimeError(f"upload failed: {response.status} {payload}")
    return answered - started, answered - last_byte, payload


def polars_seconds(path: Path) -> tuple[float, float]:
    """Seconds and CPU seconds (all threads) of polars reading, describing and counting distinct
    values of every column, in a fresh process."""
    code = ("import time,polars as pl;t=time.perf_counter();c=time.process_time();"
            f"df=pl.read_csv({str(path)!r});df.describe();[df[n].n_unique() for n in df.columns];"
            "print(time.perf_counter()-t,time.process_time()-c)")
    seconds, cpu = subprocess.check_output([sys.executable, "-c", code]).decode().split()  # noqa: S603
    return float(seconds), float(cpu)


class Server:
    """One gunicorn worker (so its memory is the upload's), like the platform's web processes."""

    def __init__(self, label: str, module: str, port: int, env: dict, root: Path = ROOT):
        self.label, self.port, self.runs = label, port, {}
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "gunicorn", module, "--pythonpath", str(ROOT / "bench"),
             "--workers", "1", "--timeout", "600", "--bind", f"127.0.0.1:{port}"],
            env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.worker_pid = 0

    def wait_ready(self, timeout: float = 90) -> None:
        """Until the port accepts connections (a busy machine takes more than a few seconds)."""
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.label}: gunicorn exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.label}: not listening on port {self.port} after {timeout:.0f} s")

    def start_worker(self) -> None:
        import psutil

        self.worker_pid = psutil.Process(self.process.pid).children()[0].pid

    def measure(self, token: str, path: Path, rate: float | None) -> dict:
        """One upload: its seconds, tail, the worker's CPU seconds and peak memory growth."""
        import psutil

        worker = psutil.Process(self.worker_pid)
        reset_hwm(self.worker_pid)
        rss_now, cpu = vm_hwm_kb(self.worker_pid), worker.cpu_times()
        at_last = []
        seconds, tail, payload = upload(self.port, token, path, rate,
                                        lambda: at_last.append(worker.cpu_times()))
        after = worker.cpu_times()
        figures = {"seconds": seconds, "tail": tail, "payload": payload,
                   "cpu": _cpu(after) - _cpu(cpu), "tail_cpu": _cpu(after) - _cpu(at_last[0]),
                   "growth": (vm_hwm_kb(self.worker_pid) - rss_now) / 1024}
        self.runs.setdefault(rate, []).append(figures)
        return figures

    def median(self, rate: float | None, key: str) -> float:
        return statistics.median(run[key] for run in self.runs[rate])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _cpu(times) -> float:
    return times.user + times.system


@contextmanager
def checkout(revision: str | None):
    """The code of ``revision`` in a temporary git worktree (None: nothing)."""
    if revision is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-before-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",  # noqa: S607
                    str(folder), revision], check=True)
    # The same development secrets and master key as this checkout (the same database's rows).
    (folder / "var").symlink_to(ROOT / "var", target_is_directory=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",  # noqa: S607
                        str(folder)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0, help="the paced client's MB/s")
    parser.add_argument("--before", metavar="REV", help="also serve git revision REV's code")
    args = parser.parse_args()
    path = CACHE / f"ingest-{args.rows}.csv"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        generate(path, args.rows)
    os.environ.setdefault("DJANGO_DEBUG", "0")
    # Every upload is kept as a dataset: a storage folder of its own, removed at the end.
    folder = tempfile.mkdtemp(prefix="portal-bench-storage-")
    os.environ["PORTAL_STORAGE_DIR"] = folder
    try:
        with bench_database("upload"), checkout(args.before) as before_root:
            servers, polars_runs = measure(args, path, before_root)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(args, path, servers, polars_runs)


def measure(args, path: Path, before_root: Path | None) -> tuple[list[Server], list]:
    from _platform import make_tenant

    from tenants.models import ApiToken
    from tenants.services import api_token_create

    tenant, [(user, _)] = make_tenant("uploader", plan="enterprise")
    ApiToken.objects.filter(user=user).delete()
    _, token = api_token_create(user=user, tenant=tenant, name="bench", scope="write", days=1)
    port = 18600 + os.getpid() % 1000
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings.local",
               BENCH_TENANT_SCHEMA=tenant.schema_name)
    servers = [Server("this code", "portal.wsgi", port, env),
               Server("receive+encrypt+store alone (floor)", "_receive_only", port + 1, env)]
    if before_root is not None:
        servers.append(Server(f"before: {args.before}", "portal.wsgi", port + 2, env, before_root))
    try:
        for server in servers:
            server.wait_ready()
        # Warm-up: a worker imports pyarrow and the ingest code on its first upload.
        small = CACHE / "upload-warmup.csv"
        small.write_bytes(b"a,b\n1,2\n3,4\n")
        for server in servers:
            try:
                upload(server.port, token, small, None)
            except OSError as error:
                server.process.terminate()
                raise SystemExit(f"{server.label}: {error}: {server.process.stderr.read().decode()[-3000:]}") from None
            server.start_worker()
        polars_runs = []
        for _ in range(args.runs):
            polars_runs.append(polars_seconds(path))
            for rate in (None, args.rate):
                for server in servers:
                    payload = server.measure(token, path, rate)["payload"]
                    assert payload.get("rows", args.rows) == args.rows, payload
        return servers, polars_runs
    finally:
        for server in servers:
            server.stop()


def report(args, path: Path, servers: list[Server], polars_runs: list) -> None:
    size_mb = path.stat().st_size / 1e6
    rates = (None, args.rate)
    print(f"file: {path} ({size_mb:.1f} MB, {args.rows:,} rows), median of {args.runs} "
          f"interleaved runs; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    columns = "".join(f"{'total s':>9}{'last byte->answer s':>21}{'CPU s':>7}{'after':>7}"
                      for _ in rates)
    titles = "".join(f"{(f'{r:g} MB/s' if r else 'unlimited'):^44}" for r in rates)
    print(f"{'':<40}{titles}")
    print(f"{'server':<40}{columns}")
    for server in servers:
        cells = "".join(f"{server.median(r, 'seconds'):>9.2f}{server.median(r, 'tail'):>21.3f}"
                        f"{server.median(r, 'cpu'):>7.2f}{server.median(r, 'tail_cpu'):>7.2f}"
                        for r in rates)
        print(f"{server.label:<40}{cells}")
    print("(CPU s: the web worker's, all threads; after: of which after the last byte was sent)")
    seconds, cpu = (statistics.median(values) for values in zip(*polars_runs, strict=True))
    print(f"profiler peer: polars read_csv + describe() + n_unique() of every column: "
          f"{seconds:.2f} s, {cpu:.2f} CPU s (fresh process, file in the page cache)")
    for server in servers:
        if "floor" in server.label:
            continue
        growth = [run["growth"] for runs in server.runs.values() for run in runs]
        print(f"peak memory growth of the web worker, {server.label}: median "
              f"{statistics.median(growth):.1f} MB, max {max(growth):.1f} MB "
              f"(target < {TARGET_GROWTH_MB} MB)")
    ours = servers[0]
    tail = ours.median(args.rate, "tail")
    growth = max(run["growth"] for runs in ours.runs.values() for run in runs)
    met = tail <= TARGET_TAIL_S and growth < TARGET_GROWTH_MB
    print(f"target: <= {TARGET_TAIL_S} s from last byte to answer at {args.rate:g} MB/s "
          f"({tail:.3f} s) and growth < {TARGET_GROWTH_MB} MB ({growth:.1f}): "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
