"""ONNX copies of pipelines for the online endpoint: ~10-15 µs per row instead of ~2 ms.

A copy is made at training time and kept only if it gives scikit-learn's labels exactly and its
probabilities (or regression values) within 1e-4 on held-out rows; otherwise `compile_onnx`
returns None and the endpoint uses scikit-learn. ONNX computes in float32, which is why the
check is needed at all.

Two converter fixes are scoped to our conversions (not registered globally):
- OneHotEncoder with an "infrequent" bucket, which skl2onnx 1.20 refuses for one input column;
- tree ensembles of histogram gradient boosting, whose converter passes Python booleans where
  onnx >= 1.17 wants integers.
Date columns are not converted (their calendar parts are a Python function): None.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .artifacts import verify_sha256

logger = logging.getLogger(__name__)

PROBA_TOLERANCE = 1e-4
REGRESSION_RTOL = 1e-4
META_INPUTS = "mlcore.inputs"
META_CLASSES = "mlcore.classes"
STRING_TYPES = ("category", "text", "boolean")


def _convert_one_hot(scope, operator, container) -> None:
    """OneHotEncoder over string columns, infrequent bucket included, as LabelEncoder + Equal.

    Each string maps to its output column index; rare levels map to the infrequent column and
    unseen levels too when scikit-learn would do so (handle_unknown="infrequent_if_exist"),
    otherwise to an index outside the range, which gives an all-zero row like "ignore".
    """
    from skl2onnx.common._apply_operation import apply_reshape
    from skl2onnx.proto import onnx_proto

    encoder = operator.raw_operator
    source = operator.inputs[0].full_name
    outputs, width = [], 0
    for index, categories in enumerate(encoder.categories_):
        out_cats = list(encoder._compute_transformed_categories(index))
        infrequent = bool(encoder._infrequent_enabled and out_cats
                          and out_cats[-1] == "infrequent_sklearn")
        n_out = len(out_cats)
        n_frequent = n_out - 1 if infrequent else n_out
        position = {str(c): i for i, c in enumerate(out_cats[:n_frequent])}
        keys = [str(c) for c in categories]
        values = [position.get(k, n_frequent if infrequent else n_out) for k in keys]
        default = n_frequent if infrequent and encoder.handle_unknown == "infrequent_if_exist" \
            else n_out
        column = source
        if len(encoder.categories_) > 1:
            at = scope.get_unique_variable_name("column_index")
            container.add_initializer(at, onnx_proto.TensorProto.INT64, [1], [index])
            column = scope.get_unique_variable_name("column")
            container.add_node("Gather", [source, at], column, axis=1,
                               name=scope.get_unique_operator_name("Gather"))
        codes = scope.get_unique_variable_name("codes")
        container.add_node("LabelEncoder", column, codes, op_domain="ai.onnx.ml", op_version=2,
                           keys_strings=keys, values_int64s=values, default_int64=default,
                           name=scope.get_unique_operator_name("LabelEncoder"))
        span = scope.get_unique_variable_name("span")
        container.add_initializer(span, onnx_proto.TensorProto.INT64, [1, n_out],
                                  list(range(n_out)))
        equal = scope.get_unique_variable_name("equal")
        container.add_node("Equal", [codes, span], equal,
                           name=scope.get_unique_operator_name("Equal"))
        onehot = scope.get_unique_variable_name("onehot")
        container.add_node("Cast", equal, onehot, to=onnx_proto.TensorProto.FLOAT,
                           name=scope.get_unique_operator_name("Cast"))
        outputs.append(onehot)
        width += n_out
    joined = outputs[0]
    if len(outputs) > 1:
        joined = scope.get_unique_variable_name("onehot_all")
        container.add_node("Concat", outputs, joined, axis=-1,
                           name=scope.get_unique_operator_name("Concat"))
    apply_reshape(scope, joined, operator.output_full_names, container, desired_shape=(-1, width))


def _int_attributes(value: Any) -> Any:
    if isinstance(value, list | tuple) and any(isinstance(v, bool | np.bool_ | np.integer)
                                               for v in value):
        return [int(v) if isinstance(v, bool | np.bool_ | np.integer) else v for v in value]
    return value


class _IntAttributeContainer:
    """Passes every call through, but hands add_node integer lists instead of booleans."""

    def __init__(self, container):
        self._container = container

    def __getattr__(self, name: str):
        return getattr(self._container, name)

    def add_node(self, *args, **attrs):
        return self._container.add_node(*args, **{k: _int_attributes(v)
                                                  for k, v in attrs.items()})


def _with_int_attributes(alias: str):
    from skl2onnx.common._registration import get_converter

    original = get_converter(alias)

    def convert(scope, operator, container) -> None:
        original(scope, operator, _IntAttributeContainer(container))

    return convert


def _custom_converters() -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.preprocessing import OneHotEncoder

    return {
        OneHotEncoder: _convert_one_hot,
        HistGradientBoostingClassifier: _with_int_attributes(
            "SklearnHistGradientBoostingClassifier"),
        HistGradientBoostingRegressor: _with_int_attributes(
            "SklearnHistGradientBoostingRegressor"),
    }


def _layout(columns: list[str], column_types: dict[str, str]) -> dict[str, list[str]]:
    """Graph inputs: one float matrix of the number columns, one string matrix of the rest.

    Two inputs instead of one per column: a single-row call of a 30-column model drops from
    ~37 µs to ~10 µs, most of it per-input overhead in onnxruntime.
    """
    return {"numbers": [c for c in columns if column_types[c] not in STRING_TYPES],
            "strings": [c for c in columns if column_types[c] in STRING_TYPES]}


def _positional_copy(pipeline: Pipeline, layout: dict[str, list[str]]) -> Pipeline:
    """The same fitted steps, its ColumnTransformer addressing columns by position in the
    concatenation numbers + strings, which is how skl2onnx maps columns onto matrix inputs."""
    prepare = pipeline.steps[0][1]
    position = {name: i for i, name in enumerate(layout["numbers"] + layout["strings"])}
    positional = copy.copy(prepare)
    positional.transformers_ = [
        (name, step, [position[c] for c in cols]) if not isinstance(step, str) else
        (name, step, cols) for name, step, cols in prepare.transformers_]
    return Pipeline([("prepare", positional), pipeline.steps[-1]])


def preload() -> None:
    """Import the converter and the runtime now (~0.3 s), so that every job a worker forks
    starts with them loaded instead of paying the import once per training job."""
    import onnxruntime  # noqa: F401
    from skl2onnx import convert_sklearn  # noqa: F401
    from skl2onnx.common.data_types import FloatTensorType  # noqa: F401


def _convert(pipeline: Pipeline, layout: dict[str, list[str]]):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    kinds = {"numbers": FloatTensorType, "strings": StringTensorType}
    initial = [(key, kinds[key]([None, len(cols)])) for key, cols in layout.items() if cols]
    estimator = pipeline.steps[-1][1]
    options = {type(estimator): {"zipmap": False}} if hasattr(estimator, "classes_") else None
    return convert_sklearn(_positional_copy(pipeline, layout), initial_types=initial,
                           options=options, custom_conversion_functions=_custom_converters())


def compile_onnx(pipeline: Pipeline, sample_df: pd.DataFrame,
                 column_types: dict[str, str]) -> bytes | None:
    """ONNX bytes that reproduce `pipeline` on `sample_df` (held-out rows), or None with a log."""
    columns = [str(c) for c in pipeline.feature_names_in_]
    if any(column_types[name] == "datetime" for name in columns):
        return _skip("date columns are not supported by the ONNX export")
    classes = getattr(pipeline, "classes_", None)
    if classes is not None and not _labels_supported(classes):
        return _skip("class labels are neither whole numbers nor text")
    layout = _layout(columns, column_types)
    try:
        model = _convert(pipeline, layout)
    except Exception as exc:  # skl2onnx raises many kinds for what it cannot convert
        return _skip(f"conversion failed: {type(exc).__name__}: {str(exc)[:200]}")
    model.metadata_props.add(key=META_INPUTS, value=json.dumps(layout))
    model.metadata_props.add(key=META_CLASSES, value=json.dumps(
        None if classes is None else [c.item() if isinstance(c, np.generic) else c
                                      for c in classes]))
    data = model.SerializeToString()
    try:
        problem = _compare(OnnxModel(data), pipeline, sample_df[columns])
    except Exception as exc:  # onnxruntime refusing the graph is a reason to skip, not to fail
        problem = f"onnxruntime failed: {type(exc).__name__}: {str(exc)[:200]}"
    return _skip(problem) if problem else data


def _labels_supported(classes: np.ndarray) -> bool:
    return all(isinstance(c, str) for c in classes) or np.issubdtype(classes.dtype, np.integer)


def _skip(reason: str) -> None:
    logger.info("onnx export skipped", extra={"reason": reason})
    return None


def _compare(onnx_model: OnnxModel, pipeline: Pipeline, rows: pd.DataFrame) -> str | None:
    """None when ONNX matches scikit-learn on `rows`, else why not."""
    labels, proba = onnx_model.predict(rows)
    expected = pipeline.predict(rows)
    if onnx_model.classes is None:
        scale = max(float(np.abs(expected).max(initial=0.0)), 1e-12)
        close = np.isclose(labels, expected, rtol=REGRESSION_RTOL, atol=REGRESSION_RTOL * 1e-2
                           * scale)
        return None if close.all() else f"{int((~close).sum())} of {len(rows)} values differ"
    differ = int(sum(a != b for a, b in zip(labels.tolist(), expected.tolist(), strict=True)))
    if differ:
        return f"{differ} of {len(rows)} labels differ"
    gap = float(np.abs(proba - pipeline.predict_proba(rows)).max(initial=0.0))
    return None if gap <= PROBA_TOLERANCE else f"probabilities differ by up to {gap:.2g}"


class OnnxModel:
    """An onnxruntime session plus what is needed to feed it from rows of original columns.

    Inputs are canonical values (see data.py): numbers (None or NaN for missing) and strings
    ("" for missing). One thread per session: for a few rows, thread hand-offs cost more than
    they save, and the web workers already use every core.
    """

    def __init__(self, data: bytes):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(data, sess_options=options,
                                            providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        layout = json.loads(meta[META_INPUTS])
        self.numbers: list[str] = layout["numbers"]
        self.strings: list[str] = layout["strings"]
        self.columns = self.numbers + self.strings
        classes = json.loads(meta[META_CLASSES])
        self.classes = None if classes is None else list(classes)
        self.output_names = [output.name for output in self.session.get_outputs()]

    def run(self, numbers: np.ndarray | None, strings: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predict from ready matrices: float32 [n, len(numbers)], object [n, len(strings)]."""
        feeds = {}
        if self.numbers:
            feeds["numbers"] = numbers
        if self.strings:
            feeds["strings"] = strings
        outputs = self.session.run(self.output_names, feeds)
        if self.classes is None:
            return outputs[0].reshape(-1).astype(np.float64), None
        return outputs[0].reshape(-1), outputs[1].astype(np.float64)

    def predict(self, rows: dict[str, list] | pd.DataFrame
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, probabilities in `classes` order or None for regression)."""
        if isinstance(rows, pd.DataFrame):
            numbers = rows[self.numbers].to_numpy(dtype=np.float32)
            strings = rows[self.strings].fillna("").to_numpy(dtype=object)
        else:
            numbers = np.array([rows[c] for c in self.numbers], dtype=np.float32).T
            strings = np.array([["" if v is None else v for v in rows[c]] for c in self.strings],
                               dtype=object).T
        return self.run(np.ascontiguousarray(numbers), np.ascontiguousarray(strings))


def load_onnx(data: bytes, expected_sha256: str) -> OnnxModel:
    """ONNX graphs run no Python code, but a changed file is refused all the same."""
    verify_sha256(data, expected_sha256)
    return OnnxModel(data)
