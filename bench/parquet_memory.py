"""A worker's peak memory growth while ingest() reads Parquet files built to decode huge, next to a
CSV and an ordinary Parquet file of the same table (target: under 64 MB, the CSV path's budget).

    .venv/bin/python bench/parquet_memory.py [--rows 200000]

Each file is read in a fresh child process; growth is its peak RSS (VmHWM) after ingest() minus
the peak after the imports, as bench/ingest.py measures it. The adversarial files: one 50 MB text
value (5 kB on disk), one 4 kB text repeated 300,000 times, dictionary-encoded (1.2 GB once
spelled out, about 1 MB on disk), and 1,000 different 1 kB texts over 1,000,000 rows (1 GB spelled
out, 2.6 MB on disk).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ingest import ROOT, TARGET_GROWTH_MB, generate, peak_rss_kb


def child(path: Path) -> None:
    from mlcore.ingest import IngestError, IngestLimits, ingest

    before = peak_rss_kb()
    try:
        with path.open("rb") as stream:
            result = ingest(stream, filename=path.name,
                            limits=IngestLimits(max_rows=10_000_000, max_columns=1000))
        outcome = f"read, {result.rows:,} rows"
    except IngestError as error:
        outcome = f"refused ({error.code})"
    print(json.dumps({"growth_kb": peak_rss_kb() - before, "outcome": outcome}))


def build(folder: Path, rows: int) -> list[tuple[str, Path]]:
    # Imported here, not by the child: a worker imports pyarrow after mlcore, which picks its pool.
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = folder / "table.csv"
    generate(csv, rows)
    table = folder / "table.parquet"
    pd.read_csv(csv).to_parquet(table)
    long_value = folder / "one-50mb-value.parquet"
    pq.write_table(pa.table({"note": ["ab" * (25 * 1024 * 1024)]}), long_value,
                   compression="zstd")
    repeated = folder / "4kb-value-x300k.parquet"
    notes = pa.array(["x" * 4000]).take(pa.array(np.zeros(300_000, dtype=np.int32)))
    pq.write_table(pa.table({"id": np.arange(300_000), "note": notes}), repeated,
                   compression="zstd")
    mixed = folder / "1000-values-x1m.parquet"
    values = pa.array([f"{i:04d}" * 250 for i in range(1000)])
    picks = pa.array(np.random.default_rng(0).integers(0, 1000, 1_000_000).astype(np.int32))
    pq.write_table(pa.table({"note": values.take(picks), "id": np.arange(1_000_000)}), mixed,
                   compression="zstd")
    return [(f"CSV, {rows:,} rows", csv), (f"Parquet, same {rows:,} rows", table),
            ("Parquet, one 50 MB value", long_value),
            ("Parquet, one 4 kB value x 300,000", repeated),
            ("Parquet, 1,000 1 kB values x 1,000,000", mixed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="portal-bench-parquet-") as folder:
        print(f"{'file':<38}{'on disk':>12}{'growth':>10}  outcome")
        for label, path in build(Path(folder), args.rows):
            output = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True,
                                    capture_output=True, text=True, cwd=ROOT).stdout
            figures = json.loads(output.strip().splitlines()[-1])
            growth = figures["growth_kb"] / 1024
            print(f"{label:<38}{path.stat().st_size / 2**20:>9.2f} MB{growth:>7.1f} MB  "
                  f"{figures['outcome']}"
                  f"{'' if growth < TARGET_GROWTH_MB else '  (over the target)'}")


if __name__ == "__main__":
    main()
