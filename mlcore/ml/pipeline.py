"""The scikit-learn pipeline: preprocessing is saved with the model, so predictions take raw rows.

Input is the canonical frame of `data.py` (numbers as floats, categories/booleans/text as strings
with "" for missing, dates as datetime64). Every step is a stock scikit-learn class or a named
function of `features.py`, which keeps the artifact loadable by skops with a short allowlist and
convertible to ONNX.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from .features import DATETIME_PARTS, datetime_part_names, datetime_parts
from .spec import CLASSIFICATION, TrainSpec

LINEAR = {"logistic_regression", "linear_regression", "ridge"}
# Gradient boosting refuses sparse input. The others take it, but a random forest fits ~2.5x
# faster on a dense matrix, so sparse is kept for wide one-hot layouts only, where a dense
# matrix would cost too much memory.
NEEDS_DENSE = {"hist_gradient_boosting"}
DENSE_MAX_COLUMNS = 300
MISSING_CATEGORY = "(missing)"


def make_estimator(spec: TrainSpec) -> BaseEstimator:
    """The bare model for the spec's algorithm and task, settings already validated."""
    p, seed = spec.params, spec.random_state
    classify = spec.task == CLASSIFICATION
    if spec.algorithm == "logistic_regression":
        weight = None if p["class_weight"] == "none" else p["class_weight"]
        return LogisticRegression(C=p["C"], max_iter=p["max_iter"], class_weight=weight,
                                  random_state=seed)
    if spec.algorithm == "linear_regression":
        return LinearRegression(fit_intercept=p["fit_intercept"])
    if spec.algorithm == "ridge":
        return Ridge(alpha=p["alpha"], random_state=seed)
    if spec.algorithm == "random_forest":
        forest = RandomForestClassifier if classify else RandomForestRegressor
        return forest(n_estimators=p["n_estimators"], max_depth=p["max_depth"],
                      min_samples_leaf=p["min_samples_leaf"], random_state=seed,
                      n_jobs=spec.n_jobs)
    if spec.algorithm == "hist_gradient_boosting":
        boosting = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return boosting(max_iter=p["max_iter"], learning_rate=p["learning_rate"],
                        max_depth=p["max_depth"], max_leaf_nodes=p["max_leaf_nodes"],
                        l2_regularization=p["l2_regularization"], random_state=seed)
    raise ValueError(f"unknown algorithm {spec.algorithm!r}")


def _numbers(scale: bool) -> Pipeline:
    # keep_empty_features: an all-missing column stays (as 0) so the column layout never shifts.
    steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if scale:  # Only linear models care about scale; trees split on order alone.
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def _categories(max_categories: int, dense: bool) -> Pipeline:
    return Pipeline([
        ("impute", SimpleImputer(missing_values="", strategy="constant",
                                 fill_value=MISSING_CATEGORY)),
        # Rare and unseen levels share one "infrequent" column instead of failing.
        ("encode", OneHotEncoder(max_categories=max_categories,
                                 handle_unknown="infrequent_if_exist", sparse_output=not dense)),
    ])


def _datetimes(scale: bool) -> Pipeline:
    steps = [("parts", FunctionTransformer(datetime_parts,
                                           feature_names_out=datetime_part_names)),
             ("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if scale:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def build_pipeline(spec: TrainSpec, column_types: dict[str, str]) -> Pipeline:
    """Preprocessing per column type, then the model; unfitted."""
    scale = spec.algorithm in LINEAR
    groups: dict[str, list[str]] = {"numbers": [], "categories": [], "datetimes": []}
    for name in spec.features:
        col_type = column_types[name]
        key = {"number": "numbers", "datetime": "datetimes"}.get(col_type, "categories")
        groups[key].append(name)
    widest = (len(groups["numbers"]) + len(groups["datetimes"]) * len(DATETIME_PARTS)
              + len(groups["categories"]) * spec.max_categories)
    dense = spec.algorithm in NEEDS_DENSE or widest <= DENSE_MAX_COLUMNS
    makers = {"numbers": lambda: _numbers(scale),
              "categories": lambda: _categories(spec.max_categories, dense),
              "datetimes": lambda: _datetimes(scale)}
    transformers = [(key, makers[key](), names) for key, names in groups.items() if names]
    prepare = ColumnTransformer(transformers, remainder="drop",
                                sparse_threshold=0 if dense else 0.3)
    return Pipeline([("prepare", prepare), ("model", make_estimator(spec))])
