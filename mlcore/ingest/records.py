"""Records split as pyarrow's CSV reader splits them: used for the header and to locate errors."""

from __future__ import annotations

import re

BLANK_LINES = re.compile(rb"(?:[ \t\f\v]*(?:\r\n|\n|\r))*")


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
