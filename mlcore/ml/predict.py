"""Batch prediction: chunked read -> check values -> predict -> write, with flat memory.

Missing columns are named before any work; extra columns are never read. A row with a value that
cannot be converted (a word in a number column, an unreadable date) is not scored: each bad cell
goes to the errors file as (row, column, message) with the 1-based row of the input (the header
is not counted). Predictions use the scikit-learn pipeline itself, so they equal scikit-learn's.

Every text cell written to CSV is neutralised against spreadsheet formula injection: a cell that
starts with = + - @ tab or carriage return and is not a plain number gets a leading apostrophe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from sklearn.pipeline import Pipeline

from . import data
from .errors import MissingColumnsError, PredictionCancelled

logger = logging.getLogger(__name__)

FORMULA_START = r"^[=+\-@\t\r]"
PLAIN_NUMBER = data.NUMBER_RE
ERROR_SCHEMA = pa.schema([("row", pa.int64()), ("column", pa.string()),
                          ("message", pa.string())])
PROBLEMS = {"number": "is not a number", "boolean": "is not yes/no (true/false)",
            "datetime": "is not a date", "category": "cannot be read as text",
            "text": "cannot be read as text"}


def check_columns(required: list[str], available: list[str]) -> list[str]:
    """The required columns absent from `available`, in the required order."""
    present = set(available)
    return [name for name in required if name not in present]


# --- formula-injection neutralisation -------------------------------------------------------
def neutralise(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Prefix risky text cells with an apostrophe; other types pass through untouched."""
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return array
    risky = pc.and_(pc.match_substring_regex(array, FORMULA_START),
                    pc.invert(pc.match_substring_regex(array, PLAIN_NUMBER)))
    if not pc.any(risky).as_py():
        return array
    return pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)


def neutralise_text(value: str) -> str:
    return neutralise(pa.array([value]))[0].as_py()


# --- input checking -------------------------------------------------------------------------
def _describe(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def coerce_table(table: pa.Table, column_types: dict[str, str], row_offset: int
                 ) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Canonical frame of the rows whose values all convert, indexed by 1-based input row."""
    frame, bad = data.convert_table(table, column_types)
    rejected = np.zeros(table.num_rows, dtype=bool)
    errors: list[tuple[int, str, str]] = []
    for name, mask in bad.items():
        if not mask.any():
            continue
        rejected |= mask
        positions = np.flatnonzero(mask)
        raw = table.column(name).take(pa.array(positions)).to_pylist()
        problem = PROBLEMS[column_types[name]]
        errors.extend((row_offset + int(i) + 1, name, f"'{_describe(v)}' {problem}")
                      for i, v in zip(positions, raw, strict=True))
    errors.sort(key=lambda error: error[0])
    frame.index = pd.RangeIndex(row_offset + 1, row_offset + 1 + table.num_rows, name="row")
    return (frame[~rejected] if rejected.any() else frame), errors


def _arrow_column(series: pd.Series) -> pa.Array:
    if series.dtype == object:
        return pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                         for v in series], type=pa.string())
    return pa.array(series, from_pandas=True)


def coerce_chunk(df: pd.DataFrame, column_types: dict[str, str], row_offset: int = 0
                 ) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """`coerce_table` for a raw pandas frame (values as read from a file or a request)."""
    table = pa.table({name: _arrow_column(df[name]) for name in column_types})
    return coerce_table(table, column_types, row_offset)


# --- prediction -----------------------------------------------------------------------------
def output_columns(model: Pipeline, id_column: str | None = None) -> list[str]:
    classes = getattr(model, "classes_", None)
    probas = [f"proba_{c}" for c in classes] if classes is not None else []
    return ["row", *([id_column] if id_column else []), "prediction", *probas]


def apply_threshold(labels: np.ndarray, proba: np.ndarray | None, classes: list | None,
                    threshold: float | None) -> np.ndarray:
    """A two-class model with a decision threshold predicts its positive class (classes[1], the
    second in sorted order) where that class's probability is at least the threshold; otherwise
    the labels stay the estimator's own."""
    if threshold is None or proba is None or classes is None or len(classes) != 2:
        return labels
    chosen = np.asarray(classes, dtype=object)[(proba[:, 1] >= threshold).astype(int)]
    return chosen if labels.dtype == object else chosen.astype(labels.dtype)


def predict_chunk(model: Pipeline, clean_df: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
    """`prediction` and one `proba_<class>` per class, on `clean_df`'s index.

    The preprocessing runs once for both outputs; it is the same sequence of calls as
    Pipeline.predict and Pipeline.predict_proba, hence the same numbers. `threshold`: see
    apply_threshold.
    """
    features = list(model.feature_names_in_)
    prepared = model[:-1].transform(clean_df[features])
    estimator = model.steps[-1][1]
    out = pd.DataFrame({"prediction": estimator.predict(prepared)}, index=clean_df.index)
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(prepared)
        for j, label in enumerate(estimator.classes_):
            out[f"proba_{label}"] = proba[:, j]
        if threshold is not None:
            out["prediction"] = apply_threshold(out["prediction"].to_numpy(), proba,
                                                estimator.classes_.tolist(), threshold)
    return out


def _prediction_type(model: Pipeline) -> pa.DataType:
    classes = getattr(model, "classes_", None)
    if classes is None:
        return pa.float64()
    if np.issubdtype(classes.dtype, np.integer):
        return pa.int64()
    if np.issubdtype(classes.dtype, np.floating):
        return pa.float64()
    return pa.string()


def output_schema(model: Pipeline, id_column: str | None) -> pa.Schema:
    fields = [("row", pa.int64())]
    if id_column:
        fields.append((id_column, pa.string()))
    fields.append(("prediction", _prediction_type(model)))
    fields += [(name, pa.float64()) for name in output_columns(model)[2:]]
    return pa.schema(fields)


# --- writing --------------------------------------------------------------------------------
class _Sink:
    """Binary writer for pyarrow that counts bytes and never closes the caller's stream."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.written = 0
        self.closed = False

    def write(self, chunk: bytes) -> int:
        self._stream.write(chunk)
        self.written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        if hasattr(self._stream, "flush"):
            self._stream.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class _Writer:
    """One output (CSV neutralised, or Parquet as is) written chunk by chunk."""

    def __init__(self, stream: BinaryIO, schema: pa.Schema, fmt: str):
        self.sink = _Sink(stream)
        self.csv = fmt == "csv"
        target = pa.PythonFile(self.sink, mode="w")
        if self.csv:
            header = [neutralise_text(name) for name in schema.names]
            self.schema = pa.schema([pa.field(h, f.type) for h, f in
                                     zip(header, schema, strict=True)])
            self.writer = pcsv.CSVWriter(target, self.schema)
        else:
            self.schema = schema
            self.writer = pq.ParquetWriter(target, schema)

    def write(self, table: pa.Table) -> None:
        if self.csv:
            table = pa.table([neutralise(c) for c in table.columns], schema=self.schema)
        self.writer.write_table(table)

    def close(self) -> int:
        self.writer.close()
        return self.sink.written


def _output_table(schema: pa.Schema, clean_df: pd.DataFrame, predicted: pd.DataFrame,
                  ids: pa.ChunkedArray | None) -> pa.Table:
    columns: list[Any] = [pa.array(clean_df.index.to_numpy(), type=pa.int64())]
    if ids is not None:
        columns.append(ids)
    for field in list(schema)[len(columns):]:
        values = predicted[field.name].to_numpy()
        columns.append(pa.array(values.astype(str) if pa.types.is_string(field.type) else values,
                                type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _ids(table: pa.Table, id_column: str | None, rows: np.ndarray) -> pa.Array | None:
    """The id column as text, unchanged apart from missing shown as an empty cell."""
    if not id_column:
        return None
    column = table.column(id_column)
    text = column if pa.types.is_string(column.type) else column.cast(pa.string())
    return text.take(pa.array(rows)).fill_null("").combine_chunks()


def _score_chunk(table: pa.Table, offset: int, model: Pipeline, types: dict[str, str],
                 id_column: str | None, schema: pa.Schema, outputs: list[_Writer],
                 errors_out: _Writer, threshold: float | None = None, sampler=None) -> int:
    """Check, predict and write one chunk; returns how many of its rows were scored."""
    clean, errors = coerce_table(table, types, offset)
    if errors:
        errors_out.write(pa.Table.from_pylist(
            [{"row": r, "column": c, "message": m} for r, c, m in errors], schema=ERROR_SCHEMA))
    if len(clean):
        positions = clean.index.to_numpy() - offset - 1
        predicted = predict_chunk(model, clean, threshold)
        if sampler is not None:
            sampler.add(clean, predicted["prediction"].to_numpy())
        result = _output_table(schema, clean, predicted, _ids(table, id_column, positions))
        for output in outputs:
            output.write(result)
    return len(clean)


def batch_predict(in_stream: BinaryIO, fmt: str, out_writer: BinaryIO, errors_writer: BinaryIO,
                  model: Pipeline, column_types: dict[str, str], id_column: str | None = None,
                  progress: Callable[[float, str], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, chunk_rows: int = 50_000,
                  out_format: str = "csv", parquet_writer: BinaryIO | None = None,
                  total_rows: int | None = None, encoding: str = "utf-8",
                  threshold: float | None = None, sampler=None) -> dict[str, Any]:
    """Score a whole file (a text file read as `encoding`). `column_types` are the model's
    training types for its features; `threshold`, a two-class model's decision threshold.

    Writes the output (CSV, or Parquet with out_format="parquet"; `parquet_writer` adds a
    Parquet copy in the same pass) and the errors CSV. Raises MissingColumnsError before
    anything is written, PredictionCancelled between chunks (discard the partial output then).
    `total_rows` (from the dataset profile) only serves the progress fraction. `sampler.add(rows,
    predictions)` sees each chunk's scored rows (coerced values) and their predictions.
    """
    started = time.perf_counter()
    features = [str(c) for c in model.feature_names_in_]
    types = {name: column_types[name] for name in features}
    required = list(dict.fromkeys([*features, *([id_column] if id_column else [])]))
    missing = check_columns(required, data.read_columns(in_stream, fmt, encoding))
    if missing:
        raise MissingColumnsError(missing)
    schema = output_schema(model, id_column)
    outputs = [_Writer(out_writer, schema, out_format)]
    if parquet_writer is not None:
        outputs.append(_Writer(parquet_writer, schema, "parquet"))
    errors_out = _Writer(errors_writer, ERROR_SCHEMA, "csv")
    scored = read = 0
    for table in data.iter_tables(in_stream, fmt, required, chunk_rows=chunk_rows,
                                  encoding=encoding):
        if should_stop is not None and should_stop():
            raise PredictionCancelled("The job was cancelled.")
        scored += _score_chunk(table, read, model, types, id_column, schema, outputs,
                               errors_out, threshold, sampler)
        read += table.num_rows
        # pyarrow's allocator keeps freed chunks for reuse; handing them back keeps RSS flat
        # (measured on 1M rows: peak growth 190 -> 130 MB) for a negligible cost.
        pa.default_memory_pool().release_unused()
        if progress is not None:
            fraction = min(read / total_rows, 0.99) if total_rows else 0.0
            progress(fraction, f"Scored {scored:,} rows")
    sizes = [output.close() for output in outputs]
    return {"rows_scored": scored, "rows_rejected": read - scored, "rows_read": read,
            "output_bytes": sizes[0], "parquet_bytes": sizes[1] if len(sizes) > 1 else None,
            "errors_bytes": errors_out.close(), "columns": output_columns(model, id_column),
            "seconds": round(time.perf_counter() - started, 3)}
