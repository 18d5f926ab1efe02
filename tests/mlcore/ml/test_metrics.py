"""mlcore.ml.metrics scores on class indexes: the same numbers scikit-learn gives on the labels."""

import numpy as np
import pytest
from sklearn import metrics as skm

from mlcore.ml import metrics


@pytest.mark.parametrize("classes", [["no", "yes"], [0, 1], ["a", "b", "c"], [1, 2, 7]])
def test_scores_equal_scikit_learn_on_the_labels(classes):
    rng = np.random.default_rng(3)
    labels = np.array(classes)  # the dtype the target column has: strings or numbers
    y_true = labels[rng.integers(0, len(classes), 500)]
    y_pred = np.where(rng.random(500) < 0.7, y_true, labels[rng.integers(0, len(classes), 500)])
    proba = rng.dirichlet(np.ones(len(classes)), 500)
    binary = len(classes) == 2
    kwargs = {"average": "binary", "pos_label": classes[1]} if binary else {"average": "macro", "labels": classes}

    scores = metrics.classification_scores(y_true, y_pred, proba, classes)

    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert scores[name] == pytest.approx(fn(y_true, y_pred, zero_division=0, **kwargs)), name
    expected_auc = (skm.roc_auc_score(y_true == classes[1], proba[:, 1]) if binary else
                    skm.roc_auc_score(list(y_true), proba, multi_class="ovr", labels=classes))
    assert scores["roc_auc"] == pytest.approx(expected_auc)
    matrix = metrics.confusion(y_true, y_pred, classes)["matrix"]
    assert matrix == skm.confusion_matrix(list(y_true), list(y_pred), labels=classes).tolist()
    curves = metrics.roc_curves(y_true, proba, classes)
    assert len(curves) == (1 if binary else len(classes))
    assert curves[0]["auc"] == pytest.approx(skm.roc_auc_score(y_true == curves[0]["class"],
                                                               proba[:, classes.index(curves[0]["class"])]))


def test_auc_is_none_when_a_class_is_missing_from_the_rows():
    classes = ["a", "b", "c"]
    y = np.array(["a", "b"] * 10, dtype=object)
    scores = metrics.classification_scores(y, y, np.full((20, 3), 1 / 3), classes)
    assert scores["roc_auc"] is None and scores["accuracy"] == 1.0
