"""Statistics, histograms and top values, checked against pandas (mlcore/ingest/summaries.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from tests.mlcore.ingest.conftest import column, csv_bytes, mixed_frame, run


def test_statistics_match_pandas_on_a_small_table():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "x": np.round(rng.normal(50, 10, 500), 3),
        "n": rng.integers(0, 40, 500),
        "c": rng.choice(["red", "green", "blue", "grey"], 500, p=[0.4, 0.3, 0.2, 0.1]),
    })
    frame.loc[rng.choice(500, 37, replace=False), "x"] = np.nan
    frame.loc[rng.choice(500, 11, replace=False), "c"] = None

    result = run(csv_bytes(frame))

    expected = pd.read_csv(io.BytesIO(csv_bytes(frame)))
    for name in ("x", "n"):
        profile, series = column(result, name), expected[name]
        assert profile.missing == series.isna().sum()
        assert profile.distinct == series.nunique()
        assert profile.min == series.min() and profile.max == series.max()
        assert math.isclose(profile.mean, series.mean(), rel_tol=1e-12)
        assert math.isclose(profile.std, series.std(), rel_tol=1e-9)
    c = column(result, "c")
    assert (c.missing, c.distinct) == (11, 4)
    assert c.top == list(expected["c"].value_counts().items())
    assert not c.top_is_estimate


def test_histogram_counts_add_up_to_the_values_present():
    rng = np.random.default_rng(3)
    values = rng.exponential(5, 60_000)
    data = b"v\n" + b"\n".join(b"%.4f" % v for v in values) + b"\nNA\n\n"

    v = column(run(data, block_size=64 * 1024), "v")

    assert len(v.histogram) == 20
    assert sum(b["count"] for b in v.histogram) == 60_000
    assert v.histogram[0]["start"] == v.min and v.histogram[-1]["end"] == v.max
    assert v.histogram[0]["count"] > v.histogram[-1]["count"] > 0
    assert v.missing == 1


def test_small_histograms_are_exact():
    result = run(b"v\n" + b"".join(b"%d\n" % i for i in range(100)))

    counts = [b["count"] for b in column(result, "v").histogram]
    assert counts == [5] * 20


def test_datetime_histograms_have_iso_edges():
    result = run(b"d\n2024-01-01\n2024-01-11\n2024-01-21\n")

    d = column(result, "d")
    assert (d.min, d.max, d.mean) == ("2024-01-01", "2024-01-21", "2024-01-11T00:00:00")
    assert d.histogram[0]["start"] == "2024-01-01T00:00:00"
    assert sum(b["count"] for b in d.histogram) == 3


def test_top_categories_are_counted_exactly():
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + [f"rare{i}" for i in range(12)]
    result = run(("k\n" + "\n".join(values) + "\n").encode())

    k = column(result, "k")
    assert k.top[:3] == [("a", 50), ("b", 30), ("c", 20)]
    assert len(k.top) == 10
    assert k.histogram[0] == {"value": "a", "count": 50}


def test_many_distinct_values_are_estimated():
    data = b"id,g\n" + b"".join(b"%d,%d\n" % (i, i % 7) for i in range(300_000))

    result = run(data, block_size=256 * 1024)

    ident = column(result, "id")
    assert ident.distinct_is_estimate
    assert abs(ident.distinct - 300_000) < 300_000 * 0.03
    assert (column(result, "g").distinct, column(result, "g").distinct_is_estimate) == (7, False)


def test_frequent_values_of_a_big_text_column_are_found():
    rng = np.random.default_rng(1)
    words = [f"word{i}" for i in rng.integers(0, 10**6, 100_000)]
    words[7::10] = ["common"] * 10_000  # never the first value of a block
    data = ("w\n" + "\n".join(words) + "\n").encode()

    w = column(run(data, block_size=64 * 1024), "w")

    assert w.type == "text"
    assert w.top[0][0] == "common"
    assert 9_000 <= w.top[0][1] <= 10_000
    assert w.top_is_estimate


def test_a_very_long_value_does_not_change_how_short_ones_are_counted():
    first = [b"a", b"b", b"x" * 70_000] + [b"a", b"b"] * 10
    later = [b"a", b"b"] * 20_000
    data = b"v\n" + b"\n".join(first + later) + b"\n"

    v = column(run(data, block_size=128 * 1024), "v")

    assert (v.distinct, v.distinct_is_estimate) == (3, False)
    assert v.top[:2] == [("a", 20_011), ("b", 20_011)]


def test_statistics_match_pandas_over_many_blocks():
    frame = mixed_frame(30_000)
    data = csv_bytes(frame)

    result = run(data, block_size=8 * 1024)

    expected = pd.read_csv(io.BytesIO(data))
    for name in ("id", "age", "price"):
        profile, series = column(result, name), expected[name]
        assert (profile.type, profile.missing) == ("number", series.isna().sum())
        assert (profile.distinct, profile.distinct_is_estimate) == (series.nunique(), False)
        assert (profile.min, profile.max) == (series.min(), series.max())
        assert math.isclose(profile.mean, series.mean(), rel_tol=1e-12)
        assert math.isclose(profile.std, series.std(), rel_tol=1e-9)
    joined = column(result, "joined")
    assert (joined.type, joined.distinct) == ("datetime", expected["joined"].nunique())
    assert (joined.min, joined.max) == (expected["joined"].min(), expected["joined"].max())
    plan = column(result, "plan")
    assert plan.top == list(expected["plan"].value_counts().items())
    assert column(result, "note").distinct == expected["note"].nunique()


def test_long_values_are_cut_to_200_characters_in_the_top_values():
    long = "é" * 500
    data = ("v\n" + "\n".join([long] * 30 + [f"short {i}" for i in range(20)]) + "\n").encode()

    v = column(run(data), "v")

    assert v.top[0] == ("é" * 200, 30)
