"""Batch prediction: same answers as scikit-learn, bad rows reported, safe CSV cells."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlcore.ml.errors import MissingColumnsError, PredictionCancelled
from mlcore.ml.pipeline import build_pipeline
from mlcore.ml.predict import batch_predict, check_columns, coerce_chunk, neutralise
from mlcore.ml.spec import TrainSpec, validate_params

from .conftest import csv_bytes


@pytest.fixture(scope="module")
def churn_model(mixed):
    frame, types = mixed
    spec = TrainSpec(target="churn", features=list(types), task="classification",
                     algorithm="logistic_regression",
                     params=validate_params("logistic_regression", {}))
    return build_pipeline(spec, types).fit(frame[list(types)], frame["churn"])


def run(payload: bytes, model, types, fmt="csv", **options):
    out, errors = io.BytesIO(), io.BytesIO()
    summary = batch_predict(io.BytesIO(payload), fmt, out, errors, model, types, **options)
    return summary, out.getvalue(), errors.getvalue()


def read_output(payload: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(payload), keep_default_na=False)


def test_batch_predictions_equal_sklearn_on_the_same_rows(mixed, churn_model):
    frame, types = mixed
    summary, out, _ = run(csv_bytes(frame), churn_model, types, chunk_rows=128)
    output = read_output(out)
    assert summary["rows_scored"] == len(frame) and summary["rows_rejected"] == 0
    assert list(output.columns) == ["row", "prediction", "proba_no", "proba_yes"]
    assert output["row"].tolist() == list(range(1, len(frame) + 1))
    rows = frame[list(types)]
    assert output["prediction"].tolist() == churn_model.predict(rows).tolist()
    np.testing.assert_allclose(output[["proba_no", "proba_yes"]].to_numpy(),
                               churn_model.predict_proba(rows), rtol=1e-15)


def test_missing_columns_are_listed_before_any_output(mixed, churn_model):
    frame, types = mixed
    out, errors = io.BytesIO(), io.BytesIO()
    with pytest.raises(MissingColumnsError) as caught:
        batch_predict(io.BytesIO(csv_bytes(frame.drop(columns=["city", "age"]))), "csv", out,
                      errors, churn_model, types, id_column="customer")
    assert caught.value.columns == ["age", "city", "customer"]
    assert out.getvalue() == b"" and errors.getvalue() == b""


def test_values_that_cannot_be_converted_are_rejected_with_row_and_column(mixed, churn_model):
    frame, types = mixed
    broken = frame.head(10).astype({"age": object, "signup": object})
    broken.loc[2, "age"] = "forty"
    broken.loc[6, "signup"] = "someday"
    broken.loc[6, "member"] = "perhaps"
    summary, out, errors = run(csv_bytes(broken), churn_model, types, chunk_rows=4)
    assert (summary["rows_scored"], summary["rows_rejected"]) == (8, 2)
    assert read_output(errors).values.tolist() == [
        [3, "age", "'forty' is not a number"],
        [7, "member", "'perhaps' is not yes/no (true/false)"],
        [7, "signup", "'someday' is not a date"]]
    assert read_output(out)["row"].tolist() == [1, 2, 4, 5, 6, 8, 9, 10]


def test_extra_columns_are_ignored_and_missing_values_are_imputed(mixed, churn_model):
    frame, types = mixed
    noisy = frame.head(20).assign(extra="not a number", income=np.nan)
    summary, out, _ = run(csv_bytes(noisy), churn_model, types)
    assert summary["rows_scored"] == 20
    assert read_output(out)["prediction"].tolist() == churn_model.predict(
        frame.head(20)[list(types)].assign(income=np.nan)).tolist()


def test_the_id_column_passes_through_and_risky_cells_are_neutralised(mixed, churn_model):
    frame, types = mixed
    ids = ["=HYPERLINK(\"http://x\")", "+33 1 23", "-12.5", "@sum", "\tTAB", "plain", "+7", "",
           "-x", "1e5"]
    summary, out, _ = run(csv_bytes(frame.head(10).assign(customer=ids)), churn_model, types,
                          id_column="customer")
    output = read_output(out)
    assert list(output.columns) == ["row", "customer", "prediction", "proba_no", "proba_yes"]
    assert output["customer"].astype(str).tolist() == [
        "'=HYPERLINK(\"http://x\")", "'+33 1 23", "-12.5", "'@sum", "'\tTAB", "plain", "+7", "",
        "'-x", "1e5"]


def test_neutralise_leaves_plain_numbers_and_other_types_alone():
    cells = pa.array(["=1+1", "+1", "-2.5e3", ".5", "-", "@", "\rX", "safe", None])
    assert neutralise(cells).to_pylist() == ["'=1+1", "+1", "-2.5e3", ".5", "'-", "'@", "'\rX",
                                             "safe", None]
    numbers = pa.array([-1.0, 2.0])
    assert neutralise(numbers) is numbers


def test_class_labels_that_look_like_formulas_are_neutralised(mixed):
    frame, types = mixed
    spec = TrainSpec(target="churn", features=["age"], task="classification",
                     algorithm="random_forest", params=validate_params("random_forest",
                                                                      {"n_estimators": 5}))
    labels = frame["churn"].map({"yes": "=yes", "no": "-no"})
    model = build_pipeline(spec, types).fit(frame[["age"]], labels)
    _, out, _ = run(csv_bytes(frame.head(30)), model, types)
    header, *lines = out.decode().splitlines()
    assert header == '"row","prediction","proba_-no","proba_=yes"'
    assert {line.split(",")[1] for line in lines} <= {"\"'=yes\"", "\"'-no\""}


def test_chunk_size_does_not_change_the_output(mixed, churn_model):
    """Labels and rows are identical; probabilities may differ in the last bit, as they do in
    scikit-learn itself when the same rows are scored in different batch sizes (BLAS)."""
    frame, types = mixed
    whole = read_output(run(csv_bytes(frame), churn_model, types, chunk_rows=10_000)[1])
    small = read_output(run(csv_bytes(frame), churn_model, types, chunk_rows=7)[1])
    assert small[["row", "prediction"]].equals(whole[["row", "prediction"]])
    np.testing.assert_allclose(small[["proba_no", "proba_yes"]],
                               whole[["proba_no", "proba_yes"]], rtol=1e-12)


def test_parquet_output_and_a_parquet_copy_hold_the_same_rows(mixed, churn_model):
    frame, types = mixed
    copy = io.BytesIO()
    summary, out, _ = run(csv_bytes(frame.head(50)), churn_model, types, out_format="parquet",
                          parquet_writer=copy)
    direct = pd.read_parquet(io.BytesIO(out))
    pd.testing.assert_frame_equal(direct, pd.read_parquet(copy))
    assert direct["prediction"].tolist() == churn_model.predict(
        frame.head(50)[list(types)]).tolist()
    assert summary["output_bytes"] == len(out)


def test_regression_output_has_no_probabilities(mixed):
    frame, types = mixed
    spec = TrainSpec(target="spend", features=["age", "city"], task="regression",
                     algorithm="ridge", params=validate_params("ridge", {}))
    model = build_pipeline(spec, types).fit(frame[["age", "city"]], frame["spend"])
    _, out, _ = run(csv_bytes(frame.head(5)), model, types)
    output = read_output(out)
    assert list(output.columns) == ["row", "prediction"]
    np.testing.assert_allclose(output["prediction"], model.predict(frame.head(5)[["age",
                                                                                   "city"]]))


def test_cancellation_stops_between_chunks(mixed, churn_model):
    frame, types = mixed
    calls = []
    with pytest.raises(PredictionCancelled):
        run(csv_bytes(frame), churn_model, types, chunk_rows=100,
            should_stop=lambda: calls.append(1) or len(calls) > 2)
    assert len(calls) == 3


def test_progress_reports_rows_scored(mixed, churn_model):
    frame, types = mixed
    seen = []
    run(csv_bytes(frame), churn_model, types, chunk_rows=300, total_rows=len(frame),
        progress=lambda fraction, message: seen.append((fraction, message)))
    assert seen == [(0.5, "Scored 300 rows"), (0.99, "Scored 600 rows")]


def test_check_columns_names_the_missing_ones_in_model_order():
    assert check_columns(["a", "b", "c"], ["c", "x", "a"]) == ["b"]


def test_coerce_chunk_accepts_a_raw_frame_and_numbers_rows_from_the_offset():
    raw = pd.DataFrame({"n": ["1", "x", None], "flag": [True, "no", "maybe"]})
    clean, errors = coerce_chunk(raw, {"n": "number", "flag": "boolean"}, row_offset=100)
    assert clean.index.tolist() == [101]
    assert clean["flag"].tolist() == ["true"]
    assert errors == [(102, "n", "'x' is not a number"),
                      (103, "flag", "'maybe' is not yes/no (true/false)")]


def test_gzip_input_is_read_in_chunks(mixed, churn_model):
    import gzip

    frame, types = mixed
    summary, out, _ = run(gzip.compress(csv_bytes(frame)), churn_model, types, fmt="csv.gz",
                          chunk_rows=64)
    assert summary["rows_scored"] == len(frame)
    plain = read_output(run(csv_bytes(frame), churn_model, types, chunk_rows=64)[1])
    pd.testing.assert_frame_equal(read_output(out), plain)
