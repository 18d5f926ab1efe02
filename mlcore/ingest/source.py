"""The upload as validated UTF-8, handed to pyarrow's CSV reader one block at a time."""

from __future__ import annotations

import codecs
import collections
import gzip
import io
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .errors import IngestError, where
from .formats import BINARY_CONTROL_SHARE, CONTROL_BYTES, HEAD_BYTES, UTF16_BOMS, read_up_to
from .records import BLANK_LINES, split_record

UTF8_HINT = (" If the file was saved in another encoding (Excel on Windows often uses "
             "Windows-1252), choose that encoding when you upload it.")
READ_AHEAD_BLOCKS = 2  # pyarrow needs the block after the one it parses, no more
SEARCH_WINDOW_BLOCKS = READ_AHEAD_BLOCKS + 2  # pyarrow may be parsing a block this far back


@dataclass
class _Block:
    first_line: int  # line number of the block's first byte
    starts_line: bool  # the block starts at the beginning of a line
    data: bytes


class TextSource(io.RawIOBase):
    """The upload as validated UTF-8, handed to pyarrow's CSV reader one block at a time.

    Everything pyarrow parses passes through here first: this is where an encoding error or a NUL
    byte can still be tied to its line. It also counts lines and keeps the last few blocks, so that
    a ragged row, which pyarrow reports by row number, can be given its line number. pyarrow reads
    far ahead on its own thread; ``read`` makes it wait until what it read has been parsed
    (``block_parsed``), so that only a few blocks are in memory at once.
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
        self.parser_waiting = False  # the parse thread waits for pyarrow to make a batch
        self._views: set[weakref.ref] = set()

    @property
    def encoding(self) -> str:
        """What the text is read as: the declared encoding, or UTF-16 found by its byte order mark."""
        return self._encoding

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
        The set of live views is the count: ``+= 1`` on two threads can lose an update (the
        GIL may switch in the middle), adding to and discarding from a set cannot.
        """
        view = memoryview(data)
        self._views.add(weakref.ref(view, self._views.discard))
        return view

    def wait_until_returned(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while (self._views or self._reading) and time.monotonic() < deadline:
            time.sleep(0.001)

    def _wait_for_turn(self) -> bool:
        """Block pyarrow's read-ahead until parsing has caught up; False once cancelled."""
        with self._turn:
            while self._reads >= self._allowed and not self._cancelled:
                # The parse thread waiting for a batch while reads wait for it would be a
                # deadlock (pyarrow may need one more block than we expect): let the read through.
                if not self._turn.wait(timeout=0.05) and self.parser_waiting:
                    break
            if self._cancelled:
                return False
            self._reads += 1
            self._reading += 1
            return True

    def block_parsed(self) -> None:
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
            return read_up_to(self._raw, self.block_size)
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
        controls = len(sample) - len(sample.translate(None, CONTROL_BYTES))
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
        if self._first and self._decoder is None and raw.startswith(UTF16_BOMS):
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
        except UnicodeError:
            # utf-16 / utf-32 without a byte-order mark: Python will not guess the byte order.
            family = self._encoding.replace("_", "-").split("-")[:2]
            name = "-".join(family).upper()
            raise IngestError(
                f"The file was declared {name} but does not start with a byte-order mark, so its "
                f"byte order is unknown: choose {name}-LE (what Windows writes) or {name}-BE.",
                code="encoding", line=1)
        if self._first and text.startswith("\ufeff"):
            text = text[1:]
        return text.encode("utf-8")

    def _encoding_error(self, prefix: bytes, bad_byte: int, label: str) -> IngestError:
        """Name the line of the first bad byte, and its column when the line can be split."""
        line = self.lines + prefix.count(b"\n") + 1
        column = self._column_at(prefix)
        hint = UTF8_HINT if label == "UTF-8" else ""
        return IngestError(
            f"{where(line, column)}: the bytes are not valid {label} text "
            f"(at byte 0x{bad_byte:02X}).{hint}", code="encoding", line=line, column=column)

    def _column_at(self, prefix: bytes) -> str | int | None:
        tail = prefix.rsplit(b"\n", 1)
        line_start = tail[-1]
        if len(tail) == 1 and self._window:
            line_start = self._window[-1].data.rsplit(b"\n", 1)[-1] + line_start
        index = field_index(line_start.decode("utf-8", "replace"), self.delimiter)
        names = self.names or self._names_before(prefix, is_header=len(tail) == 1)
        if names:
            return names[index] if index < len(names) else None
        return index + 1

    def _names_before(self, prefix: bytes, *, is_header: bool) -> list[str]:
        """The header's names when the bad byte comes after it in the first block."""
        if self._window or is_header:
            return []
        text = BLANK_LINES.sub(b"", prefix, count=1).decode("utf-8", "replace")
        record = split_record(text, self.delimiter, final=False)
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


def field_index(line: str, delimiter: str) -> int:
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

