"""Benchmark mlcore.ingest against pandas.read_csv on a generated 1,000,000-row CSV (~100 MB).

    .venv/bin/python bench/ingest.py [--rows N] [--runs 3]

The file is generated once and cached under /tmp/portal-bench/. pandas.read_csv (default options)
and ingest() (reading a plain binary file block by block) run interleaved, ``--runs`` times each,
and the medians are compared. Peak memory growth is measured first, in a fresh child process: its
peak RSS after importing everything, and again after ingest(). tracemalloc would miss pyarrow's
allocations, which happen outside Python. The peak comes from /proc/self/status (VmHWM) where
there is one: Linux carries ru_maxrss over from the parent across exec, which would hide the
child's own peak under the parent's. Targets: at least half of pandas' speed, and less than 64 MB
of growth. The CPU seconds of both readers (all their threads) and the load average are printed
too: pandas.read_csv uses more than one thread, so on a busy machine the ratio moves with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHE = Path("/tmp/portal-bench")
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
SEGMENTS = ("retail", "smb", "enterprise", "public", "education", "nonprofit", "startup", "partner")
TARGET_RATIO = 0.5
TARGET_GROWTH_MB = 64


def generate(path: Path, rows: int) -> None:
    """Ten mixed columns: ints, floats with gaps, a category, a boolean, dates, free text."""
    import pandas as pd

    rng = np.random.default_rng(42)
    income = np.round(rng.lognormal(10, 0.6, rows), 2)
    income[rng.random(rows) < 0.05] = np.nan
    words = np.array(WORDS)[rng.integers(0, len(WORDS), (rows, 3))]
    # Some comments hold a comma, so the writer has to quote them.
    joiner = np.where(rng.random(rows) < 0.3, ", ", " ")
    comment = np.char.add(np.char.add(np.char.add(words[:, 0], " "), words[:, 1]),
                          np.char.add(joiner, words[:, 2]))
    start = np.datetime64("2015-01-01")
    frame = pd.DataFrame({
        "id": np.arange(1, rows + 1),
        "age": rng.integers(18, 91, rows),
        "income": income,
        "score": np.round(rng.normal(0, 1, rows), 5),
        "segment": rng.choice(SEGMENTS, rows),
        "active": rng.choice(["true", "false"], rows),
        "signup_date": (start + rng.integers(0, 3650, rows)).astype("datetime64[D]").astype(str),
        "last_login": (np.datetime64("2024-01-01T00:00:00")
                       + rng.integers(0, 30_000_000, rows).astype("timedelta64[s]")).astype(str),
        "country": rng.choice([f"C{i:02d}" for i in range(50)], rows),
        "comment": comment,
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    frame.to_csv(partial, index=False)
    partial.rename(path)


def run_ingest(path: Path) -> tuple[float, float]:
    """Seconds and CPU seconds (all threads) of one ingest()."""
    from mlcore.ingest import IngestLimits, ingest

    limits = IngestLimits(max_rows=10_000_000, max_columns=1000)
    started, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as stream:
        result = ingest(stream, filename=path.name, limits=limits)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert result.rows > 0
    return elapsed, cpu


def run_pandas(path: Path) -> tuple[float, float]:
    import pandas as pd

    started, cpu = time.perf_counter(), time.process_time()
    frame = pd.read_csv(path)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(frame) > 0
    return elapsed, cpu


def peak_rss_kb() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def child(path: Path) -> None:
    """In a fresh process: how much ingest() raises the peak RSS above the imports' level."""
    import mlcore.ingest  # noqa: F401 — imported before the first measurement on purpose

    before = peak_rss_kb()
    run_ingest(path)
    after = peak_rss_kb()
    print(json.dumps({"growth_kb": after - before, "baseline_kb": before}))


def measure_growth(path: Path) -> tuple[float, float]:
    output = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True,
                            capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return figures["growth_kb"] / 1024, figures["baseline_kb"] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    path = CACHE / f"ingest-{args.rows}.csv"
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        generate(path, args.rows)
    size_mb = path.stat().st_size / 1e6
    path.read_bytes()  # every reader starts from the page cache
    growth_mb, baseline_mb = measure_growth(path)

    load = os.getloadavg()[0]
    pandas_runs, ingest_runs = [], []
    for _ in range(args.runs):
        pandas_runs.append(run_pandas(path))
        ingest_runs.append(run_ingest(path))
    pandas_s, pandas_cpu = (statistics.median(run) for run in zip(*pandas_runs, strict=True))
    ingest_s, ingest_cpu = (statistics.median(run) for run in zip(*ingest_runs, strict=True))
    ratio = pandas_s / ingest_s

    print(f"file: {path} ({size_mb:.1f} MB, {args.rows:,} rows), median of {args.runs} runs")
    print(f"{'reader':<18}{'seconds':>9}{'rows/s':>13}{'MB/s':>9}")
    for name, seconds in (("pandas.read_csv", pandas_s), ("mlcore ingest()", ingest_s)):
        print(f"{name:<18}{seconds:>9.3f}{args.rows / seconds:>13,.0f}{size_mb / seconds:>9.1f}")
    print(f"speed ratio ingest/pandas: {ratio:.2f} (target >= {TARGET_RATIO})")
    # Both readers use more than one thread, and the machine may be shared: CPU time and load
    # tell whether a ratio moved because of the code or because of the neighbours.
    print(f"CPU seconds (all threads): pandas {pandas_cpu:.2f}, ingest() {ingest_cpu:.2f}; "
          f"load average {load:.2f} on {os.cpu_count()} CPUs")
    print(f"peak RSS growth of ingest(): {growth_mb:.1f} MB over a {baseline_mb:.0f} MB baseline "
          f"(target < {TARGET_GROWTH_MB} MB)")
    met = ratio >= TARGET_RATIO and growth_mb < TARGET_GROWTH_MB
    print("targets met" if met else "TARGETS MISSED")


if __name__ == "__main__":
    main()
