"""How a dataset's columns relate: Pearson correlations between number columns, and each number
column against a chosen target (its correlation with a number target, its mean per class of a
category or yes/no target).

Computed in one streaming pass over at most ``max_rows`` rows, in bounded memory: per chunk a few
k x k matrix products accumulate, for every pair of columns, the count, sums, sums of squares and
cross-products over the rows where both are present (pairwise-complete, as pandas' corr() does).
Values are shifted by the first chunk's means first, so large magnitudes keep their precision.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .metrics import plain

MAX_NUMBER_COLUMNS = 20
MAX_CLASSES = 12


class _Pairs:
    def __init__(self, k: int) -> None:
        self.n = np.zeros((k, k))
        self.s = np.zeros((k, k))  # s[i, j]: sum of column i over rows where i and j are present
        self.q = np.zeros((k, k))  # the same for squares
        self.p = np.zeros((k, k))  # sum of x_i * x_j
        self.shift: np.ndarray | None = None

    def add(self, values: np.ndarray) -> None:
        if self.shift is None:
            with np.errstate(all="ignore"):
                self.shift = np.nan_to_num(np.nanmean(values, axis=0)) if len(values) else np.zeros(values.shape[1])
        present = ~np.isnan(values)
        x = np.where(present, values - self.shift, 0.0)
        m = present.astype(float)
        self.n += m.T @ m
        self.s += x.T @ m
        self.q += (x * x).T @ m
        self.p += x.T @ x

    def correlations(self) -> np.ndarray:
        n, s, q, p = self.n, self.s, self.q, self.p
        with np.errstate(all="ignore"):
            numerator = n * p - s * s.T
            spread = (n * q - s * s) * (n * q.T - s.T * s.T)
            r = numerator / np.sqrt(spread)
        r[(n < 2) | ~np.isfinite(r)] = np.nan
        return np.clip(r, -1.0, 1.0)


def relationships(frames: Iterable[pd.DataFrame], numbers: list[str], target: str | None,
                  target_type: str | None, max_rows: int) -> dict:
    """`frames`: canonical chunks (mlcore.ml.data.iter_frames) holding `numbers` and the target."""
    numbers = numbers[:MAX_NUMBER_COLUMNS]
    columns = list(dict.fromkeys(numbers + ([target] if target_type == "number" else [])))
    pairs = _Pairs(len(columns))
    by_class: dict[str, np.ndarray] = {}
    class_counts: dict[str, np.ndarray] = {}
    class_rows: dict[str, int] = {}
    read = 0
    truncated = False
    for frame in frames:
        if read + len(frame) > max_rows:
            frame = frame.iloc[: max_rows - read]
            truncated = True
        read += len(frame)
        if columns:
            pairs.add(frame[columns].to_numpy(dtype=float, na_value=np.nan))
        if target is not None and target_type in ("category", "boolean") and numbers:
            labels = frame[target].astype(str)
            values = frame[numbers].to_numpy(dtype=float, na_value=np.nan)
            present = ~np.isnan(values)
            for label, rows in labels.groupby(labels).indices.items():
                if label == "":
                    continue  # a missing target says nothing about its class
                chunk = values[rows]
                by_class[label] = by_class.get(label, 0) + np.where(present[rows], chunk, 0.0).sum(axis=0)
                class_counts[label] = class_counts.get(label, 0) + present[rows].sum(axis=0)
                class_rows[label] = class_rows.get(label, 0) + len(rows)
        if truncated:
            break
    matrix = pairs.correlations() if columns else np.zeros((0, 0))
    out: dict = {"rows_read": read, "truncated": truncated, "numbers": numbers, "target": target,
                 "correlations": [[plain(float(v)) for v in row[: len(numbers)]] for row in matrix[: len(numbers)]]}
    if target is not None and target_type == "number":
        t = columns.index(target)
        out["target_correlations"] = sorted(
            ({"column": name, "r": plain(float(matrix[i, t]))} for i, name in enumerate(numbers) if name != target),
            key=lambda item: -abs(item["r"]) if item["r"] is not None else 0.0)
    elif by_class:
        top = sorted(class_rows, key=lambda label: -class_rows[label])[:MAX_CLASSES]
        out["class_means"] = {
            "classes": [{"label": label, "rows": class_rows[label]} for label in top],
            "means": {name: [plain(float(by_class[label][i] / class_counts[label][i]))
                             if class_counts[label][i] else None for label in top]
                      for i, name in enumerate(numbers)},
            "more_classes": max(0, len(class_rows) - len(top)),
        }
    return out
