"""Training: run-time checks, evaluation (hold-out or k-fold), final fit, feature importance.

`train()` calls `should_stop()` between stages and between folds, and reports progress as
(fraction, message). Everything that can go wrong with the data ends in TrainingError with a
plain-language message; a cancellation ends in TrainingCancelled.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from . import data, metrics
from .errors import TrainingCancelled, TrainingError
from .explain import prepared_means
from .importance import permutation_importance_by_column
from .pipeline import LINEAR, build_pipeline
from .spec import ALGORITHMS, CLASSIFICATION, MAX_CLASSES, MIN_ROWS, MIN_ROWS_PER_CLASS, TrainSpec
from .versions import library_versions

# Estimators whose predict() is exactly classes_[argmax(predict_proba())]: scoring held-out rows
# takes both from one pass over the trees. (Not gradient boosting: its predict() thresholds the
# raw score, which can differ from the probabilities' argmax at a tie.)
PREDICT_IS_ARGMAX_OF_PROBA = (RandomForestClassifier,)

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
StopCheck = Callable[[], bool]
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 3
SAMPLE_ROWS = 1000


@dataclass
class Evaluation:
    """What the evaluation learnt; the model and rows are reused for feature importance."""

    report: dict[str, Any]
    model: Pipeline
    X: pd.DataFrame
    y: np.ndarray


@dataclass
class TrainResult:
    pipeline: Pipeline
    spec: TrainSpec
    column_types: dict[str, str]
    classes: list | None
    report: dict[str, Any]
    # Held-out rows (canonical frame, <= SAMPLE_ROWS) on which an ONNX copy must match scikit-learn.
    sample_rows: pd.DataFrame = field(repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.report["metrics"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary for the model version row (metrics, charts, importance, versions)."""
        return self.report


def _quiet(fraction: float, message: str) -> None:
    """Default progress sink."""


def _stage(progress: Progress, should_stop: StopCheck, fraction: float, message: str) -> None:
    if should_stop():
        raise TrainingCancelled("The job was cancelled.")
    progress(fraction, message)


def infer_column_types(frame: pd.DataFrame) -> dict[str, str]:
    """Types from a canonical frame's dtypes (booleans read as category: same treatment)."""
    types = {}
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_datetime64_any_dtype(dtype):
            types[name] = "datetime"
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            types[name] = "number"
        else:
            types[name] = "category"
    return types


def _missing(series: pd.Series) -> np.ndarray:
    mask = series.isna().to_numpy()
    if not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_datetime64_any_dtype(
            series):
        mask = mask | (series.astype(str) == "").to_numpy()
    return mask


def _target(values: pd.Series, spec: TrainSpec) -> np.ndarray:
    """Classes as ints when a number column holds whole numbers (0/1, not 0.0/1.0)."""
    if spec.task != CLASSIFICATION:
        if not pd.api.types.is_numeric_dtype(values):
            raise TrainingError(f"The target '{spec.target}' does not hold numbers, so it cannot "
                                "be predicted as an amount. Choose classification.")
        return values.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float)
        return numbers.astype(np.int64) if np.all(np.mod(numbers, 1) == 0) else numbers
    return values.astype(str).to_numpy(dtype=object)


def _check_classes(y: np.ndarray, spec: TrainSpec) -> None:
    # Hash counts, then sort the few distinct labels: np.unique would sort every row's string.
    tally = pd.Series(y).value_counts(sort=False).sort_index()
    labels, counts = tally.index.to_numpy(), tally.to_numpy()
    name = spec.target
    if len(labels) < 2:
        raise TrainingError(f"The target '{name}' has only one value in the rows that have one, "
                            "so there is nothing to tell apart.")
    if len(labels) > MAX_CLASSES:
        raise TrainingError(f"The target '{name}' has {len(labels):,} different values, too many "
                            f"to predict as classes (at most {MAX_CLASSES}).")
    rarest = int(np.argmin(counts))
    if counts[rarest] < MIN_ROWS_PER_CLASS:
        raise TrainingError(f"Too few rows: the class '{labels[rarest]}' of '{name}' has only "
                            f"{counts[rarest]} row; each class needs at least "
                            f"{MIN_ROWS_PER_CLASS}.")
    folds = spec.evaluation.get("folds", 0)
    if counts[rarest] < folds:
        raise TrainingError(f"The class '{labels[rarest]}' of '{name}' has only "
                            f"{counts[rarest]} rows, fewer than the {folds} folds. Choose fewer "
                            "folds or a hold-out split.")


def _check_cardinality(X: pd.DataFrame, spec: TrainSpec, types: dict[str, str]) -> None:
    for name in spec.features:
        if types[name] in ("category", "text", "boolean"):
            distinct = X[name][X[name] != ""].nunique()
            if distinct > spec.cardinality_fail:
                raise TrainingError(f"Column '{name}' has {distinct:,} different values; that is "
                                    "too many categories to learn from. Leave it out of the "
                                    "features.")


def prepare_rows(df: pd.DataFrame, spec: TrainSpec, types: dict[str, str]
                 ) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Features and target of the usable rows, and how many rows lacked a target."""
    absent = [name for name in [spec.target, *spec.features] if name not in df.columns]
    if absent:
        names = ", ".join(f"'{name}'" for name in absent)
        raise TrainingError(f"The dataset no longer has the column(s) {names}.")
    keep = ~_missing(df[spec.target])
    dropped = int((~keep).sum())
    if keep.sum() < MIN_ROWS:
        raise TrainingError(f"Too few rows: only {int(keep.sum())} row(s) have a value in "
                            f"'{spec.target}'; at least {MIN_ROWS} are needed.")
    X = df.loc[keep, spec.features].reset_index(drop=True)
    for name in spec.features:
        if types[name] == "number":
            X[name] = X[name].astype(float).replace([np.inf, -np.inf], np.nan)
    y = _target(df.loc[keep, spec.target].reset_index(drop=True), spec)
    if spec.task == CLASSIFICATION:
        _check_classes(y, spec)
    _check_cardinality(X, spec, types)
    return X, y, dropped


def fit(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, spec: TrainSpec) -> Pipeline:
    """Fit, turning non-convergence and data errors into plain-language TrainingError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            return pipeline.fit(X, y)
        except ConvergenceWarning:
            raise TrainingError(_not_converged(spec))
        except MemoryError:
            raise TrainingError("The dataset needs more memory than this job may use. Choose "
                                "fewer features or a smaller dataset.")
        except ValueError as exc:
            logger.warning("fit failed", extra={"algorithm": spec.algorithm,
                                                "reason": str(exc)[:500]})
            raise TrainingError("The model could not be trained on this data. Check that the "
                                "features hold usable values, or try another algorithm.")


def _not_converged(spec: TrainSpec) -> str:
    label = ALGORITHMS[spec.algorithm].label.lower()
    iterations = spec.params.get("max_iter")
    within = f" within {iterations:,} iterations" if iterations else ""
    return (f"The model did not converge: the {label} did not settle on a solution{within}. "
            "Try more iterations (Maximum iterations), stronger regularisation, or fewer "
            "features.")


def _aligned_proba(estimator, raw: np.ndarray, classes: list) -> np.ndarray:
    """`raw` (estimator.predict_proba) in `classes` order even if the model never saw a class."""
    seen = list(estimator.classes_)
    if seen == classes:
        return raw
    proba = np.zeros((raw.shape[0], len(classes)))
    for j, label in enumerate(seen):
        proba[:, classes.index(label)] = raw[:, j]
    return proba


def _scores(model: Pipeline, X: pd.DataFrame, y: np.ndarray, classes: list | None
            ) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """Metrics on held-out rows. The rows are prepared once for both predict and predict_proba:
    the same calls Pipeline.predict and Pipeline.predict_proba make, so the same numbers."""
    prepared = model[:-1].transform(X)
    estimator = model.steps[-1][1]
    if classes is None:
        pred = estimator.predict(prepared)
        return metrics.regression_scores(y, pred), pred, None
    raw = estimator.predict_proba(prepared)
    if isinstance(estimator, PREDICT_IS_ARGMAX_OF_PROBA):
        pred = estimator.classes_[np.argmax(raw, axis=1)]  # what their predict() computes
    else:
        pred = estimator.predict(prepared)
    proba = _aligned_proba(estimator, raw, classes)
    return metrics.classification_scores(y, pred, proba, classes), pred, proba


def _charts(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: list | None,
            seed: int) -> dict[str, Any]:
    if classes is None:
        return {"predicted_vs_actual": metrics.predicted_vs_actual(y, pred, seed)}
    out = {"confusion_matrix": metrics.confusion(y, pred, classes),
           "roc_curve": metrics.roc_curves(y, proba, classes)}
    curve = metrics.precision_recall(y, proba, classes)
    if curve is not None:
        out["precision_recall"] = curve
    return out


def _holdout_split(X: pd.DataFrame, y: np.ndarray, spec: TrainSpec, classes: list | None):
    """train_test_split, stratified by class whenever both sides can hold every class.

    A tiny dataset gets a test set of at least one row per class (10 rows of 3 classes: 3 test
    rows, not 2), so every class is scored.
    """
    test_size: float | int = spec.evaluation["test_size"]
    stratify = None
    if classes is not None:
        n, k = len(y), len(classes)
        n_test = max(math.ceil(test_size * n), k)
        if n - n_test >= k:
            stratify = y
            if n_test > math.ceil(test_size * n):
                test_size = n_test
    return train_test_split(X, y, test_size=test_size, random_state=spec.random_state,
                            stratify=stratify)


def stage_fractions(spec: TrainSpec) -> dict[str, float]:
    """Where each stage starts on the 0..1 progress scale, in proportion to the rows each stage
    fits on (a fit costs about its rows): the job page estimates the time left from the
    fraction done and the time spent, so the fraction must track the work done.

    Hold-out fits once on (1 - test_size) of the rows, k folds fit k times on (k-1)/k of them,
    the final model once on all; reading and checking take the first 5%, feature importance
    (predictions on at most IMPORTANCE_ROWS rows) the last 10%.
    """
    if spec.evaluation.get("method") == "kfold":
        folds = spec.evaluation["folds"]
        evaluation_work = folds - 1.0
    else:
        evaluation_work = 1.0 - spec.evaluation.get("test_size", 0.2)
    fitting = 0.85
    final = 0.05 + fitting * evaluation_work / (evaluation_work + 1.0)
    return {"evaluate": 0.05, "final": final, "importance": 0.9}


def evaluate_holdout(X, y, spec, types, classes, progress, should_stop) -> Evaluation:
    _stage(progress, should_stop, stage_fractions(spec)["evaluate"], "Evaluating (hold-out split)")
    X_train, X_test, y_train, y_test = _holdout_split(X, y, spec, classes)
    model = fit(build_pipeline(spec, types), X_train, y_train, spec)
    scores, pred, proba = _scores(model, X_test, y_test, classes)
    report = {"evaluation": {**spec.evaluation, "train_rows": len(y_train),
                             "test_rows": len(y_test)},
              "metrics": scores, "metrics_std": None, "fold_metrics": None,
              **_charts(y_test, pred, proba, classes, spec.random_state)}
    return Evaluation(report, model, X_test, y_test)


def evaluate_kfold(X, y, spec, types, classes, progress, should_stop) -> Evaluation:
    """Mean ± std across folds; charts from the out-of-fold predictions of every row."""
    folds = spec.evaluation["folds"]
    splitter = (StratifiedKFold if classes is not None else KFold)(
        n_splits=folds, shuffle=True, random_state=spec.random_state)
    oof_pred = np.empty(len(y), dtype=y.dtype)
    oof_proba = np.zeros((len(y), len(classes))) if classes is not None else None
    fold_scores = []
    start, end = stage_fractions(spec)["evaluate"], stage_fractions(spec)["final"]
    for k, (train_rows, test_rows) in enumerate(splitter.split(X, y), start=1):
        _stage(progress, should_stop, start + (end - start) * (k - 1) / folds,
               f"Evaluating (fold {k} of {folds})")
        model = fit(build_pipeline(spec, types), X.iloc[train_rows], y[train_rows], spec)
        scores, pred, proba = _scores(model, X.iloc[test_rows], y[test_rows], classes)
        fold_scores.append(scores)
        oof_pred[test_rows] = pred
        if proba is not None:
            oof_proba[test_rows] = proba
    means, stds = metrics.summarise_folds(fold_scores)
    report = {"evaluation": {**spec.evaluation, "rows": len(y)}, "metrics": means,
              "metrics_std": stds, "fold_metrics": fold_scores,
              **_charts(y, oof_pred, oof_proba, classes, spec.random_state)}
    return Evaluation(report, model, X.iloc[test_rows], y[test_rows])


def feature_importance(model: Pipeline, X: pd.DataFrame, y: np.ndarray, spec: TrainSpec
                       ) -> list[dict[str, Any]]:
    """Permutation importance on held-out rows, per original column (not per one-hot column).

    Permutation works the same for every algorithm and measures what a column adds to
    predictions on unseen rows; it is capped at IMPORTANCE_ROWS rows to stay fast.
    """
    if len(X) > IMPORTANCE_ROWS:
        rows = np.sort(np.random.default_rng(spec.random_state).choice(
            len(X), IMPORTANCE_ROWS, replace=False))
        X, y = X.iloc[rows], y[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return permutation_importance_by_column(
            model, X, y, classify=spec.task == CLASSIFICATION, repeats=IMPORTANCE_REPEATS,
            seed=spec.random_state)


def train(df: pd.DataFrame, spec: TrainSpec, column_types: dict[str, str] | None = None,
          progress: Progress | None = None, should_stop: StopCheck | None = None) -> TrainResult:
    """Evaluate, fit the final pipeline on every usable row, and describe the result."""
    # One budget for every kind of parallelism (forest workers, OpenMP in gradient boosting,
    # BLAS): oversubscribed OpenMP threads spin and slowed boosting down 1.3x in our tests.
    with threadpool_limits(limits=spec.n_jobs):
        return _train(df, spec, column_types, progress, should_stop)


def _train(df: pd.DataFrame, spec: TrainSpec, column_types: dict[str, str] | None,
           progress: Progress | None, should_stop: StopCheck | None) -> TrainResult:
    started = time.perf_counter()
    progress, should_stop = progress or _quiet, should_stop or (lambda: False)
    _stage(progress, should_stop, 0.02, "Checking columns")
    known = column_types or infer_column_types(df)
    types = {name: known[name] for name in spec.features}
    X, y, dropped = prepare_rows(df, spec, types)
    classes = np.unique(y).tolist() if spec.task == CLASSIFICATION else None
    evaluate = evaluate_kfold if spec.evaluation["method"] == "kfold" else evaluate_holdout
    evaluation = evaluate(X, y, spec, types, classes, progress, should_stop)
    fractions = stage_fractions(spec)
    _stage(progress, should_stop, fractions["final"], "Training final model")
    final = fit(build_pipeline(spec, types), X, y, spec)
    _stage(progress, should_stop, fractions["importance"], "Computing feature importance")
    importance = feature_importance(evaluation.model, evaluation.X, evaluation.y, spec)
    # Explanations of a linear model need its inputs' training means (trees hold theirs).
    means = prepared_means(final, X) if spec.algorithm in LINEAR else None
    _stage(progress, should_stop, 1.0, "Done")
    report = {"task": spec.task, "algorithm": spec.algorithm, "params": spec.params,
              "target": spec.target, "features": list(spec.features), "column_types": types,
              "classes": [metrics.plain(c) for c in classes] if classes is not None else None,
              **({"averaging": metrics.averaging(classes)} if classes is not None else {}),
              **evaluation.report, "feature_importance": importance,
              "n_rows_used": len(y), "n_rows_dropped_missing_target": dropped,
              "prepared_means": means,
              "random_state": spec.random_state, "versions": library_versions(),
              "train_seconds": round(time.perf_counter() - started, 3)}
    return TrainResult(pipeline=final, spec=spec, column_types=types, classes=classes,
                       report=report, sample_rows=evaluation.X.head(SAMPLE_ROWS))


def train_from_file(stream: BinaryIO, fmt: str, spec: TrainSpec, column_types: dict[str, str],
                    progress: Progress | None = None,
                    should_stop: StopCheck | None = None, encoding: str = "utf-8") -> TrainResult:
    """Read only the target and feature columns (text read as `encoding`), then train; "Reading
    data" is the first stage."""
    progress, should_stop = progress or _quiet, should_stop or (lambda: False)
    _stage(progress, should_stop, 0.0, "Reading data")
    columns = [spec.target, *spec.features]
    frame = data.read_frame(stream, fmt, columns, {n: column_types[n] for n in columns},
                            encoding=encoding)
    return train(frame, spec, column_types, progress, should_stop)
