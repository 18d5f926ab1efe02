"""Parquet files: types kept, nested columns refused, limits from the metadata (mlcore/ingest/parquet.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcore.ingest import IngestLimits, parquet_pages
from tests.mlcore.ingest.conftest import column, refused, run


def test_parquet_columns_keep_their_types():
    table = pa.table({
        "n": pa.array([1, 2, None, 4], pa.int32()),
        "f": pa.array([0.5, float("nan"), 2.5, None]),
        "flag": pa.array([True, False, True, None]),
        "when": pa.array([1_700_000_000_000_000, None, 1_700_086_400_000_000, 0],
                         pa.timestamp("us", "UTC")),
        "label": pa.array(["x", "y", "x", "NA"]).dictionary_encode(),
        "numbers_as_text": pa.array(["1", "2", "3", "4"]),
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer)

    result = run(buffer.getvalue(), "data.parquet")

    assert (result.format, result.rows) == ("parquet", 4)
    types = {c.name: (c.type, c.missing) for c in result.columns}
    assert types == {"n": ("number", 1), "f": ("number", 2), "flag": ("boolean", 1),
                     "when": ("datetime", 1), "label": ("category", 1),
                     "numbers_as_text": ("text", 0)}
    assert column(result, "n").mean == pytest.approx(7 / 3)
    assert column(result, "flag").top == [("true", 2), ("false", 1)]
    assert column(result, "when").min == "1970-01-01T00:00:00+00:00"
    assert result.preview[0] == ["1", "0.5", "true", "2023-11-14T22:13:20+00:00", "x", "1"]


def test_parquet_nested_columns_are_refused():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"tags": [["a"], ["b", "c"]]}), buffer)

    error = refused(buffer.getvalue(), "data.parquet")

    assert error.code == "format"
    assert str(error).startswith("Column 'tags' holds nested values")


def test_parquet_row_limit_is_checked_from_the_metadata():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": list(range(50))}), buffer)

    error = refused(buffer.getvalue(), "data.parquet",
                    limits=IngestLimits(max_rows=10, max_columns=5))

    assert str(error) == "The file has more than 10 rows, the limit of your plan."


def test_a_file_named_parquet_that_is_not_one_is_refused():
    error = refused(b"id,name\n1,a\n", "data.parquet")

    assert (error.code, str(error)) == (
        "format", "The file name ends in .parquet but the content is not a Parquet file.")


# Peak memory of one upload's ingest, measured in a fresh process: Arrow's buffers are not Python
# objects (tracemalloc misses them). The peak is VmHWM: ru_maxrss is carried over from the parent
# across exec, and the test runner's own peak would hide the child's.
MEASURE = """
import io, json, sys
from mlcore.ingest import IngestError, IngestLimits, ingest

def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

data = open(sys.argv[1], "rb").read()
before = peak_kb()
try:
    result = ingest(io.BytesIO(data), filename="data.parquet",
                    limits=IngestLimits(max_rows=1_000_000, max_columns=100))
    outcome = {"rows": result.rows, "preview_chars": len(result.preview[0][-1])}
except IngestError as error:
    outcome = {"code": error.code, "message": str(error), "row": error.row}
print(json.dumps({**outcome, "growth_mib": (peak_kb() - before) / 1024}))
"""
# The CSV path's budget (bench/upload.py, bench/ingest.py): a worker grows by under 64 MB.
GROWTH_BOUND_MIB = 64


def ingest_in_a_fresh_process(path) -> dict:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=root,
                          capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout)


def test_a_parquet_value_too_large_to_decode_is_refused_before_decoding(tmp_path):
    # 5 kB on disk: one 50 MB string, compressed, in the dictionary page pyarrow writes for it.
    path = tmp_path / "one-long-value.parquet"
    pq.write_table(pa.table({"note": ["ab" * (25 * 1024 * 1024)]}), path, compression="zstd")

    outcome = ingest_in_a_fresh_process(path)

    assert outcome.get("code") == "too_large_to_read"
    assert outcome["message"] == (
        "Column 'note' of row group 1 cannot be read within the memory an upload may use: its "
        "dictionary page decodes to 50.0 MB, and no Parquet page may decode to more than 8 MB "
        "(so no single value may be larger). Write the file with shorter values or smaller "
        "pages.")
    assert outcome["growth_mib"] < GROWTH_BOUND_MIB


def test_a_large_plain_encoded_parquet_value_is_refused_with_its_row():
    values = ["short", "short", "x" * (9 * 1024 * 1024), "short"]
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3, 4], "note": values}), buffer,
                   use_dictionary=False, data_page_size=1, write_batch_size=1)

    error = refused(buffer.getvalue(), "data.parquet")

    assert (error.code, error.column, error.row) == ("too_large_to_read", "note", 3)
    assert "row 3 is in a page that decodes to 9.0 MB" in str(error)


def test_a_small_dictionary_encoded_parquet_file_is_read_within_the_memory_budget(tmp_path):
    # 240 kB on disk, 400 MB once every row's value is spelled out.
    path = tmp_path / "repeated-long-value.parquet"
    notes = pa.array(["x" * 4000]).take(pa.array(np.zeros(100_000, dtype=np.int32)))
    pq.write_table(pa.table({"id": np.arange(100_000), "note": notes}), path,
                   compression="zstd")

    outcome = ingest_in_a_fresh_process(path)

    assert outcome["growth_mib"] < GROWTH_BOUND_MIB
    assert (outcome["rows"], outcome["preview_chars"]) == (100_000, 1000)


def test_a_parquet_file_of_many_tiny_pages_is_read_whole():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": np.arange(20_000), "word": [f"w{i}" for i in range(20_000)]}),
                   buffer, use_dictionary=False, data_page_size=1, write_batch_size=16)

    result = run(buffer.getvalue(), "data.parquet")

    assert (result.rows, column(result, "n").missing) == (20_000, 0)


def test_a_parquet_file_with_a_damaged_page_header_is_refused_as_damaged():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(100))}), buffer)
    data = bytearray(buffer.getvalue())
    chunk = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(0).column(0)
    data[chunk.data_page_offset:chunk.data_page_offset + 8] = b"\xff" * 8

    error = refused(bytes(data), "data.parquet")

    assert (error.code, str(error)) == (
        "format", "The Parquet file is damaged (a page header is malformed).")


def test_a_parquet_file_cut_into_too_many_pages_is_refused(monkeypatch):
    monkeypatch.setattr(parquet_pages, "MAX_PAGES", 100)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": np.arange(1000)}), buffer, use_dictionary=False,
                   data_page_size=1, write_batch_size=8)

    error = refused(buffer.getvalue(), "data.parquet")

    assert (error.code, str(error)) == (
        "too_large_to_read", "The Parquet file is cut into more than 100 pages, too many to "
        "check before reading it (write it with larger pages: writers make them about 1 MB).")
