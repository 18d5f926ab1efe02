"""Parquet: columns keep their declared types; string columns are profiled like CSV text."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .columns import Budget, Column
from .errors import IngestError, IngestLimits, check_column_count, check_names, too_many_rows
from .memory import pool
from .parquet_pages import BATCH_BYTES, column_costs
from .parquet_pages import batch_rows as batch_rows_for
from .results import IngestResult
from .values import format_number

# Preview cells are for reading on a page; a long text is cut there (the profile sees all of it).
PREVIEW_CHARS = 1000


def ingest_parquet(stream: BinaryIO, *, limits: IngestLimits, preview_rows: int,
                    block_size: int) -> IngestResult:
    pool()  # the reader allocates from the default pool, which this makes the ingest's own
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
    costs = column_costs(stream, parquet.metadata)
    # Text stored only as dictionary references, whose values could spell out to more than a
    # batch's budget, stays a dictionary: that is how a small file holding one long value many
    # times grew to hundreds of MB. (Not all text: keeping short labels or columns that fell back
    # to plain pages as dictionaries costs more memory than it saves.)
    texts = [f.name for f in schema if _is_text(f.type) and costs[f.name].dictionary_only
             and costs[f.name].dictionary_bytes * batch_rows > BATCH_BYTES]
    if texts:
        try:
            parquet = pq.ParquetFile(stream, buffer_size=min(block_size, 1024 * 1024),
                                     pre_buffer=False, read_dictionary=texts)
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(f"The file is not a readable Parquet file ({exc}).", code="format")
    batch_rows = batch_rows_for(costs, max_rows=batch_rows, kept_as_dictionaries=texts)
    preview: list[list[str | None]] = []
    try:
        # One thread: decoding every column at once multiplies the reader's buffers.
        batches = parquet.iter_batches(batch_size=batch_rows, use_threads=False)
        index = 0
        for batch in batches:
            for part in _within_budget(batch):
                preview += _preview_values(part, preview_rows - len(preview))
                for column, values in zip(columns, part.columns, strict=True):
                    column.add_arrow(values, index)
                index += 1
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"The Parquet file is damaged ({exc}).", code="format")
    return IngestResult(format="parquet", rows=rows, columns=[c.profile() for c in columns],
                        preview=preview)




def _is_text(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t))


def _within_budget(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
    """The batch cut where its dictionary-encoded cells would decode to over BATCH_BYTES.

    A few stored bytes per row can stand for a long value, so the decoded size is summed from
    the dictionary's value lengths before anything is decoded.
    """
    row_bytes = np.zeros(batch.num_rows, dtype=np.int64)
    for values in batch.columns:
        if pa.types.is_dictionary(values.type) and _is_text(values.type.value_type):
            lengths = pc.take(pc.binary_length(values.dictionary), values.indices)
            row_bytes += pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False)
    total = int(row_bytes.sum())
    if total <= BATCH_BYTES:
        return [batch]
    ends = np.cumsum(row_bytes)
    cuts = np.searchsorted(ends, np.arange(BATCH_BYTES, total, BATCH_BYTES), side="right")
    bounds = [0, *sorted({int(c) for c in cuts if 0 < c < batch.num_rows}), batch.num_rows]
    return [batch.slice(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]


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
    columns = [[_display(value) for value in _cut(column).to_pylist()] for column in head.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def _cut(values: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(values.type):
        # Cut the dictionary before decoding: twenty rows may each point at a long value.
        cut = _cut(values.dictionary)
        return pa.DictionaryArray.from_arrays(values.indices, cut).dictionary_decode()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return pc.utf8_slice_codeunits(values, 0, PREVIEW_CHARS)
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        return pc.binary_slice(values, 0, PREVIEW_CHARS)
    return values


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
