"""Comparing model versions: which way each metric is better, a task's main metric, and how a
candidate stands against the version in production. Plain Python (pages import it; no NumPy)."""

from __future__ import annotations

from typing import Any

# The metrics a task's versions are shown with, in the order the pages list them.
METRIC_KEYS = {"classification": ["accuracy", "precision", "recall", "f1", "roc_auc"],
               "regression": ["mae", "rmse", "r2"]}
LOWER_IS_BETTER = frozenset({"mae", "rmse"})
# The metric a promotion is judged on first: ROC AUC ranks classes at every threshold (accuracy
# flatters a model that always answers the common class); RMSE weighs large misses in the
# target's own unit. Each falls back to the next when a version lacks it (ROC AUC is None when
# a class was absent from the held-out rows).
MAIN_METRICS = {"classification": ["roc_auc", "f1", "accuracy"], "regression": ["rmse", "mae", "r2"]}


def _number(metrics: dict, key: str) -> float | None:
    value = (metrics or {}).get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def main_metric(task: str, *metric_sets: dict) -> str | None:
    """The first main metric every given version has a number for."""
    for key in MAIN_METRICS.get(task, []):
        if all(_number(m, key) is not None for m in metric_sets):
            return key
    return None


def better(key: str, a: float | None, b: float | None) -> int:
    """1 if a is better than b on `key`, -1 if worse, 0 if equal or not comparable."""
    if a is None or b is None or a == b:
        return 0
    return 1 if (a < b) == (key in LOWER_IS_BETTER) else -1


def best_values(task: str, metric_sets: list[dict]) -> dict[str, float]:
    """For each metric, the best value among the versions (to highlight it)."""
    best = {}
    for key in METRIC_KEYS.get(task, []):
        values = [v for v in (_number(m, key) for m in metric_sets) if v is not None]
        if len(values) >= 2:
            best[key] = min(values) if key in LOWER_IS_BETTER else max(values)
    return best


def against_production(task: str, candidate: dict, production: dict | None) -> dict[str, Any]:
    """How a candidate's metrics stand against production's: better/worse per metric, the main
    metric's verdict, and whether it is worse on every metric both have."""
    if production is None:
        return {"main": None, "rows": [], "worse": [], "better": [], "main_worse": False, "all_worse": False}
    rows, worse, improved = [], [], []
    for key in METRIC_KEYS.get(task, []):
        cand, prod = _number(candidate, key), _number(production, key)
        verdict = better(key, cand, prod)
        rows.append({"key": key, "candidate": cand, "production": prod, "verdict": verdict,
                     "difference": None if cand is None or prod is None else cand - prod})
        if verdict < 0:
            worse.append(key)
        elif verdict > 0:
            improved.append(key)
    compared = [r for r in rows if r["candidate"] is not None and r["production"] is not None]
    main = main_metric(task, candidate, production)
    return {"main": main, "rows": rows, "worse": worse, "better": improved,
            "main_worse": main in worse, "all_worse": bool(compared) and len(worse) == len(compared)}
