"""Parquet files: types kept, nested columns refused, limits from the metadata (mlcore/ingest/parquet.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcore.ingest import IngestLimits
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
