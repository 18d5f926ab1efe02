"""Parquet: columns keep their declared types; string columns are profiled like CSV text."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from .columns import Budget, Column
from .errors import IngestError, IngestLimits, check_column_count, check_names, too_many_rows
from .results import IngestResult
from .values import format_number


def ingest_parquet(stream: BinaryIO, *, limits: IngestLimits, preview_rows: int,
                    block_size: int) -> IngestResult:
    try:
        # A buffered stream reads pages as needed instead of whole column chunks.
        parquet = pq.ParquetFile(stream, buffer_size=min(block_size, 1024 * 1024),
                                 pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"The file is not a readable Parquet file ({exc}).", code="format")
    schema = parquet.schema_arrow
    check_names(list(schema.names), where="file", line=None)
    check_column_count(len(schema.names), limits)
    rows = parquet.metadata.num_rows
    if rows > limits.max_rows:
        raise too_many_rows(limits.max_rows)
    if rows == 0:
        raise IngestError("The file has column names but no data rows.", code="empty")
    budget = Budget.for_columns(len(schema))
    columns = [_parquet_column(f, seed=i, budget=budget) for i, f in enumerate(schema)]
    batch_rows = max(1024, min(65_536, block_size // (8 * max(len(columns), 1))))
    preview: list[list[str | None]] = []
    try:
        # One thread: decoding every column at once multiplies the reader's buffers.
        batches = parquet.iter_batches(batch_size=batch_rows, use_threads=False)
        for index, batch in enumerate(batches):
            preview += _preview_values(batch, preview_rows - len(preview))
            for column, values in zip(columns, batch.columns, strict=True):
                column.add_arrow(values, index)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"The Parquet file is damaged ({exc}).", code="format")
    return IngestResult(format="parquet", rows=rows, columns=[c.profile() for c in columns],
                        preview=preview)




def _parquet_column(arrow_field: pa.Field, *, seed: int, budget: Budget) -> Column:
    kind = _arrow_kind(arrow_field)
    column = Column(arrow_field.name, seed=seed, budget=budget, kind=kind,
                     boolean=kind == "boolean")
    if kind == "datetime" and pa.types.is_timestamp(arrow_field.type) and arrow_field.type.tz:
        column.tz = "UTC"
    return column


def _arrow_kind(arrow_field: pa.Field) -> str:
    t = arrow_field.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_nested(t):
        raise IngestError(
            f"Column '{arrow_field.name}' holds nested values ({t}); only flat tables can be "
            f"used.", code="format", column=arrow_field.name)
    return "string"


def _preview_values(batch: pa.RecordBatch, wanted: int) -> list[list[str | None]]:
    if wanted <= 0:
        return []
    head = batch.slice(0, wanted)
    columns = [[_display(value) for value in column.to_pylist()] for column in head.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def _display(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
