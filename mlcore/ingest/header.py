"""The header line: read as pyarrow would split it, and checked before any row is parsed."""

from __future__ import annotations

import codecs
import itertools
import re
from dataclasses import dataclass

from .errors import IngestError, IngestLimits, check_column_count, check_names
from .records import BLANK_LINES, split_record
from .source import TextSource

HEADER_MAX_BYTES = 1024 * 1024
MISSING_TOKENS = ("", "NA", "N/A", "NaN", "null", "None", "#N/A")
NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


@dataclass
class Header:
    names: list[str]
    line: int  # the header's line number (after blank lines, if any)
    end_line: int  # lines used up by blank lines and the header


def read_header(source: TextSource) -> Header:
    """Read up to the end of the first record; what follows is put back for pyarrow."""
    buffer = b""
    while True:
        block = source.next_block()
        buffer += block
        blank = BLANK_LINES.match(buffer).group()
        stripped = buffer[len(blank):]
        if not block and not stripped.strip():
            raise IngestError("The file is empty.", code="empty")
        # The bytes are valid UTF-8 already, but a block may end inside a character.
        text, _ = codecs.utf_8_decode(stripped, "strict", not block)
        record = split_record(text, source.delimiter, final=not block)
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
    return Header(names=names, line=line, end_line=used.count(b"\n"))


def check_header(header: Header, limits: IngestLimits) -> None:
    if all(NUMBER_RE.fullmatch(name) for name in header.names):
        raise IngestError(
            f"Line {header.line:,} looks like data, not a header: every cell is a number. Add a "
            f"first line with the column names.", code="no_header", line=header.line)
    check_names(header.names, where="header", line=header.line)
    check_column_count(len(header.names), limits)



def missing_values() -> list[str]:
    """Every spelling of the missing-value tokens in any case: pyarrow matches them exactly."""
    spellings: set[str] = set()
    for token in MISSING_TOKENS:
        cases = [(char.lower(), char.upper()) for char in token]
        spellings.update("".join(chars) for chars in itertools.product(*cases))
    return sorted(spellings)
