"""mlcore.ml.relationships: the numbers pandas gives, computed in chunks."""

import numpy as np
import pandas as pd
import pytest

from mlcore.ml.relationships import relationships


def frame(rows: int = 3000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(1e6, 5e3, rows)  # large magnitudes: precision must survive
    y = 0.004 * x + rng.normal(0, 10, rows)
    z = -2 * y + rng.normal(0, 40, rows)
    noise = rng.normal(0, 1, rows)
    data = pd.DataFrame({"x": x, "y": y, "z": z, "noise": noise,
                         "kind": rng.choice(["a", "b", "c"], rows)})
    for name in ("x", "y", "z"):  # holes in different rows: pairwise-complete counts differ
        data.loc[rng.choice(rows, rows // 10, replace=False), name] = np.nan
    data.loc[rng.choice(rows, 50, replace=False), "kind"] = ""
    return data


def chunks(data: pd.DataFrame, size: int = 700):
    for start in range(0, len(data), size):
        yield data.iloc[start:start + size]


def test_correlations_equal_pandas_pairwise_complete_pearson():
    data = frame()
    numbers = ["x", "y", "z", "noise"]
    found = relationships(chunks(data), numbers, "z", "number", max_rows=10**6)
    expected = data[numbers].corr()
    np.testing.assert_allclose(np.array(found["correlations"], dtype=float), expected.to_numpy(), atol=1e-9)
    assert [c["column"] for c in found["target_correlations"]][:2] == ["y", "x"]  # strongest first
    by_name = {c["column"]: c["r"] for c in found["target_correlations"]}
    assert by_name["y"] == pytest.approx(expected.loc["y", "z"], abs=1e-9)
    assert found["rows_read"] == 3000 and not found["truncated"]


def test_class_means_equal_a_groupby_and_skip_missing_labels():
    data = frame()
    found = relationships(chunks(data), ["x", "noise"], "kind", "category", max_rows=10**6)
    means = data[data["kind"] != ""].groupby("kind")[["x", "noise"]].mean()
    labels = [c["label"] for c in found["class_means"]["classes"]]
    assert sorted(labels) == ["a", "b", "c"]
    for i, label in enumerate(labels):
        assert found["class_means"]["means"]["x"][i] == pytest.approx(means.loc[label, "x"], rel=1e-12)
        assert found["class_means"]["means"]["noise"][i] == pytest.approx(means.loc[label, "noise"], abs=1e-12)


def test_reading_stops_at_the_row_cap():
    data = frame()
    found = relationships(chunks(data), ["x", "y"], None, None, max_rows=1000)
    assert found["rows_read"] == 1000 and found["truncated"]
    expected = data.iloc[:1000][["x", "y"]].corr().loc["x", "y"]
    assert found["correlations"][0][1] == pytest.approx(expected, abs=1e-9)


def test_a_constant_column_has_no_correlation():
    data = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0] * 4})
    found = relationships([data], ["a", "b"], None, None, max_rows=10)
    assert found["correlations"][0][1] is None and found["correlations"][0][0] == pytest.approx(1.0)
