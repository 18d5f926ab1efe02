"""Conversions of values: numbers as strict as pandas, datetimes in UTC (mlcore/ingest/values.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import io

import pandas as pd

from tests.mlcore.ingest.conftest import column, run


def test_datetimes_with_utc_offsets_are_datetimes_in_utc():
    result = run(b"at\n2024-01-02T03:04:05Z\n2024-01-02T05:04:05+02:00\n2024-01-03T00:00:00Z\n")

    at = column(result, "at")
    assert at.type == "datetime"
    assert (at.min, at.max) == ("2024-01-02T03:04:05+00:00", "2024-01-03T00:00:00+00:00")


def test_numbers_are_strict_like_pandas():
    result = run(b'a,b,c\n"1,000",1 000,inf\n2,3,4\n')

    assert [c.type for c in result.columns] == ["text", "text", "text"]


def test_whole_numbers_written_differently_are_one_value():
    data = b"n\n1\n1.0\n01\n-0\n0\n-3\n"

    n = column(run(data), "n")

    assert (n.type, n.distinct) == ("number", pd.read_csv(io.BytesIO(data))["n"].nunique())
