"""What kind of file an upload is, from its name and first bytes, before anything is parsed."""

from __future__ import annotations

import codecs
import io
import os
import re
import zlib
from typing import Any, BinaryIO

from .errors import IngestError

HEAD_BYTES = 64 * 1024
BINARY_CONTROL_SHARE = 0.05
CONTROL_BYTES = bytes(range(0, 9)) + b"\x0b" + bytes(range(14, 32)) + b"\x7f"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_TEXT_EXTENSIONS = (".csv", ".tsv", ".tab", ".txt")

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
    if data.startswith(UTF16_BOMS) or "16" in encoding or "32" in encoding:
        return
    sample = data[:HEAD_BYTES]
    controls = len(sample) - len(sample.translate(None, CONTROL_BYTES))
    if b"\x00" in sample or controls > BINARY_CONTROL_SHARE * len(sample):
        raise IngestError("This looks like a binary file, not CSV text.", code="binary")


# Codecs Python knows that are not character sets a file is saved in.
_NOT_FILE_ENCODINGS = {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"}


def check_encoding(encoding: str) -> str:
    """The codec's own name for a character set a text file can be saved in ("cp1252", ...)."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        info = None
    # hex, base64, zlib, rot13... are codecs too, but transform bytes or text, not decode files.
    if info is None or not getattr(info, "_is_text_encoding", True) \
            or info.name.replace("_", "-") in _NOT_FILE_ENCODINGS:
        raise IngestError(f"'{str(encoding)[:60]}' is not a text encoding we know.", code="encoding")
    return "utf-8" if info.name in ("utf-8", "utf-8-sig") else info.name


def read_up_to(stream: BinaryIO, size: int) -> bytes:
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


class Prepended(io.RawIOBase):
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
