"""Finding the best model: successive halving over the platform's algorithms (Django-free).

A search is a fixed list of candidates (an algorithm and its settings). Rung 0 tries every
candidate on a quarter of the training rows, each next rung the better half of the previous one
on twice the rows, the last rung on all of them (the budget of a trial is its share of the data).
Trials score on a validation part carved out of the training split: the hold-out rows the final
version is reported on stay unseen by the search, so the version's metrics are not flattered by
the selection. The job (mlcore/automl.py) runs one trial per turn and stops when its budget would
be exceeded; this module only says what to try next and which trial won.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from .comparison import LOWER_IS_BETTER, MAIN_METRICS, METRIC_KEYS
from .pipeline import build_pipeline
from .spec import ALGORITHMS, CLASSIFICATION, TrainSpec, validate_params
from .training import _holdout_split, _scores, fit, prepare_rows

RUNG_FRACTIONS = (0.25, 0.5, 1.0)
KEEP_SHARE = 0.5  # each rung keeps the better half (rounded up) of the previous one
VALIDATION_SHARE = 0.25

# Settings tried besides each algorithm's defaults: a few that often matter, not a grid.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "logistic_regression": [{"C": 0.1}, {"C": 10.0}, {"class_weight": "balanced"}],
    "linear_regression": [],
    "ridge": [{"alpha": 0.1}, {"alpha": 10.0}],
    "random_forest": [{"n_estimators": 100, "min_samples_leaf": 5},
                      {"n_estimators": 50, "max_depth": 8}],
    "hist_gradient_boosting": [{"learning_rate": 0.05, "max_iter": 200},
                               {"max_leaf_nodes": 15, "l2_regularization": 1.0}],
}


def algorithms_for(task: str) -> list[str]:
    return [name for name, algo in ALGORITHMS.items() if task in algo.tasks]


def metrics_for(task: str) -> list[str]:
    return list(METRIC_KEYS[task])


def default_metric(task: str) -> str:
    return MAIN_METRICS[task][0]


def candidates(task: str, algorithms: list[str]) -> list[dict[str, Any]]:
    """Every algorithm's defaults first (a search cut short has tried those), then the variants."""
    chosen = [name for name in algorithms if task in ALGORITHMS[name].tasks]
    defaults = [{"algorithm": name, "params": validate_params(name, {})} for name in chosen]
    variants = [{"algorithm": name, "params": validate_params(name, variant)}
                for name in chosen for variant in VARIANTS.get(name, [])]
    return defaults + variants


def higher_is_better_score(metric: str, value: float | None) -> float | None:
    """A score where larger is better, whatever the metric (None stays None)."""
    if value is None or not math.isfinite(value):
        return None
    return -value if metric in LOWER_IS_BETTER else value


def _ranked(trials: list[dict], rung: int, metric: str) -> list[dict]:
    done = [t for t in trials if t["rung"] == rung and t["status"] == "succeeded"
            and higher_is_better_score(metric, t["score"]) is not None]
    return sorted(done, key=lambda t: (-higher_is_better_score(metric, t["score"]), t["candidate"]))


def rung_members(n_candidates: int, trials: list[dict], rung: int, metric: str) -> list[int]:
    """The candidates (indexes) that rung `rung` tries."""
    if rung == 0:
        return list(range(n_candidates))
    previous = _ranked(trials, rung - 1, metric)
    keep = math.ceil(len(previous) * KEEP_SHARE) if len(previous) > 1 else len(previous)
    return [t["candidate"] for t in previous[:keep]]


def next_trial(n_candidates: int, trials: list[dict], metric: str) -> tuple[int, int] | None:
    """(rung, candidate) to try next, or None when the last rung is done (or nothing is left)."""
    tried = {(t["rung"], t["candidate"]) for t in trials}
    for rung in range(len(RUNG_FRACTIONS)):
        members = rung_members(n_candidates, trials, rung, metric)
        if rung > 0 and len(members) <= 1 and _rung_complete(n_candidates, trials, rung - 1, metric):
            # One survivor: trying it on more rows tells nothing the refit will not.
            return None
        for candidate in members:
            if (rung, candidate) not in tried:
                return rung, candidate
    return None


def _rung_complete(n_candidates: int, trials: list[dict], rung: int, metric: str) -> bool:
    tried = {t["candidate"] for t in trials if t["rung"] == rung}
    return set(rung_members(n_candidates, trials, rung, metric)) <= tried


def planned_trials(n_candidates: int) -> int:
    """How many trials the search makes if its budget lets it finish (for progress)."""
    total, members = 0, n_candidates
    for _ in RUNG_FRACTIONS:
        total += members
        if members <= 1:
            break
        members = math.ceil(members * KEEP_SHARE)
        if members <= 1:
            break
    return total


def best(trials: list[dict], metric: str) -> dict | None:
    """The winner: the best score on the highest rung any trial succeeded on."""
    for rung in reversed(range(len(RUNG_FRACTIONS))):
        ranked = _ranked(trials, rung, metric)
        if ranked:
            return ranked[0]
    return None


def validation_split(frame: pd.DataFrame, spec: TrainSpec, types: dict[str, str]):
    """The rows trials learn from and are scored on: the hold-out split's training part (the
    same rows and seed a training job evaluates with), split again for validation. The training
    rows are shuffled once, so each rung's rows include the previous rung's."""
    X, y, _ = prepare_rows(frame, spec, types)
    classes = np.unique(y).tolist() if spec.task == CLASSIFICATION else None
    X_train, _, y_train, _ = _holdout_split(X, y, spec, classes)
    stratify = y_train if classes is not None and _can_stratify(y_train, len(classes)) else None
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, test_size=VALIDATION_SHARE, random_state=spec.random_state, stratify=stratify)
    return X_fit, y_fit, X_val, y_val, classes


def _can_stratify(y: np.ndarray, n_classes: int) -> bool:
    counts = pd.Series(y).value_counts()
    return counts.min() >= 2 and math.ceil(len(y) * VALIDATION_SHARE) >= n_classes


def run_trial(split, spec: TrainSpec, types: dict[str, str], candidate: dict, fraction: float
              ) -> dict[str, Any]:
    """Fit one candidate on `fraction` of the fitting rows; its validation metrics and time.

    Raises TrainingError (plain language) when the candidate cannot fit this data."""
    X_fit, y_fit, X_val, y_val, classes = split
    rows = max(int(round(len(y_fit) * fraction)), min(len(y_fit), 10))
    X_part, y_part = X_fit.iloc[:rows], y_fit[:rows]
    trial_spec = replace(spec, algorithm=candidate["algorithm"], params=dict(candidate["params"]))
    started = time.perf_counter()
    with threadpool_limits(limits=spec.n_jobs):
        model = fit(build_pipeline(trial_spec, {n: types[n] for n in spec.features}), X_part, y_part, trial_spec)
        scores, _, _ = _scores(model, X_val, y_val, classes)
    return {"metrics": scores, "rows": rows, "seconds": round(time.perf_counter() - started, 3)}
