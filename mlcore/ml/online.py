"""Online predictions for a few rows per HTTP request: plain Python checks, then ONNX.

This is on the hot path of an endpoint serving >1,400 requests/s on two cores, so values are
checked with plain Python (no pandas, no pyarrow) and the verified ONNX copy answers when there
is one; scikit-learn is the fallback. Values are interpreted exactly as in files (data.py).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from . import data
from .errors import BadValuesError, MissingColumnsError
from .explain import Explainer
from .onnx import OnnxModel
from .predict import apply_threshold, check_columns, predict_chunk

_NUMBER = re.compile(data.NUMBER_RE)
_TRUE, _FALSE = frozenset(data.TRUE_WORDS), frozenset(data.FALSE_WORDS)


class _Bad(ValueError):
    """A value that cannot be converted; the message says what was expected."""


def _is_missing(value: Any, nulls: frozenset[str]) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value in nulls


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise _Bad("is not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value.strip())
    else:
        raise _Bad("is not a number")
    if not math.isfinite(number):
        raise _Bad("is not a number")
    return number


def _boolean(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    word = str(value).strip().lower()
    if word in _TRUE:
        return "true"
    if word in _FALSE:
        return "false"
    raise _Bad("is not yes/no (true/false)")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3.0 from JSON is the "3" a CSV file would have held.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _datetime(value: Any) -> datetime:
    stamp = pd.to_datetime(pd.Series([str(value)]), errors="coerce", utc=True, format="mixed")[0]
    if pd.isna(stamp):
        raise _Bad("is not a date")
    return stamp.tz_localize(None).to_pydatetime()


def _shown(value: Any) -> Any:
    """A canonical value as JSON shows it: missing as null, dates in ISO 8601."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.isoformat() if isinstance(value, datetime) else value


_CONVERT = {"number": _number, "boolean": _boolean, "category": _text, "text": _text,
            "datetime": _datetime}
_EMPTY = {"number": math.nan, "boolean": "", "category": "", "text": "", "datetime": None}


class OnlinePredictor:
    """A loaded model ready for requests; build once per model version and cache it."""

    def __init__(self, pipeline: Pipeline, column_types: dict[str, str],
                 onnx_model: OnnxModel | None = None, prepared_means: list[float] | None = None):
        self.pipeline = pipeline
        self.prepared_means = prepared_means
        self._explainer: Explainer | None = None
        self.features = [str(c) for c in pipeline.feature_names_in_]
        self.types = {name: column_types[name] for name in self.features}
        self.onnx = onnx_model
        self.engine = "onnx" if onnx_model is not None else "sklearn"
        classes = getattr(pipeline, "classes_", None)
        self.classes = None if classes is None else classes.tolist()
        self._keys = None if classes is None else [str(c) for c in self.classes]
        # Values are gathered in the ONNX model's input order: numbers first, then strings.
        self.order = onnx_model.columns if onnx_model is not None else self.features
        self._split = len(onnx_model.numbers) if onnx_model is not None else 0
        self._nulls = frozenset(data.null_values())
        self._plan = [(name, self.types[name] == "number", _CONVERT[self.types[name]],
                       _EMPTY[self.types[name]]) for name in self.order]

    def _check_columns(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            missing = check_columns(self.features, row)
            if missing:
                raise MissingColumnsError(missing)

    def coerce(self, rows: list[dict[str, Any]]) -> list[list]:
        """Rows of canonical values in `self.order`; MissingColumnsError / BadValuesError."""
        self._check_columns(rows)
        matrix, errors, nulls = [], [], self._nulls
        for number, row in enumerate(rows, start=1):
            values = []
            for name, is_number, convert, empty in self._plan:
                value = row[name]
                # Fast path: a JSON number that is finite (v - v == 0) or NaN (missing).
                if is_number and type(value) is float and (value - value == 0.0
                                                           or value != value):
                    values.append(value)
                    continue
                try:
                    values.append(empty if _is_missing(value, nulls) else convert(value))
                except _Bad as problem:
                    errors.append((number, name, f"'{str(value)[:40]}' {problem}"))
            matrix.append(values)
        if errors:
            raise BadValuesError(errors)
        return matrix

    def predict(self, rows: list[dict[str, Any]], threshold: float | None = None,
                explain: bool = False) -> dict[str, Any]:
        """{"predictions": [...], "probabilities": [{class: p}, ...] or None}; `threshold`, a
        two-class model's decision threshold (predict.apply_threshold). With `explain`, also
        "explanations": one per row, of the prediction given (explain.py);
        ExplanationUnavailable when the version cannot be explained."""
        matrix = self.coerce(rows)
        explainer = self.explainer() if explain else None
        if self.onnx is not None:
            labels, proba = self._onnx(matrix)
        else:
            labels, proba = self._sklearn(matrix)
        labels = apply_threshold(labels, proba, self.classes, threshold)
        result: dict[str, Any] = {"predictions": labels.tolist(), "probabilities": None}
        if proba is not None:
            keys = self._keys
            result["probabilities"] = [dict(zip(keys, p, strict=True)) for p in proba.tolist()]
        if explainer is not None:
            shown = [dict(zip(self.order, (_shown(v) for v in row), strict=True)) for row in matrix]
            result["explanations"] = explainer.explain(self._frame(matrix), result["predictions"], shown)
        return result

    def explainer(self) -> Explainer:
        """Built on the first explanation and kept with this (cached) predictor."""
        if self._explainer is None:
            self._explainer = Explainer(self.pipeline, self.prepared_means)
        return self._explainer

    def _onnx(self, matrix: list[list]) -> tuple[np.ndarray, np.ndarray | None]:
        split = self._split
        if split == len(self.order):
            return self.onnx.run(np.array(matrix, dtype=np.float32), None)
        numbers = np.array([row[:split] for row in matrix], dtype=np.float32) if split else None
        strings = np.array([row[split:] for row in matrix], dtype=object)
        return self.onnx.run(numbers, strings)

    def _frame(self, matrix: list[list]) -> pd.DataFrame:
        columns = {}
        for name, values in zip(self.order, zip(*matrix, strict=True), strict=True):
            col_type = self.types[name]
            if col_type == "number":
                columns[name] = np.array(values, dtype=float)
            elif col_type == "datetime":
                columns[name] = pd.to_datetime(pd.Series(values)).astype("datetime64[us]")
            else:
                columns[name] = np.array(values, dtype=object)
        return pd.DataFrame(columns)

    def _sklearn(self, matrix: list[list]) -> tuple[np.ndarray, np.ndarray | None]:
        out = predict_chunk(self.pipeline, self._frame(matrix))
        proba = out.iloc[:, 1:].to_numpy() if self.classes is not None else None
        return out["prediction"].to_numpy(), proba
