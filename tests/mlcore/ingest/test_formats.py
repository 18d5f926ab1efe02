"""Format detection and refusals before any row is read (mlcore/ingest/formats.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import gzip

import pytest

from mlcore.ingest import detect_format
from tests.mlcore.ingest.conftest import refused, run


def test_it_refuses_an_unknown_encoding_name():
    error = refused(b"a\n1\n", encoding="klingon")

    assert (error.code, str(error)) == ("encoding", "'klingon' is not a text encoding we know.")


@pytest.mark.parametrize("name", ["hex", "base64", "zlib", "rot13", "idna", "punycode",
                                  "unicode_escape", "utf\x00"])
def test_codecs_that_are_not_character_sets_are_refused_as_encodings(name):
    error = refused(b"a,b\n1,2\n", encoding=name)

    assert (error.code, str(error)) == ("encoding", f"'{name}' is not a text encoding we know.")


def test_it_refuses_binary_content():
    error = refused(b"a,b\n" + bytes(range(256)) * 4)

    assert (error.code, str(error)) == ("binary", "This looks like a binary file, not CSV text.")


@pytest.mark.parametrize(("head", "advice"), [
    (b"PK\x03\x04rest-of-an-xlsx", "Export the sheet as CSV and upload that."),
    (b"%PDF-1.7\n", "This is a PDF document, not a table."),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "This is a PNG image, not a table."),
])
def test_it_recognises_files_that_are_not_tables(head, advice):
    error = refused(head + b"\x00" * 100, "upload.csv")

    assert error.code == "binary"
    assert advice in str(error)


def test_it_refuses_a_file_type_it_cannot_read():
    error = refused(b'{"a": 1}', "data.json")

    assert str(error) == ("Files ending in '.json' are not supported: upload CSV, TSV or Parquet "
                          "(gzip-compressed CSV or TSV too).")
    assert error.code == "format"


def test_gzip_compressed_csv():
    result = run(gzip.compress(b"id,name\n1,a\n2,b\n", mtime=0), "data.csv.gz")

    assert (result.format, result.rows) == ("csv.gz", 2)


def test_tsv_by_extension_and_by_sniffing():
    data = b"id\tname\n1\ta, b\n2\tc\n"

    assert run(data, "data.tsv").format == "tsv"
    assert run(data, "data.txt").format == "tsv"
    assert run(data, "data.txt").preview[0] == ["1", "a, b"]


@pytest.mark.parametrize(("filename", "head", "expected"), [
    ("a.csv", b"x,y\n", "csv"),
    ("a.TSV", b"x\ty\n", "tsv"),
    ("a.tab", b"x\ty\n", "tsv"),
    ("a.txt", b"x,y\n", "csv"),
    ("a.csv.gz", gzip.compress(b"x,y\n", mtime=0), "csv.gz"),
    ("a.gz", gzip.compress(b"x\ty\n", mtime=0), "tsv.gz"),
    ("anything", b"PAR1\x15\x04", "parquet"),
])
def test_detect_format(filename, head, expected):
    assert detect_format(filename, head) == expected
