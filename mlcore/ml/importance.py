"""Permutation importance per original column, with the preprocessing run only once.

scikit-learn's permutation_importance on the whole pipeline re-runs the preprocessing for every
shuffle (37 times for 12 columns and 3 repeats: ~0.5 s of a 1.5 s stage). Every preprocessing
step here works row by row, so shuffling an original column's rows equals shuffling the rows of
the prepared columns it produced (its one-hot block, its five date parts...). We prepare once,
shuffle those blocks together, and score only the model. The definition is scikit-learn's: the
drop in accuracy (classification) or R² (regression), mean and std over the repeats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import Pipeline

from .features import DATETIME_PARTS
from .metrics import plain


def _widths(step: Pipeline, columns: list[str]) -> list[int]:
    """How many prepared columns each input column of one ColumnTransformer group produced."""
    if "encode" in step.named_steps:
        tokens = [f"c{i}" for i in range(len(columns))]
        names = step.named_steps["encode"].get_feature_names_out(tokens)
        owners = [name.split("_", 1)[0] for name in names]
        return [owners.count(token) for token in tokens]
    if "parts" in step.named_steps:
        return [len(DATETIME_PARTS)] * len(columns)
    return [1] * len(columns)


def column_blocks(prepare: ColumnTransformer) -> dict[str, np.ndarray]:
    """Original column -> indices of the prepared columns that came from it."""
    blocks: dict[str, np.ndarray] = {}
    for name, step, columns in prepare.transformers_:
        if isinstance(step, str):
            continue
        start = prepare.output_indices_[name].start
        for column, width in zip(columns, _widths(step, list(columns)), strict=True):
            blocks[column] = np.arange(start, start + width)
            start += width
        if start != prepare.output_indices_[name].stop:
            raise ValueError(f"prepared width of group {name!r} does not add up")
    return blocks


def _score(estimator, X: np.ndarray, y: np.ndarray, classify: bool) -> float:
    predicted = estimator.predict(X)
    return accuracy_score(y, predicted) if classify else r2_score(y, predicted)


def permutation_importance_by_column(model: Pipeline, X: pd.DataFrame, y: np.ndarray,
                                     classify: bool, repeats: int, seed: int
                                     ) -> list[dict[str, Any]]:
    """[{"feature", "importance", "std"}] for every original column, largest first."""
    prepare, estimator = model.steps[0][1], model.steps[-1][1]
    prepared = prepare.transform(X)
    prepared = prepared.toarray() if sp.issparse(prepared) else np.asarray(prepared)
    baseline = _score(estimator, prepared, y, classify)
    rng = np.random.default_rng(seed)
    rows = []
    for column, block in column_blocks(prepare).items():
        drops = []
        for _ in range(repeats):
            shuffled = prepared.copy()
            shuffled[:, block] = prepared[rng.permutation(len(prepared))][:, block]
            drops.append(baseline - _score(estimator, shuffled, y, classify))
        rows.append({"feature": column, "importance": plain(float(np.mean(drops))),
                     "std": plain(float(np.std(drops)))})
    return sorted(rows, key=lambda row: -(row["importance"] or 0.0))
