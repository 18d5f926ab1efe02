"""Metrics and chart data, computed exactly as scikit-learn computes them.

Averaging: two classes -> binary scores for the positive class, the second class in sorted order
(e.g. "yes" of no/yes, 1 of 0/1, "true" of false/true); more classes -> macro average (every class
counts the same). ROC AUC: binary, or one-vs-rest macro for more classes. Chart data is kept
small enough to store in the job result and draw in a browser.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

ROC_POINTS = 200
SCATTER_POINTS = 500


def plain(value: Any) -> Any:
    """JSON-safe Python value: numpy scalars unwrapped, NaN and infinity as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def averaging(classes: list) -> dict[str, Any]:
    if len(classes) == 2:
        return {"average": "binary", "positive_class": plain(classes[1])}
    return {"average": "macro", "positive_class": None}


def codes(values, classes: list) -> np.ndarray:
    """Each label as its index in `classes` (-1 if absent).

    scikit-learn's metrics sort and compare the labels on every call, which for strings is a
    Python-object sort per metric (about 0.2 s per call on 40,000 rows); on the class indexes
    the same metrics give the same numbers at numpy speed.
    """
    return pd.Categorical(np.asarray(values, dtype=object), categories=classes).codes.astype(np.int64)


def classification_scores(y_true, y_pred, proba: np.ndarray, classes: list) -> dict[str, Any]:
    """accuracy, precision, recall, f1, roc_auc; roc_auc is None when the rows hold one class."""
    how = averaging(classes)
    y_true, y_pred = codes(y_true, classes), codes(y_pred, classes)
    kwargs: dict[str, Any] = {"average": how["average"], "zero_division": 0}
    if how["average"] == "binary":
        kwargs["pos_label"] = 1
    else:
        kwargs["labels"] = list(range(len(classes)))
    scores = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, **kwargs),
        "recall": skm.recall_score(y_true, y_pred, **kwargs),
        "f1": skm.f1_score(y_true, y_pred, **kwargs),
        "roc_auc": _roc_auc(y_true, proba, classes),
    }
    return {name: plain(float(value)) if value is not None else None
            for name, value in scores.items()}


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, classes: list) -> float | None:
    """`y_true` as class indexes (see codes)."""
    present = set(np.unique(y_true).tolist())
    if len(present) < 2 or (len(classes) > 2 and present != set(range(len(classes)))):
        return None  # Undefined when a class is absent from the evaluation rows.
    if len(classes) == 2:
        return skm.roc_auc_score(y_true == 1, proba[:, 1])
    return skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro",
                             labels=list(range(len(classes))))


def regression_scores(y_true, y_pred) -> dict[str, float | None]:
    return {
        "mae": plain(float(skm.mean_absolute_error(y_true, y_pred))),
        "rmse": plain(float(skm.root_mean_squared_error(y_true, y_pred))),
        "r2": plain(float(skm.r2_score(y_true, y_pred))) if len(y_true) > 1 else None,
    }


def confusion(y_true, y_pred, classes: list) -> dict[str, list]:
    """Rows are the actual class, columns the predicted one, both in `labels` order."""
    matrix = skm.confusion_matrix(codes(y_true, classes), codes(y_pred, classes),
                                  labels=list(range(len(classes))))
    return {"labels": [plain(c) for c in classes], "matrix": matrix.tolist()}


def _thin(values: list[np.ndarray], limit: int) -> list[list[float]]:
    """Evenly spaced points, first and last kept, so the curve's shape survives."""
    n = len(values[0])
    keep = np.unique(np.linspace(0, n - 1, num=min(n, limit)).round().astype(int))
    return [[round(float(v), 6) for v in array[keep]] for array in values]


def roc_curves(y_true, proba: np.ndarray, classes: list) -> list[dict[str, Any]]:
    """One curve for the positive class (binary) or one per class against the rest."""
    y_true = codes(y_true, classes)
    targets = [1] if len(classes) == 2 else range(len(classes))
    curves = []
    for index in targets:
        positives = y_true == index
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = skm.roc_curve(positives, proba[:, index])
        fpr_list, tpr_list = _thin([fpr, tpr], ROC_POINTS)
        curves.append({"class": plain(classes[index]), "fpr": fpr_list, "tpr": tpr_list,
                       "auc": plain(float(skm.auc(fpr, tpr)))})
    return curves


THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05, 0.10 ... 0.95


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def precision_recall(y_true, proba: np.ndarray, classes: list) -> dict[str, Any] | None:
    """For two classes: the precision-recall curve of the positive class and, at each threshold of
    THRESHOLD_GRID, what predicting "positive when its probability >= threshold" gives on these
    rows (counts, precision, recall, F1), with the threshold of best F1. None otherwise."""
    if len(classes) != 2:
        return None
    positive = codes(y_true, classes) == 1
    if positive.all() or not positive.any():
        return None
    scores = proba[:, 1]
    precision, recall, _ = skm.precision_recall_curve(positive, scores)
    precision_list, recall_list = _thin([precision, recall], ROC_POINTS)
    table = []
    for threshold in THRESHOLD_GRID:
        predicted = scores >= threshold
        tp = int((predicted & positive).sum())
        fp = int((predicted & ~positive).sum())
        fn = int((~predicted & positive).sum())
        tn = int((~predicted & ~positive).sum())
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = round(2 * p * r / (p + r), 6) if p and r else 0.0
        table.append({"threshold": threshold, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                      "precision": p, "recall": r, "f1": f1})
    best = max(table, key=lambda row: (row["f1"], -abs(row["threshold"] - 0.5)))
    return {"class": plain(classes[1]), "precision": precision_list, "recall": recall_list,
            "average_precision": plain(float(skm.average_precision_score(positive, scores))),
            "thresholds": table, "best_f1_threshold": best["threshold"]}


def predicted_vs_actual(y_true, y_pred, seed: int) -> dict[str, list[float]]:
    """A random sample of at most SCATTER_POINTS pairs, reproducible for a given seed."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    rows = np.arange(len(y_true))
    if len(rows) > SCATTER_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, SCATTER_POINTS, replace=False))
    return {"actual": [plain(float(v)) for v in y_true[rows]],
            "predicted": [plain(float(v)) for v in y_pred[rows]]}


def summarise_folds(fold_scores: list[dict[str, float | None]]
                    ) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Mean and standard deviation (population, like numpy) of each metric across folds."""
    means, stds = {}, {}
    for name in fold_scores[0]:
        values = [s[name] for s in fold_scores if s[name] is not None]
        means[name] = plain(float(np.mean(values))) if values else None
        stds[name] = plain(float(np.std(values))) if values else None
    return means, stds
