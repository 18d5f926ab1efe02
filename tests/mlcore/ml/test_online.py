"""Online predictions: JSON rows in, the same answers as scikit-learn out, fast."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from mlcore.ml.errors import BadValuesError, MissingColumnsError
from mlcore.ml.online import OnlinePredictor
from mlcore.ml.onnx import OnnxModel, compile_onnx
from mlcore.ml.pipeline import build_pipeline
from mlcore.ml.spec import TrainSpec, validate_params

NOT_DATES = {"age": "number", "income": "number", "city": "category", "member": "boolean",
             "note": "text"}


def fitted(frame, types, algorithm="logistic_regression", target="churn"):
    spec = TrainSpec(target=target, features=list(types), task="classification",
                     algorithm=algorithm, params=validate_params(algorithm, {}))
    return build_pipeline(spec, types).fit(frame[list(types)], frame[target])


def json_rows(frame, types):
    """Rows as an API client sends them: None for missing, dates as ISO strings."""
    rows = []
    for record in frame[list(types)].to_dict("records"):
        rows.append({k: (None if (isinstance(v, float) and math.isnan(v)) or v == "" else
                         v.isoformat() if hasattr(v, "isoformat") else v)
                     for k, v in record.items()})
    return rows


@pytest.fixture(scope="module")
def onnx_predictor(mixed):
    frame, _ = mixed
    model = fitted(frame, NOT_DATES)
    return OnlinePredictor(model, NOT_DATES, OnnxModel(compile_onnx(model, frame.head(100),
                                                                    NOT_DATES))), model


def test_online_onnx_answers_equal_sklearn(mixed, onnx_predictor):
    frame, _ = mixed
    predictor, model = onnx_predictor
    answer = predictor.predict(json_rows(frame, NOT_DATES))
    assert predictor.engine == "onnx"
    assert answer["predictions"] == model.predict(frame[list(NOT_DATES)]).tolist()
    proba = np.array([[p["no"], p["yes"]] for p in answer["probabilities"]])
    np.testing.assert_allclose(proba, model.predict_proba(frame[list(NOT_DATES)]), atol=1e-4)


def test_the_sklearn_fallback_handles_dates(mixed):
    frame, types = mixed
    model = fitted(frame, types)
    predictor = OnlinePredictor(model, types)
    answer = predictor.predict(json_rows(frame.head(20), types))
    assert predictor.engine == "sklearn"
    assert answer["predictions"] == model.predict(frame.head(20)[list(types)]).tolist()


def test_text_numbers_and_missing_markers_are_understood(onnx_predictor):
    predictor, _ = onnx_predictor
    row = {"age": " 41 ", "income": "NA", "city": None, "member": "Yes", "note": "vip",
           "ignored": "x"}
    age, income, city, member, note = predictor.coerce([row])[0]
    assert (age, city, member, note) == (41.0, "", "true", "vip")
    assert math.isnan(income)


def test_missing_columns_are_named(onnx_predictor):
    predictor, _ = onnx_predictor
    with pytest.raises(MissingColumnsError) as caught:
        predictor.predict([{"age": 1, "income": 2}])
    assert caught.value.columns == ["city", "member", "note"]


def test_bad_values_are_reported_with_row_and_column(onnx_predictor):
    predictor, _ = onnx_predictor
    good = {"age": 30, "income": 1.0, "city": "Paris", "member": True, "note": "new"}
    with pytest.raises(BadValuesError) as caught:
        predictor.predict([good, {**good, "age": "old", "member": "perhaps"},
                           {**good, "income": float("inf")}])
    assert caught.value.errors == [(2, "age", "'old' is not a number"),
                                   (2, "member", "'perhaps' is not yes/no (true/false)"),
                                   (3, "income", "'inf' is not a number")]


def test_a_single_row_takes_well_under_a_millisecond_with_onnx(cancer):
    frame, types = cancer
    model = fitted(frame, types, target="target")
    predictor = OnlinePredictor(model, types, OnnxModel(compile_onnx(model, frame, types)))
    row = json_rows(frame.head(1), types)
    predictor.predict(row)
    started = time.perf_counter()
    for _ in range(1000):
        predictor.predict(row)
    assert (time.perf_counter() - started) / 1000 < 0.0005
