"""Validate and profile an uploaded table in one streaming pass, with flat memory.

``ingest()`` takes a binary, readable file-like object (seekable too for Parquet) and reads it once,
block by block: it never holds the whole file, and its memory does not grow with the file's size.
It either returns an ``IngestResult`` (row count, a profile per column, a preview) or raises an
``IngestError`` whose ``str()`` is a complete sentence for the person who uploaded the file, naming
the line and column when there is one. It writes nothing anywhere, so a failed upload leaves nothing
behind as long as the caller discards what it stored. Pure Python: no Django, usable from a view or
a Celery task.

Formats
    CSV (``.csv``), TSV (``.tsv``, ``.tab``; ``.txt`` is sniffed from its first line: tab-separated
    when it has more tabs than commas), the same compressed with gzip (``.csv.gz``; the content is
    recognised by its signature whatever the name) and Parquet (by its signature). Anything else is
    refused, with advice for ZIP/Excel, PDF and image files.

Text
    UTF-8 unless another ``encoding`` is declared (latin-1, cp1252, utf-16, ...), in which case the
    bytes are transcoded to UTF-8 on the way in. A UTF-8 byte order mark is skipped; a UTF-16 byte
    order mark switches an undeclared encoding to UTF-16. A NUL byte, or more than 5% control
    characters at the start, means a binary file. Lines end with LF, CRLF or CR. Values are not
    trimmed. Quoted fields may hold delimiters, doubled quotes and line breaks.

Missing values
    A cell is missing when it is empty or, ignoring case, one of: NA, N/A, NaN, null, None, #N/A.
    In Parquet, nulls, NaN and infinite floats, and those strings in string columns, are missing.
    Missing cells are counted, shown as None in the preview and ignored by the rules below.

Type inference (every non-missing value of the column counts, not a sample; first rule that holds)
    number    every value is a finite number as pandas' default parser reads it: optional sign,
              digits, optional fraction and exponent (``12``, ``-3.5``, ``.5``, ``1e-3``, ``007``).
              No thousands separators, no spaces around the digits, no ``inf``.
    datetime  every value is an ISO-8601 date or date-time (``2024-03-01``, ``2024-03-01T12:30``,
              ``2024-03-01 12:30:00.25``), and either all of them carry a UTC offset (``Z``,
              ``+02:00``) or none does.
    boolean   every value is one of true/false, yes/no, t/f, y/n, 1/0, in any case. A column of only
              0 and 1 is a *number*: that is how pandas reads it, a model uses it as it is, and its
              mean (the share of ones) says more than a bar chart; one word among the values
              (``yes``, ``t``...) makes it boolean, and then 1 counts as true and 0 as false.
    category  other values, when few distinct ones repeat: at most 1,000 distinct values, at most
              max(20, 5% of the non-missing values), and at least one value appears twice.
    text      everything else, including a column with no values at all.
    Parquet columns keep their declared type: integers, floats and decimals are numbers, booleans
    booleans, dates and timestamps datetimes; string columns are category or text by the rule above.
    A column may change kind between blocks (numbers for a million rows, then ``n/a (see notes)``):
    it is then re-classified, and counts keyed by value stay consistent across the change.

Profile of each column
    missing    exact count.
    distinct   exact up to 65,536 distinct values (their 64-bit hashes are kept), then estimated
               from the 16,384 smallest hashes (a "k minimum values" sketch, about 0.8% error),
               with ``distinct_is_estimate`` true. Numbers are compared by value (``1`` and
               ``1.0`` are one value), datetimes by instant, other values by their exact text.
    min, max,  numbers: floats; datetimes: ISO-8601 strings (dates alone when every value is a
    mean       date); others None. ``std``: sample standard deviation of numbers (n - 1, like
               pandas), else None.
    top        the 10 most frequent values of boolean, category and text columns, with counts:
               exact while the column has at most 1,024 distinct values (so always for a
               category); beyond, a Misra-Gries summary of 1,024 counters keeps every value more
               frequent than 1 in 1,025 with a count that is a lower bound, and ``top_is_estimate``
               is true. Boolean columns count true and false (1/yes/t/y are true).
    histogram  numbers and datetimes: 20 equal-width bins from the exact min to the exact max,
               ``{"start", "end", "count"}``. Exact up to 10,000 values; beyond, binned from a
               uniform random sample of 10,000 values (bottom-k sampling, fixed seed) and scaled:
               the counts always add up to the non-missing values, and the bins holding the min
               and the max are never shown empty. Others: the top values, ``{"value", "count"}``.
    Very wide tables get smaller summaries (fewer exact distinct values, a smaller sample, fewer
    top counters) so that all columns together stay within STATE_BUDGET_BYTES.

Memory and speed
    pyarrow's streaming CSV reader parses 1 MB blocks in C++, every value as a string, on a
    second thread while the previous block is profiled; it may read only a few blocks ahead.
    Each block is then typed and summarised with pyarrow.compute and numpy, never value by value
    in Python. Allocations go to jemalloc with a short decay, so that memory freed by one block
    is returned rather than kept. bench/ingest.py measures speed against pandas.read_csv and
    the growth of peak RSS.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import datetime as dt
import gzip
import io
import itertools
import math
import os
import queue
import re
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

DEFAULT_BLOCK_SIZE = 1024 * 1024
HEAD_BYTES = 64 * 1024
HEADER_MAX_BYTES = 1024 * 1024
READ_AHEAD_BLOCKS = 3
JEMALLOC_DECAY_MS = 100
SEARCH_WINDOW_BLOCKS = READ_AHEAD_BLOCKS + 2  # pyarrow may be parsing a block this far back

DISTINCT_EXACT_CAP = 65_536
SKETCH_SIZE = 16_384
TOP_CAPACITY = 1024
STATE_BUDGET_BYTES = 48 * 1024 * 1024  # summaries of all columns together, at most
TOP_SIZE = 10
LABEL_MAX_CHARS = 200
HISTOGRAM_BINS = 20
SAMPLE_SIZE = 10_000
CATEGORY_MAX_DISTINCT = 1000
CATEGORY_MIN_LIMIT = 20
CATEGORY_SHARE = 0.05
BINARY_CONTROL_SHARE = 0.05

MISSING_TOKENS = ("", "NA", "N/A", "NaN", "null", "None", "#N/A")
BOOLEAN_TRUE = ("true", "yes", "t", "y", "1")
BOOLEAN_FALSE = ("false", "no", "f", "n", "0")
TYPES = ("number", "category", "boolean", "datetime", "text")
ERROR_CODES = frozenset({
    "encoding", "no_header", "empty_column_name", "duplicate_column", "ragged_row", "binary",
    "too_many_columns", "too_many_rows", "empty", "format",
})

_NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_ISO_PATTERN = r"^\d{4}-\d{2}-\d{2}"
_ISO_RE = re.compile(_ISO_PATTERN, re.ASCII)
_BLANK_LINES = re.compile(rb"(?:[ \t\f\v]*(?:\r\n|\n|\r))*")
_CONTROL_BYTES = bytes(range(0, 9)) + b"\x0b" + bytes(range(14, 32)) + b"\x7f"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_TEXT_EXTENSIONS = (".csv", ".tsv", ".tab", ".txt")
_US_PER_DAY = 86_400_000_000
_EPOCH = dt.datetime(1970, 1, 1)
_memory_pool: pa.MemoryPool | None = None


# --------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class IngestLimits:
    max_rows: int
    max_columns: int


class IngestError(Exception):
    """An upload we refuse; ``str(err)`` is a complete sentence for the person who uploaded it.

    ``line`` is the physical line of the file (the header is line 1), ``column`` a column name or a
    1-based position. ``row`` is set instead of ``line`` in the rare case where a row cannot be tied
    to its line (a row counted from the first data row).
    """

    def __init__(self, message: str, *, code: str, line: int | None = None,
                 column: str | int | None = None, row: int | None = None) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown ingest error code {code!r}")
        super().__init__(message)
        self.message = message
        self.code = code
        self.line = line
        self.column = column
        self.row = row

    def __str__(self) -> str:
        return self.message


@dataclass
class ColumnProfile:
    name: str
    type: str
    missing: int
    distinct: int
    distinct_is_estimate: bool = False
    min: float | str | None = None
    max: float | str | None = None
    mean: float | str | None = None
    std: float | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    top_is_estimate: bool = False
    histogram: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top"] = [{"value": value, "count": count} for value, count in self.top]
        return data


@dataclass
class IngestResult:
    format: str
    rows: int
    columns: list[ColumnProfile]
    preview: list[list[str | None]]

    def to_dict(self) -> dict[str, Any]:
        """The profile as stored and served: ``preview`` has the API's ``{columns, rows}`` shape."""
        return {
            "format": self.format,
            "rows": self.rows,
            "columns": [column.to_dict() for column in self.columns],
            "preview": {"columns": [column.name for column in self.columns], "rows": self.preview},
        }


def detect_format(filename: str, head: bytes, *, encoding: str = "utf-8") -> str:
    """"csv", "tsv", "csv.gz", "tsv.gz" or "parquet", from the name and the first bytes.

    Signatures win over names (a gzip or Parquet file is one whatever it is called); plain text
    needs a .csv, .tsv, .tab or .txt name. Raises IngestError for anything else.
    """
    if not head:
        raise IngestError("The file is empty.", code="empty")
    _refuse_known_binary(head)
    extension, gzipped = _extension(filename)
    if head.startswith(b"PAR1"):
        return "parquet"
    if extension in (".parquet", ".pq"):
        raise IngestError(
            "The file name ends in .parquet but the content is not a Parquet file.", code="format")
    if head.startswith(b"\x1f\x8b"):
        # Inside "data.gz" there is no name to go by: sniff the first line as for ".txt".
        inner = extension if extension in _TEXT_EXTENSIONS else ".txt"
        return _text_format(inner, _gunzip_head(head), encoding) + ".gz"
    if gzipped:
        raise IngestError(
            "The file name ends in .gz but the content is not gzip-compressed.", code="format")
    return _text_format(extension, head, encoding)


def ingest(stream: BinaryIO, *, filename: str, limits: IngestLimits, encoding: str = "utf-8",
           preview_rows: int = 20, block_size: int = DEFAULT_BLOCK_SIZE) -> IngestResult:
    """Validate and profile the table in ``stream``, reading it once, block by block.

    ``block_size`` is how much is read and parsed at a time (tests make it tiny); a single CSV row
    must fit in one block.
    """
    encoding = _check_encoding(encoding)
    head = _read_up_to(stream, HEAD_BYTES)
    fmt = detect_format(filename, head, encoding=encoding)
    if fmt == "parquet":
        stream.seek(0)
        return _ingest_parquet(stream, limits=limits, preview_rows=preview_rows,
                               block_size=block_size)
    raw: BinaryIO = _Prepended(head, stream)
    if fmt.endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw, mode="rb")
    delimiter = "\t" if fmt.startswith("tsv") else ","
    source = _TextSource(raw, encoding=encoding, block_size=block_size, delimiter=delimiter)
    return _ingest_text(source, fmt=fmt, limits=limits, preview_rows=preview_rows)


def _pool() -> pa.MemoryPool:
    """Where our Arrow allocations go: jemalloc, returning freed pages to the system quickly.

    pyarrow's default allocator (mimalloc) keeps what a long pass frees, spread over its threads'
    heaps, which looks like memory growing with the file. jemalloc with a short decay gives freed
    pages back after JEMALLOC_DECAY_MS (0 would cost a page fault for every fresh block: a
    quarter of the CPU time). The decay setting belongs to the jemalloc pool, which pyarrow does
    not use by default: the rest of the process keeps its allocator.
    """
    global _memory_pool
    if _memory_pool is None:
        try:
            _memory_pool = pa.jemalloc_memory_pool()
            pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
        except NotImplementedError:  # pyarrow built without jemalloc (Windows wheels)
            _memory_pool = pa.default_memory_pool()
    return _memory_pool


# --------------------------------------------------------------------------------------------
# Messages


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _where(line: int | None, column: str | int | None) -> str:
    """"Line 88, column 'price'" — the start of a sentence that points at a spot in the file."""
    parts = []
    if line is not None:
        parts.append(f"Line {line:,}")
    if isinstance(column, str):
        parts.append(f"column '{column}'")
    elif column is not None:
        parts.append(f"column {column}")
    text = ", ".join(parts)
    return text[:1].upper() + text[1:]


def _too_many_rows(limit: int) -> IngestError:
    return IngestError(f"The file has more than {limit:,} rows, the limit of your plan.",
                       code="too_many_rows")


def _check_column_count(count: int, limits: IngestLimits) -> None:
    if count > limits.max_columns:
        raise IngestError(
            f"The file has {count:,} columns, more than {limits.max_columns:,}, the limit of "
            f"your plan.", code="too_many_columns")


def _check_names(names: list[str], *, where: str, line: int | None) -> None:
    """Every column needs a name, and a different one: they become feature names."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise IngestError(f"Column {position} of the {where} has no name.",
                              code="empty_column_name", line=line, column=position)
        if name in seen:
            raise IngestError(
                f"The {where} has two columns named '{name}' (columns {seen[name]} and "
                f"{position}).", code="duplicate_column", line=line, column=name)
        seen[name] = position


# --------------------------------------------------------------------------------------------
# Format detection

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "This is a ZIP archive (an Excel .xlsx or OpenDocument file is one), not CSV "
                    "text. Export the sheet as CSV and upload that."),
    (b"PK\x05\x06", "This is an empty ZIP archive, not CSV text."),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "This is an Excel workbook in the old .xls format, not "
                                          "CSV text. Export the sheet as CSV and upload that."),
    (b"%PDF", "This is a PDF document, not a table. Export the data as CSV and upload that."),
    (b"\x89PNG\r\n\x1a\n", "This is a PNG image, not a table."),
    (b"\xff\xd8\xff", "This is a JPEG image, not a table."),
    (b"GIF87a", "This is a GIF image, not a table."),
    (b"GIF89a", "This is a GIF image, not a table."),
    (b"\xfd7zXZ\x00", "This file is compressed with xz; only gzip compression is supported."),
    (b"7z\xbc\xaf\x27\x1c", "This is a 7-Zip archive; upload the CSV file itself (gzip "
                            "compression is supported)."),
    (b"\x28\xb5\x2f\xfd", "This file is compressed with zstd; only gzip compression is "
                          "supported."),
    (b"\x7fELF", "This is a program, not a table."),
)


def _refuse_known_binary(head: bytes) -> None:
    for signature, message in _SIGNATURES:
        if head.startswith(signature):
            raise IngestError(message, code="binary")
    if re.match(rb"BZh[1-9]1AY&SY", head):
        raise IngestError("This file is compressed with bzip2; only gzip compression is supported.",
                          code="binary")


def _extension(filename: str) -> tuple[str, bool]:
    """(".csv", True) for "Data.CSV.gz": the extension of the content, and whether gzipped."""
    name = os.path.basename(filename).lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[:-3]
    return os.path.splitext(name)[1], gzipped


def _gunzip_head(head: bytes) -> bytes:
    try:
        return zlib.decompressobj(wbits=31).decompress(head, HEAD_BYTES)
    except zlib.error as exc:
        raise IngestError(f"The file is not a valid gzip archive ({exc}).", code="format")


def _text_format(extension: str, head: bytes, encoding: str) -> str:
    if extension not in _TEXT_EXTENSIONS:
        shown = f"ending in '{extension}'" if extension else "without an extension"
        raise IngestError(
            f"Files {shown} are not supported: upload CSV, TSV or Parquet (gzip-compressed CSV "
            f"or TSV too).", code="format")
    if not head:
        raise IngestError("The file is empty.", code="empty")
    _refuse_binary_text(head, encoding)
    if extension in (".tsv", ".tab"):
        return "tsv"
    if extension == ".txt":
        first_line = head.split(b"\n", 1)[0]
        return "tsv" if first_line.count(b"\t") > first_line.count(b",") else "csv"
    return "csv"


def _refuse_binary_text(data: bytes, encoding: str) -> None:
    """NUL bytes or many control characters: not text (UTF-16 is full of NULs, so skip it)."""
    if data.startswith(_UTF16_BOMS) or "16" in encoding or "32" in encoding:
        return
    sample = data[:HEAD_BYTES]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if b"\x00" in sample or controls > BINARY_CONTROL_SHARE * len(sample):
        raise IngestError("This looks like a binary file, not CSV text.", code="binary")


def _check_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise IngestError(f"'{encoding}' is not a text encoding we know.", code="encoding")
    return "utf-8" if name in ("utf-8", "utf-8-sig") else name


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes unless the stream ends first: a decrypting stream may return less."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


class _Prepended(io.RawIOBase):
    """The stream again, with the head we already read for format detection put back in front."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            size = len(self._head) if size < 0 else size
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# --------------------------------------------------------------------------------------------
# Text source: what pyarrow reads, validated on the way


@dataclass
class _Block:
    first_line: int  # line number of the block's first byte
    starts_line: bool  # the block starts at the beginning of a line
    data: bytes


class _TextSource(io.RawIOBase):
    """The upload as validated UTF-8, handed to pyarrow's CSV reader one block at a time.

    Everything pyarrow parses passes through here first: this is where an encoding error or a NUL
    byte can still be tied to its line. It also counts lines and keeps the last few blocks, so that
    a ragged row, which pyarrow reports by row number, can be given its line number. pyarrow reads
    far ahead on its own thread; ``read`` makes it wait for the profiler (``block_consumed``) so
    that only a few blocks are in memory at once.
    """

    def __init__(self, raw: BinaryIO, *, encoding: str, block_size: int, delimiter: str) -> None:
        super().__init__()
        self._raw = raw
        self._encoding = encoding
        self._decoder: codecs.IncrementalDecoder | None = None
        if encoding != "utf-8":
            self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self.block_size = block_size
        self.delimiter = delimiter
        self.names: list[str] = []  # once the header is known, to name columns in errors
        self.lines = 0  # line breaks in everything validated so far
        self.last_char = b""  # the last character of the file that is not white space
        self.error: IngestError | None = None  # raised while pyarrow was reading
        self.failure: Exception | None = None  # the upload stream's own exception, if any
        self._first = True
        self._cr_only = False
        self._utf8_carry = b""  # an unfinished UTF-8 character at the end of the last block
        self._eof = False
        self._pending = b""
        self._window: collections.deque[_Block] = collections.deque(maxlen=SEARCH_WINDOW_BLOCKS)
        self._turn = threading.Condition()
        self._reads = 0
        self._allowed = READ_AHEAD_BLOCKS
        self._reading = 0
        self._cancelled = False
        self.consumer_waiting = False
        self._lent = 0
        self._views: set[weakref.ref] = set()

    # -- pyarrow's side

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> memoryview:
        if not self._wait_for_turn():
            return memoryview(b"")
        try:
            # Hand out the blocks as they come, without copying: a short block is fine for
            # pyarrow, a longer one (transcoded text grows) is not.
            while not self._pending and not self._eof:
                self._pending = self.next_block()
            if 0 <= size < len(self._pending):
                data, self._pending = self._pending[:size], self._pending[size:]
            else:
                data, self._pending = self._pending, b""
            return self._lend(data)
        except IngestError as exc:
            self.error = exc
            raise
        except Exception as exc:
            self.failure = exc
            raise
        finally:
            with self._turn:
                self._reading -= 1
                self._turn.notify_all()

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _lend(self, data: bytes) -> memoryview:
        """A view pyarrow can hold; we learn when it lets go, which it may do on its own thread.

        A Python object released by one of pyarrow's threads while the interpreter shuts down
        aborts the process, so ``wait_until_returned`` waits for every view before ingest ends.
        """
        view = memoryview(data)
        self._lent += 1
        self._views.add(weakref.ref(view, self._returned))
        return view

    def _returned(self, ref: weakref.ref) -> None:
        self._views.discard(ref)
        self._lent -= 1

    def wait_until_returned(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while (self._lent or self._reading) and time.monotonic() < deadline:
            time.sleep(0.001)

    def _wait_for_turn(self) -> bool:
        """Block pyarrow's read-ahead until the profiler has caught up; False once cancelled."""
        with self._turn:
            while self._reads >= self._allowed and not self._cancelled:
                # A consumer waiting for a batch while reads wait for it would be a deadlock
                # (pyarrow may need one more block than we expect): let the read through then.
                if not self._turn.wait(timeout=0.5) and self.consumer_waiting:
                    break
            if self._cancelled:
                return False
            self._reads += 1
            self._reading += 1
            return True

    def block_consumed(self) -> None:
        with self._turn:
            self._allowed += 1
            self._turn.notify_all()

    def cancel(self) -> None:
        """Stop handing out data, and wait until no read is using the upload stream any more."""
        with self._turn:
            self._cancelled = True
            self._turn.notify_all()
            while self._reading:
                self._turn.wait(timeout=0.1)

    # -- our side

    def unread(self, data: bytes) -> None:
        self._pending = data + self._pending

    def next_block(self) -> bytes:
        """The next block of validated UTF-8 (b"" at the end), counting its lines."""
        if self._eof:
            return b""
        raw = self._read_raw()
        data = self._to_utf8(raw, final=not raw)
        if self._first:
            data = self._first_block(data)
        if self._cr_only:
            data = data.replace(b"\r", b"\n")
        self._inspect(data)
        if not raw:
            self._eof = True
        return data

    def _read_raw(self) -> bytes:
        try:
            return _read_up_to(self._raw, self.block_size)
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise IngestError(f"The file is not a valid gzip archive ({exc}).", code="format")
        except EOFError:
            raise IngestError("The gzip archive ends unexpectedly: the upload may be incomplete.",
                              code="format")

    def _first_block(self, data: bytes) -> bytes:
        self._first = False
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        # Old Mac files end lines with CR alone; pyarrow reads them, and we count lines by LF.
        self._cr_only = b"\n" not in data and b"\r" in data
        sample = data[:HEAD_BYTES]
        controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
        if controls > BINARY_CONTROL_SHARE * max(len(sample), 1):
            raise IngestError("This looks like a binary file, not CSV text.", code="binary")
        return data

    def _inspect(self, data: bytes) -> None:
        """Count lines, remember the block, and refuse NUL bytes (never in text)."""
        nul = data.find(b"\x00")
        if nul >= 0:
            line = self.lines + data.count(b"\n", 0, nul) + 1
            raise IngestError(
                f"Line {line:,} contains a NUL byte: this looks like a binary file, not CSV text.",
                code="binary", line=line)
        previous = self._window[-1].data if self._window else b"\n"
        self._window.append(_Block(self.lines + 1, previous.endswith(b"\n"), data))
        end = len(data)
        while end and data[end - 1] in b" \t\r\n\f\v":  # rstrip() would copy the block
            end -= 1
        self.last_char = data[end - 1: end] or self.last_char
        # numpy counts bytes several times faster than bytes.count
        self.lines += int(np.count_nonzero(np.frombuffer(data, np.uint8) == 10))

    def _to_utf8(self, raw: bytes, *, final: bool) -> bytes:
        if self._first and self._decoder is None and raw.startswith(_UTF16_BOMS):
            # Excel's "Unicode text" export: the byte order mark says what the file is.
            self._encoding = "utf-16"
            self._decoder = codecs.getincrementaldecoder("utf-16")("strict")
        if self._decoder is not None:
            return self._transcode(raw, final=final)
        self._validate_utf8(raw, final=final)
        return raw

    def _validate_utf8(self, raw: bytes, *, final: bool) -> None:
        if not self._utf8_carry and raw.isascii():
            return
        data = self._utf8_carry + raw
        try:
            # Decoding is the fastest check there is; an unfinished character at the end of the
            # block is left for the next one rather than reported.
            _, consumed = codecs.utf_8_decode(data, "strict", final)
        except UnicodeDecodeError as exc:
            prefix = raw[: max(exc.start - len(self._utf8_carry), 0)]
            raise self._encoding_error(prefix, data[exc.start], "UTF-8")
        self._utf8_carry = data[consumed:]

    def _transcode(self, raw: bytes, *, final: bool) -> bytes:
        assert self._decoder is not None
        state = self._decoder.getstate()
        try:
            text = self._decoder.decode(raw, final)
        except UnicodeDecodeError as exc:
            # Decode again up to the bad byte from the same state, to count the lines before it.
            decoder = codecs.getincrementaldecoder(self._encoding)("strict")
            decoder.setstate(state)
            prefix = decoder.decode(raw[: max(exc.start, 0)], False).encode("utf-8")
            bad = exc.object[exc.start] if exc.start < len(exc.object) else 0
            raise self._encoding_error(prefix, bad, self._encoding)
        if self._first and text.startswith("\ufeff"):
            text = text[1:]
        return text.encode("utf-8")

    def _encoding_error(self, prefix: bytes, bad_byte: int, label: str) -> IngestError:
        """Name the line of the first bad byte, and its column when the line can be split."""
        line = self.lines + prefix.count(b"\n") + 1
        column = self._column_at(prefix)
        return IngestError(
            f"{_where(line, column)}: the bytes are not valid {label} text "
            f"(at byte 0x{bad_byte:02X}).", code="encoding", line=line, column=column)

    def _column_at(self, prefix: bytes) -> str | int | None:
        tail = prefix.rsplit(b"\n", 1)
        line_start = tail[-1]
        if len(tail) == 1 and self._window:
            line_start = self._window[-1].data.rsplit(b"\n", 1)[-1] + line_start
        index = _field_index(line_start.decode("utf-8", "replace"), self.delimiter)
        names = self.names or self._names_before(prefix, is_header=len(tail) == 1)
        if names:
            return names[index] if index < len(names) else None
        return index + 1

    def _names_before(self, prefix: bytes, *, is_header: bool) -> list[str]:
        """The header's names when the bad byte comes after it in the first block."""
        if self._window or is_header:
            return []
        text = _BLANK_LINES.sub(b"", prefix, count=1).decode("utf-8", "replace")
        record = _split_record(text, self.delimiter, final=False)
        return record[0] if record else []

    def find_line(self, text: bytes, after_line: int) -> int | None:
        """The line on which a record with exactly this text starts, searching recent blocks."""
        if not self._window:
            return None
        window = b"".join(block.data for block in self._window)
        first = self._window[0]
        position = window.find(text)
        while position >= 0:
            end = position + len(text)
            starts = window[position - 1: position] == b"\n" if position else first.starts_line
            ends = end == len(window) or window[end: end + 1] in (b"\n", b"\r")
            line = first.first_line + window.count(b"\n", 0, position)
            if starts and ends and line > after_line:
                return line
            position = window.find(text, position + 1)
        return None


def _field_index(line: str, delimiter: str) -> int:
    """0-based index of the field the end of ``line`` falls in, quoting as pyarrow reads it."""
    index, quoted, at_start, i = 0, False, True, 0
    while i < len(line):
        char = line[i]
        if quoted:
            if char == '"':
                quoted = line[i + 1: i + 2] == '"'
                i += 1 if quoted else 0
        elif char == '"' and at_start:
            quoted = True
        elif char == delimiter:
            index, at_start = index + 1, True
            i += 1
            continue
        at_start = False
        i += 1
    return index


# --------------------------------------------------------------------------------------------
# Header


@dataclass
class _Header:
    names: list[str]
    line: int  # the header's line number (after blank lines, if any)
    end_line: int  # lines used up by blank lines and the header


def _split_record(text: str, delimiter: str, *, final: bool) -> tuple[list[str], int] | None:
    """The fields of the record ``text`` starts with and the index after it, as pyarrow reads it.

    None when the record does not end in ``text`` yet (unless ``final``).
    """
    fields: list[str] = []
    current: list[str] = []
    quoted, at_start, i = False, True, 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char != '"':
                current.append(char)
            elif text[i + 1: i + 2] == '"':
                current.append('"')
                i += 1
            elif i + 1 == len(text) and not final:
                return None  # a doubled quote may be split across blocks
            else:
                quoted = False
        elif char == '"' and at_start:
            quoted = True
        elif char == delimiter:
            fields.append("".join(current))
            current, at_start = [], True
            i += 1
            continue
        elif char in "\r\n":
            fields.append("".join(current))
            end = i + 2 if text[i: i + 2] == "\r\n" else i + 1
            return fields, end
        else:
            current.append(char)
        at_start = False
        i += 1
    if not final:
        return None
    fields.append("".join(current))
    return fields, len(text)


def _read_header(source: _TextSource) -> _Header:
    """Read up to the end of the first record; what follows is put back for pyarrow."""
    buffer = b""
    while True:
        block = source.next_block()
        buffer += block
        blank = _BLANK_LINES.match(buffer).group()
        stripped = buffer[len(blank):]
        if not block and not stripped.strip():
            raise IngestError("The file is empty.", code="empty")
        # The bytes are valid UTF-8 already, but a block may end inside a character.
        text, _ = codecs.utf_8_decode(stripped, "strict", not block)
        record = _split_record(text, source.delimiter, final=not block)
        if record is not None:
            break
        if len(buffer) > HEADER_MAX_BYTES:
            raise IngestError(
                f"The first line is longer than {HEADER_MAX_BYTES // 1024 // 1024} MB; is this "
                f"really a CSV file?", code="format", line=1)
    names, end = record
    used = blank + text[:end].encode("utf-8")
    source.unread(buffer[len(used):])
    line = blank.count(b"\n") + 1
    return _Header(names=names, line=line, end_line=used.count(b"\n"))


def _check_header(header: _Header, limits: IngestLimits) -> None:
    if all(_NUMBER_RE.fullmatch(name) for name in header.names):
        raise IngestError(
            f"Line {header.line:,} looks like data, not a header: every cell is a number. Add a "
            f"first line with the column names.", code="no_header", line=header.line)
    _check_names(header.names, where="header", line=header.line)
    _check_column_count(len(header.names), limits)


# --------------------------------------------------------------------------------------------
# CSV and TSV


def _missing_values() -> list[str]:
    """Every spelling of the missing-value tokens in any case: pyarrow matches them exactly."""
    spellings: set[str] = set()
    for token in MISSING_TOKENS:
        cases = [(char.lower(), char.upper()) for char in token]
        spellings.update("".join(chars) for chars in itertools.product(*cases))
    return sorted(spellings)


def _ingest_text(source: _TextSource, *, fmt: str, limits: IngestLimits,
                 preview_rows: int) -> IngestResult:
    header = _read_header(source)
    _check_header(header, limits)
    source.names = header.names
    internal = [f"c{i}" for i in range(len(header.names))]
    invalid_rows: list[pacsv.InvalidRow] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        invalid_rows.append(row)
        return "error"

    budget = _Budget.for_columns(len(header.names))
    columns = [_Column(name, seed=i, budget=budget) for i, name in enumerate(header.names)]
    preview: list[list[str | None]] = []
    rows = 0
    reader: pa.RecordBatchReader | None = None
    try:
        source.consumer_waiting = True  # while pyarrow reads the first block for open_csv
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=internal, block_size=source.block_size,
                                           use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid_row),
            memory_pool=_pool(),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(internal, pa.string()), null_values=_missing_values(),
                strings_can_be_null=True, quoted_strings_can_be_null=True, check_utf8=False),
        )
        last: pa.RecordBatch | None = None
        with contextlib.closing(_pipelined(reader, source)) as batches:
            for batch in batches:
                rows += batch.num_rows
                if rows > limits.max_rows:
                    raise _too_many_rows(limits.max_rows)
                preview += _preview_strings(batch, preview_rows - len(preview))
                for column, values in zip(columns, batch.columns, strict=True):
                    column.add_strings(values)
                last = batch if batch.num_rows else last
        _check_quotes_closed(last, source)
    except IngestError:
        raise
    except (pa.ArrowException, OSError, EOFError) as exc:
        if source.failure is not None:  # the upload stream itself failed: not the file's fault
            raise source.failure from exc
        raise _csv_failure(exc, source, header, invalid_rows) from exc
    finally:
        # pyarrow's read-ahead must not touch the upload, nor hold our blocks, once we return.
        source.cancel()
        reader = None
        source.wait_until_returned()
    if rows == 0:
        raise IngestError("The file has a header but no data rows.", code="empty")
    return IngestResult(format=fmt, rows=rows, columns=[c.profile() for c in columns],
                        preview=preview)


def _pipelined(reader: pa.RecordBatchReader, source: _TextSource) -> Iterator[pa.RecordBatch]:
    """Batches from ``reader``, parsed on a thread while the caller profiles the previous one.

    pyarrow releases the GIL while it parses. However the caller leaves (error, limit), the
    thread and pyarrow's reads of the upload are over when this generator is closed.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()
    holder = [reader]
    del reader

    def put(item: tuple[str, Any]) -> None:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        # Once stopped, reads return nothing, and the reader is run to its end anyway: only
        # then has pyarrow finished with the source on its own threads.
        try:
            for batch in holder[0]:
                if not stop.is_set():
                    put(("batch", batch))
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(("error", exc))

    thread = threading.Thread(target=produce, name="ingest-parse", daemon=True)
    thread.start()
    try:
        while True:
            source.consumer_waiting = True
            kind, item = handoff.get()
            source.consumer_waiting = False
            if kind == "end":
                return
            if kind == "error":
                raise item
            source.block_consumed()
            yield item
    finally:
        stop.set()
        source.cancel()
        thread.join()
        # An exception's traceback keeps these frames, and through them the reader and the
        # blocks pyarrow holds: let go of it here.
        holder.clear()


def _check_quotes_closed(last: pa.RecordBatch | None, source: _TextSource) -> None:
    """pyarrow reads a quote left open as a value running to the end of the file; say so.

    Such a value is the last field of the last row, holds line breaks, and the file does not
    end with the quote that would close it.
    """
    if last is None or source.last_char == b'"':
        return
    value = last.column(last.num_columns - 1)[last.num_rows - 1].as_py()
    breaks = value.count("\n") if value else 0
    if not breaks:
        return
    line = source.lines + 1 - breaks
    raise IngestError(
        f"Line {line:,}: a quote opened on this line is never closed, so the rest of the file "
        f"would be read as a single value.", code="format", line=line)


def _csv_failure(exc: Exception, source: _TextSource, header: _Header,
                 invalid_rows: list[pacsv.InvalidRow]) -> IngestError:
    """Turn whatever stopped pyarrow into a sentence about the file."""
    if source.error is not None:
        return source.error
    if invalid_rows:
        return _ragged_row_error(invalid_rows[0], source, header)
    message = str(exc)
    if "Empty CSV file" in message:  # nothing but blank lines after the header
        return IngestError("The file has a header but no data rows.", code="empty")
    if "straddling" in message:
        size = max(source.block_size // (1024 * 1024), 1)
        return IngestError(
            f"A row near line {source.lines:,} is longer than {size} MB, or a quote is never "
            f"closed; we cannot read rows that long.", code="format", line=source.lines)
    return IngestError(f"The file could not be read as a table: {message}", code="format")


def _ragged_row_error(row: pacsv.InvalidRow, source: _TextSource, header: _Header) -> IngestError:
    fields = f"has {_count(row.actual_columns, 'field')} but the header has " \
             f"{_count(row.expected_columns, 'column')}."
    number = row.number or 0
    # pyarrow counts records, not lines (quoted line breaks, skipped blank lines): look for the
    # row's text in the blocks just read to tell which line it is on.
    line = source.find_line(row.text.encode("utf-8"), after_line=header.end_line)
    if line is not None:
        return IngestError(f"Line {line:,} {fields}", code="ragged_row", line=line)
    snippet = row.text[:40] + ("…" if len(row.text) > 40 else "")
    return IngestError(f"Data row {number:,} (the one starting '{snippet}') {fields}",
                       code="ragged_row", row=number)


def _preview_strings(batch: pa.RecordBatch, wanted: int) -> list[list[str | None]]:
    if wanted <= 0:
        return []
    head = batch.slice(0, wanted)
    return [list(row) for row in zip(*(column.to_pylist() for column in head.columns), strict=True)]


# --------------------------------------------------------------------------------------------
# Parquet


def _ingest_parquet(stream: BinaryIO, *, limits: IngestLimits, preview_rows: int,
                    block_size: int) -> IngestResult:
    try:
        # A buffered stream reads pages as needed instead of whole column chunks.
        parquet = pq.ParquetFile(stream, buffer_size=min(block_size, 1024 * 1024),
                                 pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"The file is not a readable Parquet file ({exc}).", code="format")
    schema = parquet.schema_arrow
    _check_names(list(schema.names), where="file", line=None)
    _check_column_count(len(schema.names), limits)
    rows = parquet.metadata.num_rows
    if rows > limits.max_rows:
        raise _too_many_rows(limits.max_rows)
    if rows == 0:
        raise IngestError("The file has column names but no data rows.", code="empty")
    budget = _Budget.for_columns(len(schema))
    columns = [_parquet_column(f, seed=i, budget=budget) for i, f in enumerate(schema)]
    batch_rows = max(1024, min(65_536, block_size // (8 * max(len(columns), 1))))
    preview: list[list[str | None]] = []
    try:
        # One thread: decoding every column at once multiplies the reader's buffers.
        for batch in parquet.iter_batches(batch_size=batch_rows, use_threads=False):
            preview += _preview_values(batch, preview_rows - len(preview))
            for column, values in zip(columns, batch.columns, strict=True):
                column.add_arrow(values)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"The Parquet file is damaged ({exc}).", code="format")
    return IngestResult(format="parquet", rows=rows, columns=[c.profile() for c in columns],
                        preview=preview)


def _unreadable_column(name: str, arrow_type: pa.DataType) -> IngestError:
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return IngestError(f"Column '{name}' holds binary data, not text.", code="binary",
                           column=name)
    return IngestError(f"Column '{name}' holds values of type {arrow_type}, which cannot be "
                       f"read as text.", code="format", column=name)


def _parquet_column(arrow_field: pa.Field, *, seed: int, budget: _Budget) -> _Column:
    kind = _arrow_kind(arrow_field)
    column = _Column(arrow_field.name, seed=seed, budget=budget, kind=kind,
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
        return _format_number(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# --------------------------------------------------------------------------------------------
# Hashing: 64-bit values per cell, the same for equal values whatever block they are in

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_NUMBER_SALT = np.uint64(0x9E3779B97F4A7C15)
_TIME_SALT = np.uint64(0xD6E8FEB86659FD93)
_LENGTH_SALT = np.uint64(0xA0761D6478BD642F)
_POLY_BASE = 0x100000001B3
_SEGMENT = 1 << 16
_power_tables: tuple[np.ndarray, np.ndarray] | None = None


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (the sketch needs it)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def _float_hashes(values: np.ndarray) -> np.ndarray:
    bits = (values + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0: one value, one hash
    return _mix64(bits ^ _NUMBER_SALT)


def _time_hashes(values: np.ndarray) -> np.ndarray:
    return _mix64(values.view(np.uint64) ^ _TIME_SALT)


def _powers() -> tuple[np.ndarray, np.ndarray]:
    """B**i and B**-i modulo 2**64 for i < _SEGMENT (B is odd, so it has an inverse)."""
    global _power_tables
    if _power_tables is None:
        inverse = pow(_POLY_BASE, -1, 1 << 64)
        powers = np.ones(_SEGMENT + 1, np.uint64)
        inverses = np.ones(_SEGMENT + 1, np.uint64)
        np.cumprod(np.full(_SEGMENT, _POLY_BASE, np.uint64), out=powers[1:])
        np.cumprod(np.full(_SEGMENT, inverse, np.uint64), out=inverses[1:])
        _power_tables = (powers, inverses)
    return _power_tables


def _string_hashes(values: pa.Array) -> np.ndarray:
    """A polynomial hash of each string's bytes, computed with numpy over pyarrow's buffers.

    Python's own ``hash`` would need a str object per value, which costs more than the hashing;
    prefix sums make every string's hash two lookups and a multiplication (numpy wraps uint64
    arithmetic modulo 2**64, which is what a polynomial hash wants).
    """
    count = len(values)
    if count == 0:
        return np.empty(0, np.uint64)
    large = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    offset_type = np.int64 if large else np.int32
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], offset_type)[values.offset: values.offset + count + 1]
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    if lengths.max() > _SEGMENT:
        return _hashes_with_long_values(values, lengths)
    powers, inverses = _powers()
    out = np.empty(count, np.uint64)
    i = 0
    while i < count:
        j = max(int(np.searchsorted(offsets, offsets[i] + _SEGMENT, side="right")) - 1, i + 1)
        j = min(j, count)
        start, stop = int(offsets[i]), int(offsets[j])
        weighted = data[start:stop].astype(np.uint64)
        weighted += np.uint64(1)  # so that NUL bytes count too
        weighted *= powers[: stop - start]
        prefix = np.zeros(stop - start + 1, np.uint64)
        np.cumsum(weighted, out=prefix[1:])
        begin = offsets[i:j] - start
        out[i:j] = (prefix[offsets[i + 1: j + 1] - start] - prefix[begin]) * inverses[begin]
        i = j
    return _mix64(out ^ (lengths.astype(np.uint64) * _LENGTH_SALT))


def _hashes_with_long_values(values: pa.Array, lengths: np.ndarray) -> np.ndarray:
    """Values longer than a hashing segment (rare) get Python's hash, stable within a run; the
    others the usual one, so that a short value hashes the same in every block."""
    long = lengths > _SEGMENT
    hashes = np.empty(len(values), np.uint64)
    short = np.flatnonzero(~long)
    hashes[short] = _string_hashes(pc.take(values, pa.array(short), memory_pool=_pool()))
    where = np.flatnonzero(long)
    texts = pc.take(values, pa.array(where)).to_pylist()
    python = np.fromiter((hash(text) for text in texts), np.int64, count=len(where))
    hashes[where] = _mix64(python.view(np.uint64))
    return hashes


def _mixed_hashes(values: pa.Array, tz: str | None) -> np.ndarray:
    """Hashes for a column that held numbers or datetimes in earlier blocks and text now.

    Values that still read as numbers (or datetimes) are hashed by value, as they were before,
    so that ``7`` before and after the change is counted once.
    """
    hashes = _string_hashes(values)
    for pattern, convert, hasher in ((_NUMBER_PATTERN, _as_numbers, _float_hashes),
                                     (_ISO_PATTERN, lambda a: _as_times(a, tz), _time_hashes)):
        matches = pc.match_substring_regex(values, pattern, memory_pool=_pool())
        matches = matches.to_numpy(zero_copy_only=False)
        if not matches.any():
            continue
        where = np.flatnonzero(matches)
        converted = convert(pc.take(values, pa.array(where), memory_pool=_pool()))
        if converted is not None and len(converted) == len(where):
            hashes[where] = hasher(converted)
    return hashes


# --------------------------------------------------------------------------------------------
# Mergeable summaries


class _Distinct:
    """Distinct count from 64-bit hashes: exact up to ``cap`` values, then estimated.

    Up to ``cap`` distinct values, all their hashes are kept and the count is exact. Beyond, only
    the SKETCH_SIZE smallest are (a "k minimum values" sketch): if the k-th smallest hash is h,
    there are about (k - 1) * 2**64 / h distinct values (relative error about 1/sqrt(k), 0.8%).
    Only hashes below h can still matter, so a block then costs one comparison per value.
    Hashes wait in a list and are merged in bulk, because per-call costs dominate small blocks.
    """

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._limit = cap  # becomes SKETCH_SIZE once the count is an estimate
        self._kept = np.empty(0, np.uint64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0
        self._bound: np.uint64 | None = None  # the cap-th smallest hash, once there are more

    def add(self, hashes: np.ndarray) -> None:
        if self._bound is not None:
            hashes = hashes[hashes < self._bound]
            if not len(hashes):
                return
        self._pending.append(hashes)
        self._pending_size += len(hashes)
        if self._pending_size > max(self._limit, len(self._kept)):
            self._merge()

    def at_most(self, limit: int) -> bool:
        """Whether there are at most ``limit`` distinct values so far (cheap when far below)."""
        if self._bound is None and len(self._kept) + self._pending_size > limit:
            self._merge()
        return self._bound is None and len(self._kept) + self._pending_size <= limit

    def count(self) -> tuple[int, bool]:
        self._merge()
        if self._bound is None:
            return len(self._kept), False
        return round((self._limit - 1) * 2.0**64 / (float(self._bound) + 1.0)), True

    def _merge(self) -> None:
        """Sorted merge: a hash table over the kept hashes would take several times their size."""
        if not self._pending:
            return
        fresh = _sorted_unique(np.concatenate(self._pending))
        self._pending, self._pending_size = [], 0
        merged = np.concatenate([self._kept, fresh])
        merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
        merged = _sorted_unique(merged, presorted=True)
        if len(merged) > self._limit:
            self._limit = min(self._cap, SKETCH_SIZE)
            merged = merged[: self._limit].copy()
            self._bound = merged[-1]
        self._kept = merged


def _sorted_unique(values: np.ndarray, *, presorted: bool = False) -> np.ndarray:
    if not presorted:
        values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


class _TopK:
    """Most frequent values: exact counts up to ``capacity`` keys, then Misra-Gries.

    Keys are value hashes; labels (the values as text, truncated) are kept for the keys only.
    Misra-Gries summaries merge by adding counters and subtracting the (k+1)-th largest, which
    is also how a block's exact counts are cut down to k: every value more frequent than
    rows / (k + 1) survives, and kept counts never exceed the true ones.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys = np.empty(0, np.uint64)
        self.counts = np.empty(0, np.int64)
        self.labels: dict[int, str] = {}
        self.pruned = False
        self._kth = 0
        self.active = True  # tracking stops for number/datetime columns with many values
        self.complete = True

    def stop(self) -> None:
        self.active, self.complete = False, False
        self.keys, self.counts, self.labels = self.keys[:0], self.counts[:0], {}

    def add(self, hashes: np.ndarray, counts: np.ndarray,
            label_of: Callable[[np.ndarray], list[str]]) -> None:
        counts = counts.astype(np.int64, copy=False)
        positions = np.arange(len(hashes))  # label_of takes positions in the caller's arrays
        if len(hashes) > self.capacity:
            kept = self._cut_mask(counts)
            hashes, counts, positions = hashes[kept], counts[kept] - self._kth, positions[kept]
        if not len(hashes):
            return
        keys = np.concatenate([self.keys, hashes])
        totals = np.concatenate([self.counts, counts])
        order = np.argsort(keys, kind="stable")
        keys, totals = keys[order], totals[order]
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        self.keys, self.counts = keys[starts], np.add.reduceat(totals, starts)
        if len(self.keys) > self.capacity:
            kept = self._cut_mask(self.counts)
            self.keys, self.counts = self.keys[kept], self.counts[kept] - self._kth
        # Labels only for the keys that made it in: fetching values costs more than counting.
        unlabeled = [key for key in self.keys.tolist() if key not in self.labels]
        if unlabeled:
            where = np.flatnonzero(np.isin(hashes, np.array(unlabeled, dtype=np.uint64)))
            for key, label in zip(hashes[where].tolist(), label_of(positions[where]), strict=True):
                self.labels[key] = label[:LABEL_MAX_CHARS]
        if len(self.labels) > 2 * self.capacity:  # forget the labels of keys cut long ago
            self.labels = {key: self.labels[key] for key in self.keys.tolist()}

    def _cut_mask(self, counts: np.ndarray) -> np.ndarray:
        """The counters above the (capacity + 1)-th largest, which is then subtracted."""
        self._kth = _kth_largest(counts, self.capacity + 1)
        self.pruned = True
        return counts > self._kth

    def top(self, n: int = TOP_SIZE) -> list[tuple[str, int]]:
        entries = [(self.labels[key], count)
                   for key, count in zip(self.keys.tolist(), self.counts.tolist(), strict=True)]
        return sorted(entries, key=lambda entry: (-entry[1], entry[0]))[:n]


def _kth_largest(counts: np.ndarray, k: int) -> int:
    """The k-th largest count; counting counts is faster than partitioning when they are small."""
    highest = int(counts.max())
    if highest > 4 * len(counts):
        return int(np.partition(counts, len(counts) - k)[len(counts) - k])
    at_least = np.cumsum(np.bincount(counts, minlength=highest + 1)[::-1])[::-1]
    return int(np.flatnonzero(at_least >= k)[-1])


def _kth_largest(counts: np.ndarray, k: int) -> int:
    """The k-th largest count; counting counts is faster than partitioning when they are small."""
    highest = int(counts.max())
    if highest > 4 * len(counts):
        return int(np.partition(counts, len(counts) - k)[len(counts) - k])
    at_least = np.cumsum(np.bincount(counts, minlength=highest + 1)[::-1])[::-1]
    return int(np.flatnonzero(at_least >= k)[-1])


class _Reservoir:
    """A uniform sample of ``size`` values: the ones with the smallest random keys.

    Once the sample is full only keys below the largest kept one can enter: each value has that
    chance, so we jump from one candidate to the next with geometric gaps (the same sample for
    the cost of the candidates, not of the block). Compacting waits for 1.5 times the size.
    """

    def __init__(self, seed: int, size: int) -> None:
        self._random = np.random.default_rng(seed)
        self._size = size
        self._keys = np.empty(0)
        self.values = np.empty(0)
        self._threshold = 1.0

    def add(self, values: np.ndarray) -> None:
        if self._threshold < 1.0:
            expected = len(values) * self._threshold
            gaps = self._random.geometric(self._threshold, int(expected + 6 * expected**0.5 + 8))
            where = np.cumsum(gaps) - 1
            where = where[where < len(values)]
            keys, values = self._random.random(len(where)) * self._threshold, values[where]
        else:
            keys = self._random.random(len(values))
        if not len(keys):
            return
        self._keys = np.concatenate([self._keys, keys])
        self.values = np.concatenate([self.values, values.astype(np.float64)])
        if len(self._keys) > 1.5 * self._size:
            self._compact()

    def sample(self) -> np.ndarray:
        if len(self._keys) > self._size:
            self._compact()
        return self.values

    def _compact(self) -> None:
        keep = np.argpartition(self._keys, self._size - 1)[: self._size]
        self._keys, self.values = self._keys[keep], self.values[keep]
        self._threshold = float(self._keys.max())


class _Moments:
    """Count, min, max, mean and sum of squared deviations, merged block by block (Chan et al.)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, values: np.ndarray, *, spread: bool = True,
            low: float | None = None, high: float | None = None) -> None:
        n = len(values)
        if not n:
            return
        self.low = min(self.low, float(values.min()) if low is None else low)
        self.high = max(self.high, float(values.max()) if high is None else high)
        mean = float(values.sum()) / n
        if spread:
            centred = values - mean  # np.dot would call BLAS, whose threads cost more here
            m2 = float(np.square(centred, out=centred).sum())
        else:
            m2 = 0.0
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None


# --------------------------------------------------------------------------------------------
# Columns


def _non_null(values: pa.Array) -> pa.Array:
    return pc.drop_null(values, memory_pool=_pool()) if values.null_count else values


def _as_numbers(values: pa.Array) -> np.ndarray | None:
    """The values as floats, or None if any of them is not a finite number."""
    try:
        numbers = pc.cast(values, pa.float64(), memory_pool=_pool())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    array = _non_null(numbers).to_numpy(zero_copy_only=False)
    # "inf" and overflowing exponents parse too. A finite sum proves every value finite in one
    # pass; only when it is not (huge values may overflow it) look at the extremes.
    if len(array) and not math.isfinite(float(array.sum())):
        if not (math.isfinite(array.min()) and math.isfinite(array.max())):
            return None
    return array


def _as_times(values: pa.Array, tz: str | None) -> np.ndarray | None:
    """Microseconds since 1970 (UTC when ``tz``), or None if any value is not ISO-8601."""
    try:
        times = pc.cast(values, pa.timestamp("us", tz), memory_pool=_pool())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return _non_null(times).to_numpy(zero_copy_only=False).view(np.int64)


def _first_value(values: pa.Array) -> str:
    for i in range(min(len(values), 64)):
        if values[i].is_valid:
            return values[i].as_py()
    return values.drop_null()[0].as_py()


def _format_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _iso(us: float, tz: str | None, *, date_only: bool = False) -> str:
    try:
        moment = _EPOCH + dt.timedelta(microseconds=round(us))
    except OverflowError:
        return str(us)
    if date_only:
        return moment.date().isoformat()
    if tz:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat()


_BOOLEAN_TOKENS = pa.array(BOOLEAN_TRUE + BOOLEAN_FALSE)
_TRUE_TOKENS = pa.array(BOOLEAN_TRUE)


@dataclass(frozen=True)
class _Budget:
    """Per-column summary sizes: full size for ordinary tables, smaller for very wide ones.

    A column's summaries take up to about 24 bytes per distinct hash tracked, 32 per sampled
    value and 256 per top-value counter; a third of STATE_BUDGET_BYTES goes to each.
    """

    distinct_cap: int
    sample_size: int
    top_capacity: int

    @classmethod
    def for_columns(cls, count: int) -> _Budget:
        share = STATE_BUDGET_BYTES // 3 // max(count, 1)
        return cls(distinct_cap=min(DISTINCT_EXACT_CAP, max(1024, share // 24)),
                   sample_size=min(SAMPLE_SIZE, max(256, share // 32)),
                   top_capacity=min(TOP_CAPACITY, max(64, share // 256)))


class _Column:
    """Everything learnt about one column so far, updated block by block.

    ``kind`` is decided by the first block with a value: "number" or "datetime" while every
    value so far parses as one, else "string"; a number/datetime column that meets a value of
    another kind becomes "string" for good (``mixed``). ``boolean`` stays true while every value
    is a boolean token (numbers: 0 or 1).
    """

    def __init__(self, name: str, *, seed: int, budget: _Budget, kind: str | None = None,
                 boolean: bool = True) -> None:
        self.name = name
        self.budget = budget
        self.kind = kind
        self.boolean = boolean
        self.tz: str | None = None
        self.mixed = False
        self.missing = 0
        self.values = 0
        self.trues = 0
        self.date_only = True
        self.unique_share = 0.0  # distinct values per value in the last block of strings
        self.moments = _Moments()
        self.sample = _Reservoir(seed, budget.sample_size)
        self.distinct = _Distinct(budget.distinct_cap)
        self.top = _TopK(budget.top_capacity)

    # -- input

    def add_strings(self, values: pa.Array) -> None:
        """A block of a CSV column: strings, with missing values already null."""
        self.missing += values.null_count
        if values.null_count == len(values):
            return
        if self.kind is None:
            self.kind = self._first_kind(values)
        if self.kind == "number":
            numbers = _as_numbers(values)
            if numbers is not None:
                self._add_numbers(numbers)
                return
            self._demote()
        elif self.kind == "datetime":
            times = _as_times(values, self.tz)
            if times is not None:
                self._add_times(times)
                return
            self._demote()
        self._add_strings(values)

    def add_arrow(self, values: pa.Array) -> None:
        """A block of a Parquet column, of the type ``kind`` was set from."""
        if pa.types.is_dictionary(values.type):
            values = pc.cast(values, values.type.value_type, memory_pool=_pool())
        if self.kind == "number":
            numbers = pc.cast(values, pa.float64(), memory_pool=_pool())
            numbers = _non_null(numbers).to_numpy(zero_copy_only=False)
            # NaN and infinities are gaps in a float column, and JSON cannot carry them.
            finite = numbers[np.isfinite(numbers)]
            self.missing += len(values) - len(finite)
            self._add_numbers(finite)
        elif self.kind == "datetime":
            self.missing += values.null_count
            # safe=False: nanoseconds are truncated to microseconds
            times = pc.cast(values, pa.timestamp("us", self.tz), safe=False, memory_pool=_pool())
            self._add_times(_non_null(times).to_numpy(zero_copy_only=False).view(np.int64))
        elif self.kind == "boolean":
            self.missing += values.null_count
            self.values += len(values) - values.null_count
            self.trues += pc.sum(values).as_py() or 0
        else:
            self._add_parquet_strings(values)

    def _add_parquet_strings(self, values: pa.Array) -> None:
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            try:
                values = pc.cast(values, pa.string(), memory_pool=_pool())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise _unreadable_column(self.name, values.type)
        missing = pc.is_in(values, value_set=pa.array(_missing_values()), memory_pool=_pool())
        values = pc.if_else(missing, pa.scalar(None, values.type), values, memory_pool=_pool())
        self.missing += values.null_count
        if values.null_count < len(values):
            self._add_strings(values)

    def _first_kind(self, values: pa.Array) -> str:
        # Only try the conversion the first value suggests: a failed cast costs a whole block.
        first = _first_value(values)
        if _NUMBER_RE.fullmatch(first):
            return "number" if _as_numbers(values) is not None else "string"
        if _ISO_RE.match(first):
            for tz in (None, "UTC"):
                if _as_times(values, tz) is not None:
                    self.tz = tz
                    return "datetime"
        return "string"

    def _demote(self) -> None:
        """Numbers or datetimes until now, text from here on: their statistics no longer apply."""
        self.kind, self.mixed = "string", True
        self.moments, self.sample = _Moments(), _Reservoir(0, self.budget.sample_size)

    def _add_numbers(self, numbers: np.ndarray) -> None:
        self.values += len(numbers)
        self.moments.add(numbers)
        self.sample.add(numbers)
        if not self.top.active:
            self.boolean = False
            self._add_distinct(numbers, _float_hashes)
            return
        counted = pc.value_counts(pa.array(numbers), memory_pool=_pool())
        unique = counted.field("values").to_numpy(zero_copy_only=False)
        counts = counted.field("counts").to_numpy(zero_copy_only=False)
        hashes = _float_hashes(unique)
        self.distinct.add(hashes)
        self.top.add(hashes, counts, lambda i: [_format_number(v) for v in unique[i].tolist()])
        if self.boolean:
            self.boolean = bool(np.isin(unique, (0.0, 1.0)).all())
            self.trues += int(counts[unique == 1.0].sum())
        self._limit_top()

    def _add_times(self, times: np.ndarray) -> None:
        self.values += len(times)
        self.boolean = False
        self.moments.add(times.astype(np.float64), spread=False)
        self.sample.add(times)
        self.date_only = self.date_only and not np.any(times % _US_PER_DAY)
        if not self.top.active:
            self._add_distinct(times, _time_hashes)
            return
        counted = pc.value_counts(pa.array(times), memory_pool=_pool())
        unique = counted.field("values").to_numpy(zero_copy_only=False)
        hashes = _time_hashes(unique)
        self.distinct.add(hashes)
        self.top.add(hashes, counted.field("counts").to_numpy(zero_copy_only=False),
                     lambda i: [_iso(v, self.tz) for v in unique[i].tolist()])
        self._limit_top()

    def _add_distinct(self, values: np.ndarray, hasher: Callable[[np.ndarray], np.ndarray]) -> None:
        """Hash the block's values, deduplicated first when blocks repeat values (dates, small
        integers): a hash table pass then costs less than sorting the repeats later."""
        if self.unique_share < 0.5:
            unique = pc.unique(pa.array(values), memory_pool=_pool()).to_numpy()
            self.unique_share = len(unique) / max(len(values), 1)
            values = unique
        self.distinct.add(hasher(values))

    def _limit_top(self) -> None:
        # A number column with many values cannot become a category: stop counting its values.
        if not self.distinct.at_most(CATEGORY_MAX_DISTINCT):
            self.top.stop()

    def _add_strings(self, values: pa.Array) -> None:
        if self.unique_share > 0.5 and not self.boolean:
            self._add_unique_strings(_non_null(values))
            return
        counted = pc.value_counts(values, memory_pool=_pool())
        unique, counts = counted.field("values"), counted.field("counts")
        if unique.null_count:
            valid = pc.is_valid(unique)
            unique = pc.filter(unique, valid, memory_pool=_pool())
            counts = pc.filter(counts, valid, memory_pool=_pool())
        counts_np = counts.to_numpy(zero_copy_only=False)
        self.values += int(counts_np.sum())
        self.unique_share = len(unique) / max(int(counts_np.sum()), 1)
        hashes = _mixed_hashes(unique, self.tz) if self.mixed else _string_hashes(unique)
        self.distinct.add(hashes)
        if self.boolean:
            lowered = pc.ascii_lower(unique, memory_pool=_pool())
            known = pc.is_in(lowered, value_set=_BOOLEAN_TOKENS, memory_pool=_pool())
            self.boolean = bool(pc.all(known).as_py())
            trues = pc.is_in(lowered, value_set=_TRUE_TOKENS, memory_pool=_pool())
            trues = trues.to_numpy(zero_copy_only=False)
            self.trues += int(counts_np[trues].sum())
        self.top.add(hashes, counts_np, lambda i: pc.take(unique, pa.array(i)).to_pylist())

    def _add_unique_strings(self, values: pa.Array) -> None:
        """Mostly distinct values: hash them all and count hashes, cheaper than strings twice."""
        self.values += len(values)
        hashes = _mixed_hashes(values, self.tz) if self.mixed else _string_hashes(values)
        hashed = pa.array(hashes)
        counted = pc.value_counts(hashed, memory_pool=_pool())
        unique = counted.field("values")
        counts = counted.field("counts").to_numpy(zero_copy_only=False)
        self.unique_share = len(unique) / max(len(values), 1)
        self.distinct.add(unique.to_numpy())

        def labels(i: np.ndarray) -> list[str]:
            # Where each wanted hash first occurs: probe every value against the few wanted.
            wanted = pc.take(unique, pa.array(i))
            slot = pc.index_in(hashed, value_set=wanted, memory_pool=_pool())
            slot = slot.fill_null(-1).to_numpy(zero_copy_only=False)
            found = np.flatnonzero(slot >= 0)
            _, first = np.unique(slot[found], return_index=True)
            return pc.take(values, pa.array(found[first])).to_pylist()

        self.top.add(unique.to_numpy(), counts, labels)

    # -- output

    def type(self) -> str:
        if self.values == 0:
            return "text"
        if self.kind in ("number", "datetime", "boolean"):
            return self.kind
        if self.boolean:
            return "boolean"
        distinct, estimated = self.distinct.count()
        limit = min(CATEGORY_MAX_DISTINCT, max(CATEGORY_MIN_LIMIT, CATEGORY_SHARE * self.values))
        if not estimated and distinct <= limit and distinct < self.values:
            return "category"
        return "text"

    def profile(self) -> ColumnProfile:
        kind = self.type()
        result = ColumnProfile(name=self.name, type=kind, missing=self.missing, distinct=0)
        if kind == "boolean":
            sides = [("true", self.trues), ("false", self.values - self.trues)]
            result.top = sorted((s for s in sides if s[1]), key=lambda s: -s[1])
            result.distinct = len(result.top)
        else:
            result.distinct, result.distinct_is_estimate = self.distinct.count()
        if kind == "number":
            self._number_stats(result)
        elif kind == "datetime":
            self._time_stats(result)
        elif kind in ("category", "text"):
            result.top = self.top.top()
            result.top_is_estimate = self.top.pruned or not self.top.complete
        if kind not in ("number", "datetime"):
            result.histogram = [{"value": value, "count": count} for value, count in result.top]
        return result

    def _number_stats(self, result: ColumnProfile) -> None:
        m = self.moments
        result.min, result.max, result.mean, result.std = m.low, m.high, m.mean, m.std()
        counts = _histogram_counts(self.sample.sample(), m.low, m.high, m.n)
        edges = _edges(m.low, m.high, len(counts))
        result.histogram = [{"start": float(edges[i]), "end": float(edges[i + 1]), "count": c}
                            for i, c in enumerate(counts)]

    def _time_stats(self, result: ColumnProfile) -> None:
        m = self.moments
        date_only = self.date_only and not self.tz
        result.min = _iso(m.low, self.tz, date_only=date_only)
        result.max = _iso(m.high, self.tz, date_only=date_only)
        result.mean = _iso(round(m.mean / 1e6) * 1e6, self.tz)
        counts = _histogram_counts(self.sample.sample(), m.low, m.high, m.n)
        edges = _edges(m.low, m.high, len(counts))
        result.histogram = [
            {"start": _iso(edges[i], self.tz), "end": _iso(edges[i + 1], self.tz), "count": c}
            for i, c in enumerate(counts)]


def _edges(low: float, high: float, bins: int) -> np.ndarray:
    return np.linspace(low, high, bins + 1)


def _histogram_counts(sample: np.ndarray, low: float, high: float, total: int) -> list[int]:
    """Counts of HISTOGRAM_BINS equal-width bins; from the sample, scaled to ``total``."""
    if high <= low:
        return [total]
    counts, _ = np.histogram(sample, bins=_edges(low, high, HISTOGRAM_BINS))
    if len(sample) == total:
        return counts.tolist()
    expected = counts * (total / counts.sum())
    scaled = np.floor(expected).astype(np.int64)
    # Largest remainders get the rounding, so the bars add up to the real count...
    order = np.argsort(-(expected - scaled), kind="stable")
    scaled[order[: total - int(scaled.sum())]] += 1
    # ...and the bins that hold the min and the max are never shown empty.
    for edge in (0, len(scaled) - 1):
        if scaled[edge] == 0:
            scaled[int(np.argmax(scaled))] -= 1
            scaled[edge] = 1
    return scaled.tolist()
