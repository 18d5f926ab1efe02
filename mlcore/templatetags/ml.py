"""Display names for what the ML core stores as keys: metrics and algorithms."""

from django import template

register = template.Library()

METRIC_LABELS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1",
                 "roc_auc": "ROC AUC", "mae": "MAE", "rmse": "RMSE", "r2": "R²"}


@register.filter
def metric_label(key: str) -> str:
    return METRIC_LABELS.get(key, str(key).replace("_", " ").capitalize())


@register.filter
def algorithm_label(key: str) -> str:
    from mlcore.ml import ALGORITHMS

    algorithm = ALGORITHMS.get(key)
    return algorithm.label if algorithm is not None else key


@register.filter
def duration(seconds) -> str:
    """0.4 s, 12 s, 3 min 05 s, 2 h 07 min: what a job page shows for time spent or left."""
    if seconds is None or seconds == "":
        return "—"
    if float(seconds) < 10:
        return f"{float(seconds):.1f} s"
    total = int(round(float(seconds)))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def estimate(seconds) -> str:
    """A rounded estimate of time left (it is a projection, not a count): about 40 s, about 3 min."""
    if seconds is None or seconds == "":
        return ""
    value = float(seconds)
    if value < 10:
        return "a few seconds"
    if value < 60:
        return f"about {int(round(value / 5) * 5)} s"
    if value < 3600:
        return f"about {max(1, int(round(value / 60)))} min"
    return f"about {value / 3600:.1f} h"
