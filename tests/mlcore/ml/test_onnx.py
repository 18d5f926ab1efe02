"""ONNX copies: only kept when they give scikit-learn's answers; measured single-row speed."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.ml import onnx as onnx_module
from mlcore.ml.artifacts import sha256_hex
from mlcore.ml.errors import ArtifactIntegrityError
from mlcore.ml.onnx import OnnxModel, compile_onnx, load_onnx
from mlcore.ml.pipeline import build_pipeline
from mlcore.ml.spec import TrainSpec, validate_params

NOT_DATES = {"age": "number", "income": "number", "city": "category", "member": "boolean",
             "note": "text"}


def fitted(frame, types, algorithm, task, target, **params):
    spec = TrainSpec(target=target, features=list(types), task=task, algorithm=algorithm,
                     params=validate_params(algorithm, params), max_categories=5)
    return build_pipeline(spec, types).fit(frame[list(types)], frame[target])


def assert_same_as_sklearn(model, onnx_model, rows):
    labels, proba = onnx_model.predict(rows)
    assert labels.tolist() == model.predict(rows).tolist()
    np.testing.assert_allclose(proba, model.predict_proba(rows), atol=1e-4, rtol=0)


@pytest.mark.parametrize("algorithm", ["logistic_regression", "random_forest"])
def test_thirty_numeric_columns_give_sklearns_labels_and_probabilities(cancer, algorithm):
    frame, types = cancer
    model = fitted(frame, types, algorithm, "classification", "target")
    data = compile_onnx(model, frame.sample(100, random_state=0), types)
    assert_same_as_sklearn(model, OnnxModel(data), frame[list(types)])


def test_a_mixed_type_pipeline_matches_including_rare_and_unseen_categories(mixed):
    frame, types = mixed
    model = fitted(frame, NOT_DATES, "hist_gradient_boosting", "classification", "churn")
    data = compile_onnx(model, frame.tail(100), NOT_DATES)
    rows = frame[list(NOT_DATES)].copy()
    rows.loc[:9, "city"] = "Atlantis"  # never seen in training
    assert_same_as_sklearn(model, OnnxModel(data), rows)


@pytest.mark.parametrize("algorithm", ["linear_regression", "ridge", "random_forest"])
def test_regression_values_match_within_a_relative_tolerance(mixed, algorithm):
    frame, types = mixed
    model = fitted(frame, NOT_DATES, algorithm, "regression", "spend")
    values, proba = OnnxModel(compile_onnx(model, frame.tail(50), NOT_DATES)).predict(
        frame[list(NOT_DATES)])
    assert proba is None
    np.testing.assert_allclose(values, model.predict(frame[list(NOT_DATES)]), rtol=1e-4)


def test_date_columns_are_not_exported(mixed):
    frame, types = mixed
    model = fitted(frame, types, "logistic_regression", "classification", "churn")
    assert compile_onnx(model, frame.head(20), types) is None


def test_a_copy_that_disagrees_with_sklearn_is_not_kept(cancer, monkeypatch):
    frame, types = cancer
    model = fitted(frame, types, "logistic_regression", "classification", "target")
    monkeypatch.setattr(onnx_module, "PROBA_TOLERANCE", -1.0)
    assert compile_onnx(model, frame.head(20), types) is None


def test_rows_as_column_lists_give_the_same_answer_as_a_frame(mixed):
    frame, types = mixed
    model = fitted(frame, NOT_DATES, "random_forest", "classification", "churn",
                   n_estimators=10)
    onnx_model = OnnxModel(compile_onnx(model, frame.head(50), NOT_DATES))
    rows = frame[list(NOT_DATES)].head(5)
    as_lists = {name: rows[name].tolist() for name in NOT_DATES}
    assert onnx_model.predict(as_lists)[0].tolist() == onnx_model.predict(rows)[0].tolist()


def test_a_changed_onnx_file_is_refused(cancer):
    frame, types = cancer
    data = compile_onnx(fitted(frame, types, "logistic_regression", "classification", "target"),
                        frame.head(20), types)
    with pytest.raises(ArtifactIntegrityError):
        load_onnx(data, sha256_hex(b"other"))
    assert load_onnx(data, sha256_hex(data)).classes == [0, 1]
