"""Drift of a model's inputs against its training data: population stability index and friends.

The baseline comes from the training dataset's stored profile (mlcore.ingest), so monitoring
reads no training data again:

- numbers: the profile's 20 equal-width histogram bins (from the exact min to the exact max)
  merged into about 10 groups of equal training mass: deciles at the histogram's resolution.
  Cutting only at histogram edges keeps the expected shares exact (they are the profile's
  counts) and puts repeated values (whole numbers, 0/1 flags) in the same group for the
  training data and the sample alike. A value below the min falls in the first group, above the
  max in the last one; those are also counted as out of range.
- categories and booleans: one bin per value of the profile's top values, plus "other" for
  the rest of the training values and for values never seen.
- texts and dates: missing-value rate only.

PSI = sum((a - e) * ln(a / e)) over bins, with a and e the sample's and the training data's
shares of the non-missing values. Shares are smoothed (half a row per bin for the sample, a
floor of 1e-4 for the training data) so an empty bin gives a finite value; with fewer than
MIN_ROWS non-missing values the index is not computed (None): a handful of rows says nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from . import data
from .online import _Bad, _boolean, _is_missing, _number, _text

GROUPS = 10
MIN_ROWS = 50
OTHER = "(other)"
EXPECTED_FLOOR = 1e-4


# --- baseline --------------------------------------------------------------------------------
def baseline_from_profile(profile_columns: list[dict[str, Any]], features: list[str],
                          rows: int) -> dict[str, dict]:
    """{feature: {"type", "missing_rate", ...bins}} from a dataset profile (see module doc)."""
    by_name = {column["name"]: column for column in profile_columns}
    out = {}
    for name in features:
        column = by_name.get(name)
        if column is None:
            continue
        missing = int(column.get("missing") or 0)
        entry: dict[str, Any] = {"type": column["type"],
                                 "missing_rate": missing / rows if rows else 0.0}
        if column["type"] == "number" and column.get("histogram"):
            entry.update(_number_bins(column["histogram"]))
        elif column["type"] in ("category", "boolean") and column.get("top"):
            present = max(rows - missing, 1)
            shares = {str(item["value"]): item["count"] / present for item in column["top"]}
            complete = int(column.get("distinct") or 0) <= len(shares) and not column.get("top_is_estimate")
            entry.update(shares=shares, other=max(0.0, 1.0 - sum(shares.values())), complete=complete)
        out[name] = entry
    return out


def _number_bins(histogram: list[dict]) -> dict:
    counts = [int(b["count"]) for b in histogram]
    total = sum(counts) or 1
    cuts, shares, running, group = [], [], 0, 0
    for i, count in enumerate(counts[:-1]):
        running += count
        group += count
        if running / total >= (len(cuts) + 1) / GROUPS and group:
            cuts.append(float(histogram[i]["end"]))
            shares.append(group / total)
            group = 0
    shares.append((group + counts[-1]) / total)
    return {"cuts": cuts, "expected": shares, "min": float(histogram[0]["start"]),
            "max": float(histogram[-1]["end"])}


# --- measures --------------------------------------------------------------------------------
def psi(expected: list[float], counts: list[int]) -> float | None:
    """Population stability index of observed `counts` against `expected` shares."""
    n = sum(counts)
    if n < MIN_ROWS:
        return None
    floor = [max(e, EXPECTED_FLOOR) for e in expected]
    scale = sum(floor)
    total = 0.0
    for e, c in zip(floor, counts, strict=True):
        e = e / scale
        a = (c + 0.5) / (n + 0.5 * len(counts))
        total += (a - e) * math.log(a / e)
    return total


def _clean(value: Any, kind: str, nulls: frozenset[str]):
    """The value as the model read it (a float or a text), None when missing or unreadable."""
    if _is_missing(value, nulls):
        return None
    try:
        return {"number": _number, "boolean": _boolean}.get(kind, _text)(value)
    except _Bad:
        return None


def feature_report(base: dict, values: list[Any]) -> dict[str, Any]:
    """{"rows", "missing_rate", "out_of_range", "psi"} of one feature's sampled values."""
    nulls = frozenset(data.null_values())
    kind = base["type"]
    clean = [_clean(v, kind, nulls) for v in values]
    present = [v for v in clean if v is not None]
    report: dict[str, Any] = {"type": kind, "rows": len(values),
                              "missing_rate": (len(values) - len(present)) / len(values) if values else None,
                              "training_missing_rate": base.get("missing_rate"),
                              "out_of_range": None, "psi": None}
    if not present:
        return report
    if kind == "number" and "cuts" in base:
        numbers = np.array(present, dtype=float)
        outside = (numbers < base["min"]) | (numbers > base["max"])
        report["out_of_range"] = float(outside.mean())
        index = np.searchsorted(np.array(base["cuts"], dtype=float), numbers, side="right")
        counts = np.bincount(index, minlength=len(base["expected"])).tolist()
        report["psi"] = psi(base["expected"], counts)
    elif "shares" in base:
        shares = base["shares"]
        seen = Counter(present)
        known = list(shares)
        unknown = sum(n for v, n in seen.items() if v not in shares)
        if base.get("complete"):
            report["out_of_range"] = unknown / len(present)
        counts = [seen.get(v, 0) for v in known] + [unknown]
        report["psi"] = psi([shares[v] for v in known] + [base.get("other", 0.0)], counts)
    return report


def prediction_summary(predictions: list[Any], task: str) -> dict[str, Any]:
    """Classes: the share of each predicted class; regression: mean and deciles 10/50/90."""
    if not predictions:
        return {"rows": 0}
    if task == "classification":
        counts = Counter(str(p) for p in predictions)
        return {"rows": len(predictions), "shares": {k: n / len(predictions) for k, n in sorted(counts.items())}}
    numbers = np.array([float(p) for p in predictions if p is not None], dtype=float)
    if not len(numbers):
        return {"rows": len(predictions)}
    p10, p50, p90 = np.percentile(numbers, [10, 50, 90]).tolist()
    return {"rows": len(predictions), "mean": float(numbers.mean()), "p10": p10, "p50": p50, "p90": p90}


def drift_report(baseline: dict[str, dict], rows: list[dict[str, Any]], predictions: list[Any],
                 task: str) -> dict[str, Any]:
    """The day's report: per feature, the worst PSI and the predictions' distribution."""
    features = {name: feature_report(base, [row.get(name) for row in rows]) for name, base in baseline.items()}
    measured = [(f["psi"], name) for name, f in features.items() if f["psi"] is not None]
    worst = max(measured) if measured else (None, "")
    rates = [f["out_of_range"] for f in features.values() if f["out_of_range"] is not None]
    missing = [f["missing_rate"] for f in features.values() if f["missing_rate"] is not None]
    return {"rows": len(rows), "features": features, "max_psi": worst[0], "max_psi_feature": worst[1],
            "out_of_range": max(rates) if rates else None, "missing_rate": max(missing) if missing else None,
            "predictions": prediction_summary(predictions, task)}
