"""Explaining one prediction: how much each input column moved it away from the baseline.

Every explanation is additive: `baseline + sum(contributions) == output`, where `output` is the
number the model really computed for the explained class (the predicted one) and `baseline` the
model's output for an "average" row of its training data.

- Linear models (logistic, linear and ridge regression), exact: a prepared column j adds
  coef_j * (x_j - mean_j), mean_j being the column's mean over the training rows (recorded at
  training time, `prepared_means`); the baseline is the model's output at those means. `output`
  is the log-odds of the predicted class for two classes, the class's linear score in the
  softmax for more, the predicted value for regression.
- Tree ensembles (random forest, histogram gradient boosting), through shap's TreeExplainer:
  exact Shapley values ("tree_shap", path-dependent) when the trees are small enough for that to
  take a few milliseconds (EXACT_BUDGET), otherwise Saabas's path attribution ("saabas": walk each
  tree from root to leaf and credit each change of the node's mean value to the split's column).
  The baseline of both is the trees' mean output over their training rows. `output` is the
  predicted class's probability for a forest, its log-odds (raw score with more classes) for
  gradient boosting, the predicted value for regression.

The prepared columns of one input column (its one-hot block, its date parts) are summed back
into that column. shap is imported on the first tree explanation only (~2 s, ~120 MB).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from .errors import MLError
from .importance import column_blocks

LINEAR_MODELS = (LogisticRegression, LinearRegression, Ridge)
TREE_MODELS = (RandomForestClassifier, RandomForestRegressor, HistGradientBoostingClassifier,
               HistGradientBoostingRegressor)
# Exact TreeSHAP costs about sum over leaves of (depth + 1)^2 per output; measured here at
# 1.2-7 ns per unit on one row, so 2M units keeps an explanation to a few milliseconds.
EXACT_BUDGET = 2_000_000
MEANS_CHUNK_ROWS = 50_000


class ExplanationUnavailable(MLError):
    """The version cannot be explained (a message for the user)."""


def prepared_means(pipeline: Pipeline, X) -> list[float]:
    """Mean of each prepared column over the training rows `X`, for linear models' baselines.

    Prepared in chunks so a wide one-hot layout of many rows never sits in memory at once.
    """
    prepare = pipeline[:-1]
    total = None
    for start in range(0, len(X), MEANS_CHUNK_ROWS):
        chunk = prepare.transform(X.iloc[start:start + MEANS_CHUNK_ROWS])
        sums = np.asarray(chunk.sum(axis=0)).ravel()
        total = sums if total is None else total + sums
    return [float(v) for v in total / len(X)]


def _dense(rows) -> np.ndarray:
    return rows.toarray() if sp.issparse(rows) else np.asarray(rows, dtype=float)


class Explainer:
    """Built once per loaded version (the serving cache keeps it with the predictor)."""

    def __init__(self, pipeline: Pipeline, means: list[float] | None):
        self.prepare = pipeline[:-1]
        self.features = [str(c) for c in pipeline.feature_names_in_]
        self.estimator = pipeline.steps[-1][1]
        self.blocks = column_blocks(pipeline.steps[0][1])
        self.classes = getattr(self.estimator, "classes_", None)
        if isinstance(self.estimator, LINEAR_MODELS):
            if not means:
                raise ExplanationUnavailable(
                    "This version was trained before explanations were recorded; train it again "
                    "to explain its predictions.")
            self.means = np.asarray(means, dtype=float)
            self.method = "linear"
        elif isinstance(self.estimator, TREE_MODELS):
            import shap  # heavy (numba): only processes that explain a tree model load it

            self.shap = shap.TreeExplainer(self.estimator)
            self.method = "tree_shap" if _exact_cost(self.shap) <= EXACT_BUDGET else "saabas"
        else:
            raise ExplanationUnavailable("This kind of model cannot be explained.")
        self.scale = self._scale()

    def _scale(self) -> str:
        if self.classes is None:
            return "value"
        return "probability" if isinstance(self.estimator, RandomForestClassifier) else "log-odds"

    def explain(self, frame, labels: list, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One explanation per row of the canonical `frame`, of the class in `labels` (the
        prediction shown) for classifiers; `values` are the rows' inputs to show beside them."""
        prepared = _dense(self.prepare.transform(frame[self.features]))  # in the order fitted
        if self.method == "linear":
            outputs, baselines, parts = self._linear(prepared, labels)
        else:
            outputs, baselines, parts = self._trees(prepared, labels)
        return [self._one(outputs[i], baselines[i], parts[i], labels[i], values[i])
                for i in range(len(prepared))]

    def _class_index(self, label) -> int:
        return [str(c) for c in self.classes].index(str(label))

    def _linear(self, prepared: np.ndarray, labels: list):
        coef = np.atleast_2d(self.estimator.coef_)
        intercept = np.atleast_1d(self.estimator.intercept_)
        outputs, baselines, parts = [], [], []
        for x, label in zip(prepared, labels, strict=True):
            row, sign = 0, 1.0
            if self.classes is not None and len(coef) == 1:  # two classes: one logit, of classes[1]
                sign = 1.0 if self._class_index(label) == 1 else -1.0
            elif self.classes is not None:
                row = self._class_index(label)
            parts.append(sign * coef[row] * (x - self.means))
            baselines.append(sign * float(coef[row] @ self.means + intercept[row]))
            outputs.append(sign * float(coef[row] @ x + intercept[row]))
        return outputs, baselines, parts

    def _trees(self, prepared: np.ndarray, labels: list):
        if isinstance(self.estimator, RandomForestRegressor | RandomForestClassifier):
            prepared = prepared.astype(np.float32).astype(np.float64)  # the trees split float32s
        raw = np.asarray(self.shap.shap_values(prepared, approximate=self.method == "saabas",
                                               check_additivity=False))
        expected = np.atleast_1d(np.asarray(self.shap.expected_value, dtype=float))
        outputs, baselines, parts = [], [], []
        for i, label in enumerate(labels):
            contribution = raw[i] if raw.ndim == 2 else None
            k, sign = 0, 1.0
            if raw.ndim == 3:  # one output per class
                k = self._class_index(label)
                contribution = raw[i, :, k]
            elif self.classes is not None:  # two-class boosting: one log-odds, of classes[1]
                sign = 1.0 if self._class_index(label) == 1 else -1.0
            base = sign * float(expected[k])
            parts.append(sign * contribution)
            baselines.append(base)
            outputs.append(base + float(np.sum(sign * contribution)))
        return outputs, baselines, parts

    def _one(self, output: float, baseline: float, part: np.ndarray, label, values: dict) -> dict:
        contributions = [{"feature": name, "value": values.get(name),
                          "contribution": float(part[block].sum())}
                         for name, block in self.blocks.items()]
        contributions.sort(key=lambda c: -abs(c["contribution"]))
        return {"method": self.method, "scale": self.scale,
                "class": None if self.classes is None else label,
                "baseline": float(baseline), "output": float(output),
                "contributions": contributions}


def _exact_cost(explainer) -> int:
    """Sum over every tree's leaves of (depth + 1)^2, times the outputs per leaf."""
    total = 0
    for tree in explainer.model.trees:
        left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
        depth, frontier, level = np.zeros(len(left), dtype=np.int64), np.array([0]), 0
        while frontier.size:
            depth[frontier] = level
            inner = frontier[left[frontier] >= 0]
            frontier = np.concatenate([left[inner], right[inner]])
            level += 1
        leaves = left < 0
        total += int(((depth[leaves] + 1) ** 2).sum()) * np.asarray(tree.values).reshape(
            len(left), -1).shape[1]
    return total
