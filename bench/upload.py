"""Upload and profile a 1,000,000-row CSV through the real web stack.

    .venv/bin/python bench/upload.py [--rows 1000000] [--runs 3]

A gunicorn worker (one, so its memory is the upload's) receives the file over HTTP from a client
that streams it from disk; the platform encrypts it as it arrives (storage quota checked while
streaming), validates and profiles it in one streaming pass, and registers the dataset. Printed:
rows/s, MB/s and how much the worker's peak memory grew, against pandas.read_csv on the same file
in the same run. Targets: growth < 64 MB whatever the file size; at least 0.5x pandas' speed.

A second gunicorn (bench/_receive_only.py) only receives and stores the same file, through the same
upload handler: its time, interleaved with the others, is the floor under any profiler. The CPU
seconds of each (the web worker's, all threads; pandas' own) show what the two cores can give.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _db import bench_database
from _platform import ROOT
from ingest import CACHE, generate

BOUNDARY = "benchupload5d1e"


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


def upload(port: int, host: str, token: str, path: Path) -> tuple[float, dict]:
    body = Body(path)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.putrequest("POST", "/api/v1/datasets/", skip_host=True)
    for name, value in (("Host", host), ("Authorization", f"Bearer {token}"),
                        ("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"),
                        ("Content-Length", str(body.length))):
        conn.putheader(name, value)
    conn.endheaders()
    while True:
        block = body.read(1 << 20)
        if not block:
            break
        conn.send(block)
    response = conn.getresponse()
    payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if response.status != 201:
        raise RuntimeError(f"upload failed: {response.status} {payload}")
    return elapsed, payload


def pandas_seconds(path: Path) -> tuple[float, float]:
    """Seconds and CPU seconds (all threads) of pandas.read_csv in a fresh process."""
    code = ("import time,pandas;t=time.perf_counter();c=time.process_time();"
            f"pandas.read_csv({str(path)!r});print(time.perf_counter()-t,time.process_time()-c)")
    seconds, cpu = subprocess.check_output([sys.executable, "-c", code]).decode().split()  # noqa: S603
    return float(seconds), float(cpu)


def with_cpu(pid: int, function, *args):
    """function(*args) and the CPU seconds (user + system, all threads) process ``pid`` spent."""
    import psutil

    process = psutil.Process(pid)
    before = process.cpu_times()
    value = function(*args)
    after = process.cpu_times()
    return value, (after.user + after.system) - (before.user + before.system)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    path = CACHE / f"ingest-{args.rows}.csv"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        generate(path, args.rows)
    size_mb = path.stat().st_size / 1e6
    os.environ.setdefault("DJANGO_DEBUG", "0")
    with bench_database("upload"):
        from _platform import make_tenant

        from tenants.models import ApiToken
        from tenants.services import api_token_create

        tenant, [(user, _)] = make_tenant("uploader", plan="enterprise")
        ApiToken.objects.filter(user=user).delete()
        _, token = api_token_create(user=user, tenant=tenant, name="bench", scope="write", days=1)
        port = 18600 + os.getpid() % 1000
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings.local",
                   BENCH_TENANT_SCHEMA=tenant.schema_name)
        servers = [serve("portal.wsgi", port, env), serve("_receive_only", port + 1, env)]
        try:
            time.sleep(4)
            import psutil

            worker_pid = psutil.Process(servers[0].pid).children()[0].pid
            # Warm-up: the worker imports pyarrow and the ingest code on its first upload.
            small = CACHE / "upload-warmup.csv"
            small.write_bytes(b"a,b\n1,2\n3,4\n")
            upload(port, "uploader.localhost", token, small)
            upload(port + 1, "uploader.localhost", token, small)
            floor_pid = psutil.Process(servers[1].pid).children()[0].pid
            ours, floor, pandas, growth = [], [], [], []
            for _ in range(args.runs):
                pandas.append(pandas_seconds(path))
                reset_hwm(worker_pid)
                rss_now = vm_hwm_kb(worker_pid)
                (seconds, payload), cpu = with_cpu(worker_pid, upload, port, "uploader.localhost",
                                                   token, path)
                growth.append((vm_hwm_kb(worker_pid) - rss_now) / 1024)
                ours.append((seconds, cpu))
                assert payload["rows"] == args.rows, payload
                (seconds, payload), cpu = with_cpu(floor_pid, upload, port + 1,
                                                   "uploader.localhost", token, path)
                floor.append((seconds, cpu))
                assert payload["bytes"] == path.stat().st_size, payload
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)

    (o, o_cpu), (f, f_cpu), (p, p_cpu) = (
        (statistics.median(s for s, _ in runs), statistics.median(c for _, c in runs))
        for runs in (ours, floor, pandas))
    print(f"file: {path} ({size_mb:.1f} MB, {args.rows:,} rows), median of {args.runs} interleaved runs")
    print(f"{'path':<48}{'seconds':>9}{'rows/s':>12}{'MB/s':>9}{'CPU s':>8}")
    for label, seconds, cpu in (("HTTP upload -> encrypt -> validate+profile", o, o_cpu),
                                ("  of which receive+encrypt+store alone (floor)", f, f_cpu),
                                ("pandas.read_csv (same file, no upload)", p, p_cpu)):
        print(f"{label:<48}{seconds:>9.2f}{args.rows / seconds:>12,.0f}{size_mb / seconds:>9.1f}"
              f"{cpu:>8.2f}")
    print(f"speed ratio upload/pandas: {p / o:.2f} (target >= 0.5); receiving and storing alone, "
          f"with no validation or profile: {p / f:.2f}")
    print(f"peak memory growth of the web worker: {statistics.median(growth):.1f} MB "
          f"(max {max(growth):.1f}; target < 64 MB)")


def serve(module: str, port: int, env: dict) -> subprocess.Popen:
    """One gunicorn worker (so its memory is the upload's), like the platform's web processes."""
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", module, "--pythonpath", str(ROOT / "bench"),
         "--workers", "1", "--timeout", "600", "--bind", f"127.0.0.1:{port}"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

if __name__ == "__main__":
    main()
