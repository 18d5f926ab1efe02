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
    order mark switches an undeclared encoding to UTF-16; ``IngestResult.encoding`` says what the
    text was read as, so that later readers read it the same way. Bytes that are not UTF-8 are
    refused with a hint to declare the encoding the file was saved in. A NUL byte, or more than 5% control
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
               uniform random sample of 10,000 values (bottom-k sampling, seeded by column and
               block: the same file gives the same sample) and scaled: the counts always add up
               to the non-missing values, and the bins holding the min and the max are never
               shown empty. Others: the top values, ``{"value", "count"}``.
    Very wide tables get smaller summaries (fewer exact distinct values, a smaller sample, fewer
    top counters) so that all columns together stay within STATE_BUDGET_BYTES.

Memory and speed
    pyarrow's streaming CSV reader parses 1 MB blocks in C++, every value as a string, on a
    second thread, and may read only two blocks ahead of what it has parsed. The same thread
    then works out the parsed batch for some of the columns (``blocks``: values converted,
    counted, hashed and summed with pyarrow.compute and numpy, never value by value in Python)
    while the calling thread absorbs the previous batch into the columns' summaries and works
    out the other columns. Which thread takes which column is dealt again every few batches
    from what each thread measures (``pipeline.Balance``), so that neither waits for the other.
    Allocations go to jemalloc with a short decay, so that memory freed by one block is
    returned rather than kept. bench/ingest.py measures speed against pandas.read_csv and the
    growth of peak RSS.

Modules
    formats (what a file is), source (the upload as validated UTF-8 for pyarrow), records (a
    record split as pyarrow splits it), header, text and pipeline (CSV and TSV), parquet, blocks
    (one block of a column worked out on its own), columns (a column's state and profile),
    summaries (distinct count, top values, sample, moments), hashing, values (conversions),
    errors, results, memory, feed (``IngestFeed``: ingest() on its own thread, fed an upload's
    chunks as they arrive through a bounded buffer).
"""

from __future__ import annotations

import gzip
from typing import BinaryIO

from .errors import ERROR_CODES, IngestError, IngestLimits, NeedsRandomAccess
from .formats import HEAD_BYTES, Prepended, check_encoding, detect_format, read_up_to
from .header import MISSING_TOKENS
from .parquet import ingest_parquet
from .results import ColumnProfile, IngestResult
from .source import TextSource
from .text import ingest_text

__all__ = [
    "DEFAULT_BLOCK_SIZE", "ERROR_CODES", "MISSING_TOKENS", "ColumnProfile", "IngestError",
    "IngestLimits", "IngestResult", "NeedsRandomAccess", "check_encoding",
    "detect_format", "ingest",
]

DEFAULT_BLOCK_SIZE = 1024 * 1024


def ingest(stream: BinaryIO, *, filename: str, limits: IngestLimits, encoding: str = "utf-8",
           preview_rows: int = 20, block_size: int = DEFAULT_BLOCK_SIZE) -> IngestResult:
    """Validate and profile the table in ``stream``, reading it once, block by block.

    Parquet needs a seekable ``stream`` (NeedsRandomAccess otherwise); CSV and TSV are read
    forward only, so ``stream`` may be an upload still arriving (``IngestFeed``).

    ``block_size`` is how much is read and parsed at a time (tests make it tiny); a single CSV row
    must fit in one block.
    """
    encoding = check_encoding(encoding)
    head = read_up_to(stream, HEAD_BYTES)
    fmt = detect_format(filename, head, encoding=encoding)
    if fmt == "parquet":
        if not stream.seekable():
            raise NeedsRandomAccess("A Parquet file is read from its end: give a seekable stream.")
        stream.seek(0)
        return ingest_parquet(stream, limits=limits, preview_rows=preview_rows,
                              block_size=block_size)
    raw: BinaryIO = Prepended(head, stream)
    if fmt.endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw, mode="rb")
    delimiter = "\t" if fmt.startswith("tsv") else ","
    source = TextSource(raw, encoding=encoding, block_size=block_size, delimiter=delimiter)
    return ingest_text(source, fmt=fmt, limits=limits, preview_rows=preview_rows)
