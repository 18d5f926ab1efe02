"""The errors ingest raises, the limits it checks, and the sentences it says them with."""

from __future__ import annotations

from dataclasses import dataclass

ERROR_CODES = frozenset({
    "encoding", "no_header", "empty_column_name", "duplicate_column", "ragged_row", "binary",
    "too_many_columns", "too_many_rows", "too_large_to_read", "empty", "format",
})


@dataclass(frozen=True)
class IngestLimits:
    max_rows: int
    max_columns: int


class NeedsRandomAccess(Exception):
    """The file (Parquet, read from its end) cannot be read from a stream that only goes forward.
    Not the file's fault: the caller reads it again from a seekable copy."""


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


def count_of(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def where(line: int | None, column: str | int | None) -> str:
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


def too_many_rows(limit: int) -> IngestError:
    return IngestError(f"The file has more than {limit:,} rows, the limit of your plan.",
                       code="too_many_rows")


def check_column_count(count: int, limits: IngestLimits) -> None:
    if count > limits.max_columns:
        raise IngestError(
            f"The file has {count:,} columns, more than {limits.max_columns:,}, the limit of "
            f"your plan.", code="too_many_columns")


def check_names(names: list[str], *, where: str, line: int | None) -> None:
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
