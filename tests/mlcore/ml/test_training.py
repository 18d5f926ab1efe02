"""train(): stored metrics equal scikit-learn's own, run-time failures are plain and final."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlcore.ml.errors import TrainingCancelled, TrainingError
from mlcore.ml.pipeline import build_pipeline
from mlcore.ml.spec import TrainSpec, validate_params
from mlcore.ml.training import train, train_from_file

from .conftest import csv_bytes


def make_spec(target, features, task, algorithm, evaluation=None, **params) -> TrainSpec:
    return TrainSpec(target=target, features=list(features), task=task, algorithm=algorithm,
                     params=validate_params(algorithm, params),
                     evaluation=evaluation or {"method": "holdout", "test_size": 0.2})


def test_holdout_accuracy_equals_scikit_learn_computed_directly(cancer):
    frame, types = cancer
    features = list(types)
    spec = make_spec("target", features, "classification", "logistic_regression")
    result = train(frame, spec, types)

    by_hand = Pipeline([
        ("prepare", ColumnTransformer([("numbers", Pipeline([
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler())]), features)])),
        ("model", LogisticRegression(C=1.0, max_iter=1000, random_state=42))])
    X_train, X_test, y_train, y_test = train_test_split(
        frame[features], frame["target"], test_size=0.2, random_state=42,
        stratify=frame["target"])
    by_hand.fit(X_train, y_train)
    predicted = by_hand.predict(X_test)
    assert result.metrics == {
        "accuracy": skm.accuracy_score(y_test, predicted),
        "precision": skm.precision_score(y_test, predicted),
        "recall": skm.recall_score(y_test, predicted),
        "f1": skm.f1_score(y_test, predicted),
        "roc_auc": skm.roc_auc_score(y_test, by_hand.predict_proba(X_test)[:, 1]),
    }
    assert result.report["averaging"] == {"average": "binary", "positive_class": 1}
    assert result.report["evaluation"] == {"method": "holdout", "test_size": 0.2,
                                           "train_rows": 455, "test_rows": 114}


@pytest.mark.parametrize("algorithm", ["hist_gradient_boosting", "random_forest"])
def test_a_mixed_type_pipeline_scores_like_scikit_learn_on_the_same_split(mixed, algorithm):
    frame, types = mixed
    spec = make_spec("churn", types, "classification", algorithm)
    result = train(frame, spec, types)

    X_train, X_test, y_train, y_test = train_test_split(
        frame[list(types)], frame["churn"].to_numpy(dtype=object), test_size=0.2,
        random_state=42, stratify=frame["churn"])
    model = build_pipeline(spec, types).fit(X_train, y_train)
    predicted = model.predict(X_test)
    assert result.metrics["accuracy"] == skm.accuracy_score(y_test, predicted)
    assert result.metrics["f1"] == skm.f1_score(y_test, predicted, pos_label="yes")
    assert result.report["confusion_matrix"] == {
        "labels": ["no", "yes"],
        "matrix": skm.confusion_matrix(y_test, predicted, labels=["no", "yes"]).tolist()}


def test_regression_metrics_equal_scikit_learn(mixed):
    frame, types = mixed
    spec = make_spec("spend", types, "regression", "ridge")
    result = train(frame, spec, types)

    X_train, X_test, y_train, y_test = train_test_split(
        frame[list(types)], frame["spend"].to_numpy(), test_size=0.2, random_state=42)
    predicted = build_pipeline(spec, types).fit(X_train, y_train).predict(X_test)
    assert result.metrics == {"mae": skm.mean_absolute_error(y_test, predicted),
                              "rmse": skm.root_mean_squared_error(y_test, predicted),
                              "r2": skm.r2_score(y_test, predicted)}
    assert len(result.report["predicted_vs_actual"]["actual"]) == 120
    assert result.classes is None


def test_kfold_reports_the_mean_and_spread_that_cross_validation_gives(cancer):
    frame, types = cancer
    spec = make_spec("target", types, "classification", "random_forest",
                     {"method": "kfold", "folds": 4}, n_estimators=20)
    result = train(frame, spec, types)

    scores = cross_validate(build_pipeline(spec, types), frame[list(types)], frame["target"],
                            cv=StratifiedKFold(4, shuffle=True, random_state=42),
                            scoring=["accuracy", "f1", "roc_auc"])
    assert result.metrics["accuracy"] == np.mean(scores["test_accuracy"])
    assert result.metrics["f1"] == pytest.approx(np.mean(scores["test_f1"]), abs=1e-12)
    assert result.metrics["roc_auc"] == pytest.approx(np.mean(scores["test_roc_auc"]),
                                                      abs=1e-12)
    assert result.report["metrics_std"]["accuracy"] == pytest.approx(
        np.std(scores["test_accuracy"]), abs=1e-12)
    assert len(result.report["fold_metrics"]) == 4
    assert sum(map(sum, result.report["confusion_matrix"]["matrix"])) == len(frame)


def test_kfold_regression_uses_shuffled_kfold(mixed):
    frame, types = mixed
    spec = make_spec("spend", ["age", "city"], "regression", "linear_regression",
                     {"method": "kfold", "folds": 3})
    result = train(frame, spec, types)
    scores = cross_validate(build_pipeline(spec, types), frame[["age", "city"]], frame["spend"],
                            cv=KFold(3, shuffle=True, random_state=42), scoring="r2")
    assert result.metrics["r2"] == pytest.approx(np.mean(scores["test_score"]), abs=1e-12)


def test_more_than_two_classes_use_macro_averages(mixed):
    frame, types = mixed
    spec = make_spec("note", ["age", "income", "city"], "classification",
                     "logistic_regression")
    result = train(frame, spec, {**types, "note": "category"})
    assert result.report["averaging"] == {"average": "macro", "positive_class": None}
    assert result.classes == ["new", "returning", "vip"]
    assert [curve["class"] for curve in result.report["roc_curve"]] == result.classes


def test_chart_data_stays_small(cancer):
    frame, types = cancer
    big = pd.concat([frame] * 8, ignore_index=True)
    big["target"] = np.where(np.random.default_rng(0).random(len(big)) < 0.5, 0, 1)
    result = train(big, make_spec("target", types, "classification", "logistic_regression"),
                   types)
    assert all(len(curve["fpr"]) <= 200 for curve in result.report["roc_curve"])


def test_rows_without_a_target_are_dropped_and_counted(mixed):
    frame, types = mixed
    holed = frame.copy()
    holed.loc[:49, "churn"] = ""
    result = train(holed, make_spec("churn", ["age", "city"], "classification",
                                    "logistic_regression"), types)
    assert result.report["n_rows_dropped_missing_target"] == 50
    assert result.report["n_rows_used"] == len(frame) - 50


def test_feature_importance_is_reported_per_original_column(mixed):
    frame, types = mixed
    result = train(frame, make_spec("churn", types, "classification", "random_forest",
                                    n_estimators=20), types)
    assert sorted(row["feature"] for row in result.report["feature_importance"]) == sorted(types)


def test_a_column_with_thousands_of_categories_fails_with_a_plain_reason(mixed):
    frame, types = mixed
    wide = frame.copy()
    wide["customer_id"] = [f"C{i:05d}" for i in range(len(wide))]
    spec = make_spec("churn", ["age", "customer_id"], "classification", "random_forest")
    spec.cardinality_fail = 500
    with pytest.raises(TrainingError) as caught:
        train(wide, spec, {**types, "customer_id": "category"})
    assert str(caught.value) == ("Column 'customer_id' has 600 different values; that is too many "
                                 "categories to learn from. Leave it out of the features.")


def test_a_fit_that_does_not_converge_fails_the_job(cancer):
    frame, types = cancer
    spec = make_spec("target", types, "classification", "logistic_regression", max_iter=10)
    with pytest.raises(TrainingError, match="did not converge.*within 10 iterations"):
        train(frame, spec, types)


def test_a_target_with_one_class_left_after_dropping_missing_fails(mixed):
    frame, types = mixed
    single = frame.copy()
    single.loc[single["churn"] == "yes", "churn"] = ""
    with pytest.raises(TrainingError, match="only one value"):
        train(single, make_spec("churn", ["age"], "classification", "random_forest"), types)


def test_a_class_with_one_row_fails_at_run_time(mixed):
    frame, types = mixed
    odd = frame.copy()
    odd.loc[0, "churn"] = "maybe"
    with pytest.raises(TrainingError, match="the class 'maybe' of 'churn' has only 1 row"):
        train(odd, make_spec("churn", ["age"], "classification", "random_forest"), types)


def test_cancellation_is_honoured_between_stages(cancer):
    frame, types = cancer
    seen = []
    spec = make_spec("target", types, "classification", "logistic_regression",
                     {"method": "kfold", "folds": 3})
    with pytest.raises(TrainingCancelled):
        train(frame, spec, types, progress=lambda fraction, message: seen.append(message),
              should_stop=lambda: len(seen) >= 3)
    assert seen == ["Checking columns", "Evaluating (fold 1 of 3)", "Evaluating (fold 2 of 3)"]


def test_progress_walks_through_every_stage(cancer):
    frame, types = cancer
    seen = []
    train(frame, make_spec("target", types, "classification", "logistic_regression"), types,
          progress=lambda fraction, message: seen.append((fraction, message)))
    assert [message for _, message in seen] == [
        "Checking columns", "Evaluating (hold-out split)", "Training final model",
        "Computing feature importance", "Done"]
    assert [fraction for fraction, _ in seen] == sorted(fraction for fraction, _ in seen)


def test_the_report_is_plain_json_with_versions(mixed):
    frame, types = mixed
    result = train(frame, make_spec("churn", types, "classification", "logistic_regression"),
                   types)
    report = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(report["versions"]) >= {"python", "scikit-learn", "numpy", "pandas", "skops"}
    assert report["train_seconds"] > 0
    assert report["column_types"] == types


def test_number_classes_stay_whole_numbers(cancer):
    frame, types = cancer
    result = train(frame, make_spec("target", list(types)[:5], "classification",
                                    "random_forest", n_estimators=10), types)
    assert result.classes == [0, 1]
    assert result.pipeline.predict(frame[list(types)[:5]].head(3)).dtype == np.int64


def test_training_from_a_file_reads_only_what_it_needs(mixed):
    frame, types = mixed
    source = frame.assign(unused="=junk")
    seen = []
    result = train_from_file(io.BytesIO(csv_bytes(source)), "csv",
                             make_spec("churn", ["age", "signup"], "classification",
                                       "logistic_regression"),
                             {**types, "churn": "category", "unused": "text"},
                             progress=lambda fraction, message: seen.append(message))
    assert seen[0] == "Reading data"
    assert result.metrics["accuracy"] > 0.5


def test_a_tiny_dataset_still_gets_every_class_in_its_test_rows():
    frame = pd.DataFrame({"x": [float(i) for i in range(10)],
                          "label": ["a", "a", "a", "a", "b", "b", "b", "c", "c", "c"]})
    spec = make_spec("label", ["x"], "classification", "random_forest", n_estimators=5)
    result = train(frame, spec, {"x": "number", "label": "category"})
    assert result.report["evaluation"]["test_rows"] == 3
    assert sorted(map(sum, result.report["confusion_matrix"]["matrix"])) == [1, 1, 1]
