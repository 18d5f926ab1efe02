"""Drift measures against a training profile made by the real ingest (mlcore.ingest)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from mlcore.ingest import IngestLimits, ingest
from mlcore.ml import drift

FEATURES = ["amount", "flag", "city", "member"]


def frame(rows: int, seed: int, shift: float = 0.0, city_p=(0.5, 0.3, 0.2)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(100 + shift, 15, rows).round(2),
        "flag": rng.integers(0, 2, rows),  # a number with two values: ties on every bin edge
        "city": rng.choice(["paris", "lyon", "nice"], rows, p=list(city_p)),
        "member": rng.choice(["yes", "no"], rows),
    })


def baseline_of(data: pd.DataFrame) -> dict:
    result = ingest(io.BytesIO(data.to_csv(index=False).encode()), filename="train.csv",
                    limits=IngestLimits(max_rows=10**7, max_columns=100))
    columns = json.loads(json.dumps([c.to_dict() for c in result.columns], default=str))
    return drift.baseline_from_profile(columns, FEATURES, result.rows)


def rows_of(data: pd.DataFrame) -> list[dict]:
    return data.astype(object).to_dict("records")


@pytest.fixture(scope="module")
def baseline():
    return baseline_of(frame(5000, seed=1))


def test_numbers_are_binned_in_about_ten_groups_of_equal_training_mass(baseline):
    amount = baseline["amount"]
    assert 8 <= len(amount["expected"]) <= 11 and sum(amount["expected"]) == pytest.approx(1.0)
    assert max(amount["expected"]) < 0.2
    assert len(baseline["flag"]["expected"]) == 2  # 0s and 1s, whatever the histogram's 20 bins
    assert baseline["city"]["shares"] == pytest.approx({"paris": 0.5, "lyon": 0.3, "nice": 0.2}, abs=0.03)
    assert baseline["city"]["complete"] is True


def test_a_resample_is_not_drift(baseline):
    report = drift.drift_report(baseline, rows_of(frame(1000, seed=2)), ["a"] * 1000, "classification")
    assert report["max_psi"] < 0.05
    assert all(f["psi"] < 0.05 for f in report["features"].values())
    assert report["out_of_range"] < 0.01 and report["missing_rate"] == 0


def test_a_shift_of_three_standard_deviations_and_a_flipped_category_are_drift(baseline):
    moved = frame(1000, seed=2, shift=45, city_p=(0.2, 0.3, 0.5))
    features = drift.drift_report(baseline, rows_of(moved), [1.0] * 1000, "regression")["features"]
    assert features["amount"]["psi"] > 2 and features["city"]["psi"] > 0.2
    assert features["amount"]["out_of_range"] > 0.1  # beyond the training max (about 3.7 sd up)
    assert features["flag"]["psi"] < 0.05 and features["member"]["psi"] < 0.05


def test_out_of_range_and_missing_values_on_known_rows(baseline):
    low, high = baseline["amount"]["min"], baseline["amount"]["max"]
    amounts = [low - 1] * 3 + [high + 1] * 7 + [None] * 10 + ["n/a"] * 5 + [100.0] * 75
    cities = ["paris"] * 60 + ["berlin"] * 20 + [None] * 20
    members = ["yes", "Y", "no", "false"] * 25  # the words a boolean column reads as true/false
    report = drift.drift_report(baseline, [{"amount": a, "city": c, "member": m, "flag": 1}
                                           for a, c, m in zip(amounts, cities, members, strict=True)],
                                [], "classification")
    amount, city, member = (report["features"][n] for n in ("amount", "city", "member"))
    assert amount["missing_rate"] == 0.15 and amount["out_of_range"] == pytest.approx(10 / 85)
    assert city["missing_rate"] == 0.2 and city["out_of_range"] == 0.25
    assert member["missing_rate"] == 0 and member["out_of_range"] == 0 and member["psi"] < 0.05
    assert report["missing_rate"] == 0.2 and report["out_of_range"] == 0.25


def test_too_few_rows_give_no_index():
    assert drift.psi([0.5, 0.5], [10, 10]) is None
    assert drift.psi([0.5, 0.5], [50, 50]) == pytest.approx(0.0)
    assert drift.psi([0.5, 0.5], [100, 0]) > 1


def test_predictions_are_summarised_by_class_or_by_deciles():
    assert drift.prediction_summary(["a", "b", "a", "a"], "classification") == {
        "rows": 4, "shares": {"a": 0.75, "b": 0.25}}
    summary = drift.prediction_summary(list(range(101)), "regression")
    assert (summary["mean"], summary["p10"], summary["p50"], summary["p90"]) == (50, 10, 50, 90)
