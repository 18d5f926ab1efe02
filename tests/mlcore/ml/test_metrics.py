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


@pytest.mark.parametrize("classes", [["no", "yes"], [0, 1]])
def test_the_threshold_table_equals_scikit_learn_at_each_threshold(classes):
    rng = np.random.default_rng(11)
    labels = np.array(classes)
    y_true = labels[rng.integers(0, 2, 400)]
    p_yes = np.clip(np.where(y_true == classes[1], 0.65, 0.35) + rng.normal(0, 0.2, 400), 0, 1)
    proba = np.column_stack([1 - p_yes, p_yes])

    curve = metrics.precision_recall(y_true, proba, classes)

    assert curve["class"] == classes[1]
    assert [row["threshold"] for row in curve["thresholds"]] == list(metrics.THRESHOLD_GRID)
    for row in curve["thresholds"]:
        flagged = np.where(p_yes >= row["threshold"], classes[1], classes[0])
        kwargs = {"pos_label": classes[1], "zero_division": 0}
        assert row["precision"] == pytest.approx(skm.precision_score(y_true, flagged, **kwargs), abs=1e-6)
        assert row["recall"] == pytest.approx(skm.recall_score(y_true, flagged, **kwargs), abs=1e-6)
        assert row["f1"] == pytest.approx(skm.f1_score(y_true, flagged, **kwargs), abs=1e-5)
        tn, fp, fn, tp = skm.confusion_matrix(y_true, flagged, labels=classes).ravel()
        assert (row["tn"], row["fp"], row["fn"], row["tp"]) == (tn, fp, fn, tp)
    best = max(curve["thresholds"], key=lambda r: r["f1"])
    assert curve["best_f1_threshold"] == best["threshold"]
    assert curve["average_precision"] == pytest.approx(skm.average_precision_score(y_true == classes[1], p_yes))
    assert len(curve["precision"]) == len(curve["recall"]) <= metrics.ROC_POINTS


def test_no_threshold_table_for_more_than_two_classes_or_one_present():
    proba = np.full((6, 3), 1 / 3)
    assert metrics.precision_recall(np.array(["a", "b", "c"] * 2), proba, ["a", "b", "c"]) is None
    assert metrics.precision_recall(np.array(["no"] * 6), np.full((6, 2), 0.5), ["no", "yes"]) is None


def test_a_threshold_picks_the_positive_class_from_its_probability():
    from mlcore.ml.predict import apply_threshold

    labels = np.array(["no", "no", "yes", "yes"])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.45, 0.55], [0.1, 0.9]])
    assert apply_threshold(labels, proba, ["no", "yes"], 0.3).tolist() == ["no", "yes", "yes", "yes"]
    assert apply_threshold(labels, proba, ["no", "yes"], 0.6).tolist() == ["no", "no", "no", "yes"]
    assert apply_threshold(labels, proba, ["no", "yes"], None) is labels
    numbers = np.array([0, 1, 1])
    assert apply_threshold(numbers, proba[:3], [0, 1], 0.5).dtype == numbers.dtype
