"""Reading datasets for training and prediction: pyarrow only, only the needed columns.

Values are parsed by the profile's column types, the same way for training, batch and online
prediction, so a model always sees the same kind of input ("the canonical frame"):

- number   -> float64, missing as NaN
- category, text, boolean -> strings, missing as "" (booleans as "true"/"false"); an empty string
  rather than None because ONNX string tensors cannot hold None and the pipeline imputes "".
- datetime -> datetime64[us], naive UTC, missing as NaT

Conversion returns, per column, which rows held a value that could not be converted: training
treats those as missing, prediction rejects the row and reports it.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import logging
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .errors import DataError, MissingColumnsError

logger = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "csv.gz", "tsv.gz", "parquet")
DEFAULT_MISSING = ("", "NA", "N/A", "NaN", "null", "None")
TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")
NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# pyarrow's streaming CSV reader reads up to 32 blocks ahead in the background, so the block size
# sets the memory: measured on 1M x 30 numbers, batch prediction peaks at +187 MB with 1 MB
# blocks and +314 MB with 4 MB blocks, at the same speed.
BLOCK_BYTES = 1 << 20
MAX_CHUNK_BYTES = 64 << 20
HEADER_BYTES_MAX = 16 << 20
STRING_TYPES = ("category", "text", "boolean")


def missing_markers() -> tuple[str, ...]:
    """The upload profiler's list, so a cell is missing in both or in neither."""
    try:
        from ..ingest import MISSING_TOKENS
    except ImportError:
        return DEFAULT_MISSING
    return tuple(MISSING_TOKENS)


@functools.cache
def null_values() -> tuple[str, ...]:
    """Every upper/lower-case spelling of the markers: pyarrow matches null values exactly."""
    spellings: set[str] = set()
    for marker in missing_markers():
        cases = [(ch.lower(), ch.upper()) for ch in marker]
        spellings.update("".join(combo) for combo in itertools.product(*cases))
    return tuple(sorted(spellings))


def normalise_format(fmt: str) -> str:
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in FORMATS:
        raise DataError(f"Files of type '{fmt}' cannot be read; use CSV, TSV or Parquet.")
    return fmt


class _KeepOpen:
    """The caller's stream as pyarrow sees it: closing it only cuts pyarrow off.

    pyarrow closes the Python file it wraps, and its CSV reader keeps reading ahead in a
    background thread; once we are done, reads fail here instead of moving the caller's stream.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.closed = False

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("reader finished")
        return self._stream.read(size)

    def close(self) -> None:
        self.closed = True


def _input(source: _KeepOpen, fmt: str) -> pa.NativeFile:
    source.seek(0)
    wrapped = pa.PythonFile(source, mode="r")
    return pa.CompressedInputStream(wrapped, "gzip") if fmt.endswith(".gz") else wrapped


def _convert_options(columns: list[str] | None) -> pcsv.ConvertOptions:
    """Every selected column as text: our converters, not pyarrow's guesses, decide types."""
    convert = pcsv.ConvertOptions(null_values=list(null_values()), strings_can_be_null=True,
                                  quoted_strings_can_be_null=True)
    if columns is not None:
        convert.include_columns = list(columns)
        convert.column_types = {name: pa.string() for name in columns}
    return convert


def _parse_options(fmt: str) -> pcsv.ParseOptions:
    return pcsv.ParseOptions(delimiter="\t" if fmt.startswith("tsv") else ",")


def _csv_reader(source: _KeepOpen, fmt: str, columns: list[str],
                encoding: str) -> pcsv.CSVStreamingReader:
    try:
        return pcsv.open_csv(_input(source, fmt), read_options=pcsv.ReadOptions(
            block_size=BLOCK_BYTES, encoding=encoding), parse_options=_parse_options(fmt),
            convert_options=_convert_options(columns))
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(exc)


def _head(stream: BinaryIO, fmt: str) -> bytes:
    """The first bytes (decompressed), up to the first line break, then back to the start."""
    stream.seek(0)
    source = gzip.GzipFile(fileobj=_KeepOpen(stream), mode="rb") if fmt.endswith(".gz") \
        else stream
    head = b""
    try:
        while len(head) < HEADER_BYTES_MAX:
            more = source.read(64 * 1024)
            head += more
            if not more or b"\n" in head or b"\r" in head:
                break
    except (OSError, EOFError) as exc:
        raise _unreadable(exc)
    stream.seek(0)
    return head


def _encoding(head: bytes, declared: str) -> str:
    """The dataset's encoding (what the profiler read it as), or UTF-16 when the file starts with
    its byte-order mark (as the profiler does); "utf8" is pyarrow's name for UTF-8."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return "utf8" if declared.replace("-", "").lower() in ("utf8", "") else declared


def _csv_header(stream: BinaryIO, fmt: str, encoding: str) -> list[str]:
    """Names from the first line, parsed in memory: no reader is left reading the stream."""
    head = _head(stream, fmt)
    try:
        text = head.decode(_encoding(head, encoding),
                           errors="ignore" if len(head) >= HEADER_BYTES_MAX else "strict")
    except UnicodeDecodeError as exc:
        raise _unreadable(exc)
    first = text.splitlines()[0] if text else ""
    try:
        table = pcsv.read_csv(pa.BufferReader((first + "\n").encode()),
                              parse_options=_parse_options(fmt),
                              convert_options=pcsv.ConvertOptions(column_types={}))
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(exc)
    return table.column_names


def _unreadable(exc: Exception) -> DataError:
    logger.info("dataset unreadable", extra={"reason": str(exc)[:300]})
    return DataError("The file could not be read; it may be damaged or not in the format its "
                     "name says.")


def read_columns(stream: BinaryIO, fmt: str, encoding: str = "utf-8") -> list[str]:
    """Column names from the header alone, so missing columns are named before any work.

    ``encoding`` (every reader here takes it) is the dataset's: what its text was read as when
    it was uploaded; Parquet ignores it.
    """
    fmt = normalise_format(fmt)
    if fmt != "parquet":
        return _csv_header(stream, fmt, encoding)
    stream.seek(0)
    try:
        return list(pq.ParquetFile(_KeepOpen(stream)).schema_arrow.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(exc)


def _require(stream: BinaryIO, fmt: str, columns: list[str], encoding: str) -> None:
    available = set(read_columns(stream, fmt, encoding))
    missing = [name for name in columns if name not in available]
    if missing:
        raise MissingColumnsError(missing)


def iter_tables(stream: BinaryIO, fmt: str, columns: list[str],
                chunk_rows: int = 50_000, encoding: str = "utf-8") -> Iterator[pa.Table]:
    """Raw chunks of `chunk_rows` rows (fewer for very wide rows): memory stays flat."""
    fmt = normalise_format(fmt)
    columns = list(dict.fromkeys(columns))
    _require(stream, fmt, columns, encoding)
    source = _KeepOpen(stream)
    try:
        if fmt == "parquet":
            source.seek(0)
            parquet = pq.ParquetFile(source)
            chunk_rows = _parquet_chunk_rows(source, parquet, columns, chunk_rows)
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
                yield _markers_to_null(pa.Table.from_batches([batch]))
            return
        encoding = _encoding(_head(stream, fmt), encoding)
        yield from _csv_chunks(_csv_reader(source, fmt, columns, encoding), chunk_rows)
    finally:
        source.close()


def _parquet_chunk_rows(source: BinaryIO, parquet: pq.ParquetFile, columns: list[str],
                        chunk_rows: int) -> int:
    """Fewer rows per chunk where values are long, and the upload's refusal of a page too large
    to decode (a file refused at upload never gets here; one stored before the check may)."""
    from ..ingest import IngestError
    from ..ingest.parquet_pages import batch_rows, column_costs

    try:
        costs = column_costs(source, parquet.metadata, columns=set(columns))
    except IngestError as exc:
        raise DataError(str(exc)) from exc
    source.seek(0)
    return batch_rows(costs, max_rows=chunk_rows)


def _csv_chunks(reader: pcsv.CSVStreamingReader, chunk_rows: int) -> Iterator[pa.Table]:
    pending = pa.Table.from_batches([], schema=reader.schema)
    for batch in _batches(reader):
        if batch.num_rows and not pending.num_rows:
            # Very wide rows (long texts) get fewer rows per chunk, so memory stays bounded.
            row_bytes = max(1, batch.nbytes // batch.num_rows)
            chunk_rows = max(1, min(chunk_rows, MAX_CHUNK_BYTES // row_bytes))
        pending = pa.concat_tables([pending, pa.Table.from_batches([batch])])
        while pending.num_rows >= chunk_rows:
            yield pending.slice(0, chunk_rows)
            pending = pending.slice(chunk_rows)
    if pending.num_rows:
        yield pending


def _batches(reader: pcsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            raise _unreadable(exc)


def _markers_to_null(table: pa.Table) -> pa.Table:
    """Parquet text cells such as "NA" are missing too, as they are in CSV files."""
    markers = pa.array(null_values())
    for i, column in enumerate(table.columns):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            cleaned = pc.if_else(pc.is_in(column, value_set=markers), None, column)
            table = table.set_column(i, table.field(i), cleaned)
    return table


# --- conversion ------------------------------------------------------------------------------
def _as_text(array: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if pa.types.is_boolean(array.type):
        return pc.if_else(array, "true", "false")
    return array if pa.types.is_string(array.type) else array.cast(pa.string())


def _bad(original: pa.ChunkedArray, converted: pa.ChunkedArray) -> np.ndarray:
    """Rows where a value was given but nothing usable came out."""
    mask = pc.and_(pc.is_valid(original), pc.is_null(converted))
    return mask.to_numpy(zero_copy_only=False)


def to_number(array: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """float64 with null for missing. Written "inf" counts as unconvertible (models refuse it);
    NaN and infinities stored as Parquet floats are missing, as the upload profiler counts them."""
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind) \
            or pa.types.is_boolean(kind):
        values = array.cast(pa.float64())
        values = pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))
        return values, np.zeros(len(array), dtype=bool)
    text = _as_text(array)
    try:
        values = text.cast(pa.float64())
    except pa.ArrowInvalid:
        text = pc.utf8_trim_whitespace(text)
        ok = pc.match_substring_regex(text, NUMBER_RE)
        values = pc.if_else(ok, text, pa.scalar(None, pa.string())).cast(pa.float64())
    values = pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))
    return values, _bad(array, values)


def to_boolean(array: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    words = pc.utf8_lower(pc.utf8_trim_whitespace(_as_text(array)))
    is_true = pc.is_in(words, value_set=pa.array(TRUE_WORDS))
    is_false = pc.is_in(words, value_set=pa.array(FALSE_WORDS))
    values = pc.if_else(is_true, "true", pc.if_else(is_false, "false",
                                                    pa.scalar(None, pa.string())))
    return values, _bad(array, values)


def to_text(array: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    values = _as_text(array)
    return values, np.zeros(len(array), dtype=bool)


def to_datetime(array: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """ISO 8601 through pyarrow; other spellings through pandas. Zones become naive UTC."""
    kind = array.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        values = array.cast(pa.timestamp("us", tz=kind.tz) if pa.types.is_timestamp(kind)
                            else pa.timestamp("us"))
        if getattr(values.type, "tz", None):
            values = values.cast(pa.timestamp("us"))
        return values, _bad(array, values)
    text = pc.utf8_trim_whitespace(_as_text(array))
    try:
        values = text.cast(pa.timestamp("us"))
    except pa.ArrowInvalid:
        values = pa.chunked_array([_parse_dates(text.to_pandas())], type=pa.timestamp("us"))
    return values, _bad(array, values)


def _parse_dates(text: pd.Series) -> pa.Array:
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    retry = parsed.isna() & text.notna()
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], errors="coerce", utc=True, format="mixed")
    return pa.array(parsed.dt.tz_localize(None).astype("datetime64[us]"), type=pa.timestamp("us"))


CONVERTERS = {"number": to_number, "boolean": to_boolean, "category": to_text, "text": to_text,
              "datetime": to_datetime}


def convert_table(table: pa.Table, column_types: dict[str, str]
                  ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The canonical frame of `column_types`' columns, and per column the unconvertible rows."""
    arrays, bad = {}, {}
    for name, col_type in column_types.items():
        try:
            values, mask = CONVERTERS[col_type](table.column(name))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            logger.info("column unconvertible", extra={"column": name, "reason": str(exc)[:200]})
            values = pa.nulls(table.num_rows, pa.float64() if col_type == "number" else
                              pa.string())
            mask = table.column(name).is_valid().to_numpy(zero_copy_only=False)
        if col_type in STRING_TYPES:
            values = values.fill_null("")
        arrays[name], bad[name] = values, mask
    frame = pa.table(arrays).to_pandas() if arrays else pd.DataFrame(index=range(table.num_rows))
    return frame, bad


def read_frame(stream: BinaryIO, fmt: str, columns: list[str],
               column_types: dict[str, str], encoding: str = "utf-8") -> pd.DataFrame:
    """The whole dataset (needed columns only) as a canonical frame, for training.

    Unconvertible values become missing: the profile judged the column, a stray cell should
    not stop the job.
    """
    types = {name: column_types[name] for name in dict.fromkeys(columns)}
    tables = list(iter_tables(stream, fmt, list(types), chunk_rows=1_000_000, encoding=encoding))
    if not tables:
        return convert_table(pa.table({n: pa.array([], pa.string()) for n in types}), types)[0]
    return convert_table(pa.concat_tables(tables), types)[0]


def iter_frames(stream: BinaryIO, fmt: str, columns: list[str], column_types: dict[str, str],
                chunk_rows: int = 50_000, encoding: str = "utf-8"
                ) -> Iterator[tuple[pd.DataFrame, dict[str, np.ndarray]]]:
    """Canonical chunks with their unconvertible-row masks; the index is the 1-based row."""
    types = {name: column_types[name] for name in dict.fromkeys(columns)}
    offset = 0
    for table in iter_tables(stream, fmt, list(types), chunk_rows=chunk_rows, encoding=encoding):
        frame, bad = convert_table(table, types)
        frame.index = pd.RangeIndex(offset + 1, offset + 1 + table.num_rows, name="row")
        offset += table.num_rows
        yield frame, bad
