"""CSV and TSV: pyarrow parses the validated text; the columns profile it a batch at a time."""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pyarrow.csv as pacsv

from .columns import Budget, Column
from .errors import IngestError, IngestLimits, count_of, too_many_rows
from .header import Header, check_header, missing_values, read_header
from .memory import pool
from .pipeline import Balance, absorb, pipelined
from .results import IngestResult
from .source import TextSource


def ingest_text(source: TextSource, *, fmt: str, limits: IngestLimits,
                preview_rows: int) -> IngestResult:
    header = read_header(source)
    check_header(header, limits)
    source.names = header.names
    invalid_rows: list[pacsv.InvalidRow] = []
    budget = Budget.for_columns(len(header.names))
    columns = [Column(name, seed=i, budget=budget) for i, name in enumerate(header.names)]
    balance = Balance(len(columns))
    preview: list[list[str | None]] = []
    rows = 0
    try:
        reader = _open_reader(source, len(columns), invalid_rows)
        last: pa.RecordBatch | None = None
        with contextlib.closing(pipelined(reader, source, columns, balance)) as batches:
            del reader  # the pipeline owns it now
            for index, (batch, blocks) in enumerate(batches):
                rows += batch.num_rows
                if rows > limits.max_rows:
                    raise too_many_rows(limits.max_rows)
                preview += _preview_strings(batch, preview_rows - len(preview))
                absorb(columns, batch, index, blocks, balance)
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
        source.wait_until_returned()
    if rows == 0:
        raise IngestError("The file has a header but no data rows.", code="empty")
    return IngestResult(format=fmt, rows=rows, columns=[c.profile() for c in columns],
                        preview=preview, encoding=source.encoding)


def _open_reader(source: TextSource, count: int,
                 invalid_rows: list[pacsv.InvalidRow]) -> pa.RecordBatchReader:
    """pyarrow's streaming reader, every value a string (or null when missing), one thread."""
    internal = [f"c{i}" for i in range(count)]

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        invalid_rows.append(row)
        return "error"

    source.parser_waiting = True  # while pyarrow reads the first block for open_csv
    return pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=internal, block_size=source.block_size,
                                       use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True,
                                         invalid_row_handler=on_invalid_row),
        memory_pool=pool(),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(internal, pa.string()), null_values=missing_values(),
            strings_can_be_null=True, quoted_strings_can_be_null=True, check_utf8=False),
    )


def _check_quotes_closed(last: pa.RecordBatch | None, source: TextSource) -> None:
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


def _csv_failure(exc: Exception, source: TextSource, header: Header,
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


def _ragged_row_error(row: pacsv.InvalidRow, source: TextSource, header: Header) -> IngestError:
    fields = f"has {count_of(row.actual_columns, 'field')} but the header has " \
             f"{count_of(row.expected_columns, 'column')}."
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

