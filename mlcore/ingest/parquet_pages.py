"""What decoding a Parquet file will cost, read from its page headers before any page is decoded.

The footer alone cannot say it: a column chunk's ``total_uncompressed_size`` counts a dictionary
page once however many rows point into it, and says nothing of how the bytes are spread over cells.
Each page header states the page's decoded size and its number of values, and a cell never spans
pages, so a page over MAX_PAGE_BYTES is refused (one cell there may be that large) and the bytes
per value of the densest page set how many rows a batch may hold. The headers are Thrift
(compact protocol); only the few fields needed here are kept, the rest skipped.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow.parquet as pq

from .errors import IngestError

MIB = 1024 * 1024
# Writers cut pages at about 1 MiB (pyarrow, parquet-mr, Spark), dictionary pages too; a page eight
# times that holds something no table row needs, and decoding it costs its whole size at once.
MAX_PAGE_BYTES = 8 * MIB
# Decoded bytes a batch of rows may hold across all columns (an estimate from the densest pages).
BATCH_BYTES = 8 * MIB
# Checking a page header costs ~35 us; files cut into 1 MB pages have one per MB of column data.
MAX_PAGES = 100_000
_WINDOW_BYTES = 64 * 1024
_MAX_HEADER_BYTES = 256 * 1024
_DICTIONARY_PAGE = 2
_DICTIONARY_ENCODINGS = (2, 8)  # PLAIN_DICTIONARY, RLE_DICTIONARY
# Where a data page header (v1 in field 5, v2 in field 8) keeps its number of values and encoding.
_DATA_PAGE_FIELDS = {5: {1: "values", 2: "encoding"}, 7: {1: "values"},
                     8: {1: "values", 4: "encoding"}}


@dataclass(frozen=True)
class _Page:
    kind: int
    decoded: int
    stored: int
    values: int
    header: int
    encoding: int = -1


@dataclass
class ColumnCost:
    """What one column's values decode to, the worst over its row groups."""

    per_value: int = 1  # bytes per value of its densest data page
    dictionary_value: int = 0  # average value of its largest-valued dictionary page
    dictionary_bytes: int = 0  # its largest dictionary page, so its longest value at most
    dictionary_only: bool = True  # every data page refers to a dictionary (none fell back)


def column_costs(stream: BinaryIO, metadata: pq.FileMetaData, *,
                 columns: Collection[str] | None = None) -> dict[str, ColumnCost]:
    """The cost of each of ``columns`` (all by default), from every page header; refuses a file
    with a page over MAX_PAGE_BYTES (a cell over it cannot be ruled out), naming the row group,
    column and rows."""
    costs: dict[str, ColumnCost] = {}
    headers = _Headers(stream)
    first_row = 0
    for group_index in range(metadata.num_row_groups):
        group = metadata.row_group(group_index)
        for column_index in range(group.num_columns):
            chunk = group.column(column_index)
            if columns is not None and chunk.path_in_schema not in columns:
                continue
            cost = costs.setdefault(chunk.path_in_schema, ColumnCost())
            _add_chunk(cost, headers, chunk, row_group=group_index, first_row=first_row)
        first_row += group.num_rows
    stream.seek(0)
    return costs


def batch_rows(costs: dict[str, ColumnCost], *, max_rows: int,
               kept_as_dictionaries: Collection[str] = ()) -> int:
    """Rows per batch so a batch decodes to about BATCH_BYTES.

    A dictionary's values count per row unless the reader keeps that column as a dictionary
    (the ingest does, and cuts a batch whose cells would decode to more). They count by their
    average: a stated approximation, as a page header gives no value's length.
    """
    per_row = sum(cost.per_value + (0 if name in kept_as_dictionaries else cost.dictionary_value)
                  for name, cost in costs.items())
    return max(1, min(max_rows, BATCH_BYTES // max(per_row, 1)))


def _add_chunk(cost: ColumnCost, headers: _Headers, chunk: pq.ColumnChunkMetaData, *,
               row_group: int, first_row: int) -> None:
    start = chunk.data_page_offset
    if chunk.has_dictionary_page and 0 < chunk.dictionary_page_offset < start:
        start = chunk.dictionary_page_offset
    end = start + chunk.total_compressed_size
    position, row, dictionary = start, first_row, False
    while position < end:
        page = headers.at(position)
        if max(page.decoded, page.stored) > MAX_PAGE_BYTES:
            raise _page_too_large(chunk, page, row_group=row_group, row=row)
        if page.kind == _DICTIONARY_PAGE:
            dictionary = True
            cost.dictionary_bytes = max(cost.dictionary_bytes, page.decoded)
            if page.values > 0:
                cost.dictionary_value = max(cost.dictionary_value,
                                            -(-page.decoded // page.values))
        elif page.values > 0:
            cost.per_value = max(cost.per_value, -(-page.decoded // page.values))
            cost.dictionary_only &= page.encoding in _DICTIONARY_ENCODINGS
            row += page.values
        position += page.header + page.stored
    cost.dictionary_only &= dictionary


def _page_too_large(chunk: pq.ColumnChunkMetaData, page: _Page, *, row_group: int,
                    row: int) -> IngestError:
    size = f"{max(page.decoded, page.stored) / MIB:,.1f} MB"
    if page.kind == _DICTIONARY_PAGE:
        what = f"its dictionary page decodes to {size}"
    elif page.values <= 1:
        what = f"row {row + 1:,} is in a page that decodes to {size}"
    else:
        what = f"rows {row + 1:,}-{row + page.values:,} are in a page that decodes to {size}"
    column = chunk.path_in_schema
    return IngestError(
        f"Column '{column}' of row group {row_group + 1} cannot be read within the memory an "
        f"upload may use: {what}, and no Parquet page may decode to more than "
        f"{MAX_PAGE_BYTES // MIB} MB (so no single value may be larger). Write the file with "
        f"shorter values or smaller pages.",
        code="too_large_to_read", column=column,
        row=None if page.kind == _DICTIONARY_PAGE else row + 1)


class _Headers:
    """Page headers read through a window of the file: where pages are small, the next header is
    already in it, so a file of many tiny pages costs one read per window, not one per page."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.start = 0
        self.data = b""
        self.asked = 0
        self.pages = 0

    def at(self, position: int) -> _Page:
        self.pages += 1
        if self.pages > MAX_PAGES:
            raise IngestError(
                f"The Parquet file is cut into more than {MAX_PAGES:,} pages, too many to check "
                f"before reading it (write it with larger pages: writers make them about 1 MB).",
                code="too_large_to_read")
        size = _WINDOW_BYTES
        while True:
            offset = position - self.start
            if 0 <= offset < len(self.data):
                try:
                    return _parse_page_header(memoryview(self.data)[offset:])
                except _Short:
                    if offset == 0 and (len(self.data) < self.asked
                                        or self.asked >= _MAX_HEADER_BYTES):
                        raise _damaged("a page header cannot be read")
                    size = self.asked * 8 if offset == 0 else self.asked
            self.stream.seek(position)
            self.start, self.asked = position, size
            self.data = self.stream.read(size)
            if not self.data:
                raise _damaged("a page lies past the end of the file")


def _damaged(what: str) -> IngestError:
    return IngestError(f"The Parquet file is damaged ({what}).", code="format")


class _Short(Exception):
    """The bytes read end inside the header."""


class _Compact:
    """Just enough of Thrift's compact protocol to read a PageHeader and skip what is not needed."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise _Short
        self.at += 1
        return self.data[self.at - 1]

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise _damaged("a page header is malformed")

    def integer(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def fields(self):
        """(field id, type) of a struct's fields until its end."""
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return
            delta, kind = head >> 4, head & 0x0F
            last = last + delta if delta else self.integer()
            yield last, kind

    def skip(self, kind: int, depth: int = 0) -> None:
        if depth > 16:
            raise _damaged("a page header nests too deeply")
        if kind in (1, 2):  # booleans carry their value in the type
            return
        if kind == 3:
            self.byte()
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self._advance(8)
        elif kind == 8:
            self._advance(self.varint())
        elif kind in (9, 10):
            head = self.byte()
            size = head >> 4 if head >> 4 != 15 else self.varint()
            for _ in range(size):
                self.byte() if head & 0x0F in (1, 2) else self.skip(head & 0x0F, depth + 1)
        elif kind == 11:
            size = self.varint()
            types = self.byte() if size else 0
            for _ in range(size):
                self.skip(types >> 4, depth + 1)
                self.skip(types & 0x0F, depth + 1)
        elif kind == 12:
            for _, inner in self.fields():
                self.skip(inner, depth + 1)
        else:
            raise _damaged("a page header is malformed")

    def _advance(self, n: int) -> None:
        if self.at + n > len(self.data):
            raise _Short
        self.at += n


def _parse_page_header(data: bytes) -> _Page:
    reader = _Compact(data)
    found = {"kind": -1, "decoded": 0, "stored": 0, "values": 0, "encoding": -1}
    for field, kind in reader.fields():
        if field in (1, 2, 3) and kind == 5:
            found[("kind", "decoded", "stored")[field - 1]] = reader.integer()
        elif field in _DATA_PAGE_FIELDS and kind == 12:  # data page v1, dictionary, data v2
            wanted = _DATA_PAGE_FIELDS[field]
            for inner, inner_kind in reader.fields():
                if inner in wanted and inner_kind == 5:
                    found[wanted[inner]] = reader.integer()
                else:
                    reader.skip(inner_kind)
        else:
            reader.skip(kind)
    if found["decoded"] < 0 or found["stored"] < 0:
        raise _damaged("a page has a negative size")
    return _Page(header=reader.at, **found)
