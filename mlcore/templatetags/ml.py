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
