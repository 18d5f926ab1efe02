"""The header line: read as pyarrow would split it, and checked before any row is parsed."""

from __future__ import annotations

import codecs
import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import IngestError, IngestLimits, check_column_count, check_names

if TYPE_CHECKING:
    from .source import TextSource

HEADER_MAX_BYTES = 1024 * 1024
MISSING_TOKENS = ("", "NA", "N/A", "NaN", "null", "None", "#N/A")
NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
BLANK_LINES = re.compile(rb"(?:[ \t\f\v]*(?:\r\n|\n|\r))*")


@dataclass
class Header:
    names: list[str]
    line: int  # the header's line number (after blank lines, if any)
    end_line: int  # lines used up by blank lines and the header


def split_record(text: str, delimiter: str, *, final: bool) -> tuple[list[str], int] | None:
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
