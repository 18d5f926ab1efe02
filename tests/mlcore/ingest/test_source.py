"""The upload as validated UTF-8: encodings, bad bytes named by line and column, gzip (mlcore/ingest/source.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import gzip

from mlcore.ingest.source import UTF8_HINT
from tests.mlcore.ingest.conftest import column, refused, run


def test_it_names_the_line_and_column_of_bytes_that_are_not_utf8():
    error = refused(b"id,name,price\n1,ok,2\n2,caf\xe9,3\n")

    assert str(error) == ("Line 3, column 'name': the bytes are not valid UTF-8 text (at byte 0xE9)."
                          + UTF8_HINT)
    assert UTF8_HINT == (" If the file was saved in another encoding (Excel on Windows often uses "
                         "Windows-1252), choose that encoding when you upload it.")
    assert (error.code, error.line, error.column) == ("encoding", 3, "name")


def test_it_finds_a_bad_byte_far_into_the_file():
    rows = b"".join(b"%d,plain text\n" % i for i in range(5000))
    error = refused(b"id,note\n" + rows + b"5000,bad \xff byte\n", block_size=4096)

    assert str(error) == ("Line 5,002, column 'note': the bytes are not valid UTF-8 text "
                          "(at byte 0xFF)." + UTF8_HINT)


def test_it_refuses_a_file_cut_in_the_middle_of_a_character():
    error = refused(b"id,name\n1,caf\xc3")

    assert error.code == "encoding"
    assert str(error) == ("Line 2, column 'name': the bytes are not valid UTF-8 text (at byte 0xC3)."
                          + UTF8_HINT)


def test_it_names_the_declared_encoding_when_bytes_do_not_fit_it():
    error = refused(b"id,name\n1,\x81\n", encoding="cp1252")

    assert str(error) == "Line 2, column 'name': the bytes are not valid cp1252 text (at byte 0x81)."


def test_it_refuses_a_nul_byte_further_down():
    rows = b"".join(b"%d,x\n" % i for i in range(20_000))
    error = refused(b"a,b\n" + rows + b"1,\x00\n", block_size=8192)

    assert str(error) == ("Line 20,002 contains a NUL byte: this looks like a binary file, not "
                          "CSV text.")


def test_it_refuses_a_damaged_gzip_file():
    packed = gzip.compress(b"id,name\n" + b"1,a\n" * 10_000)

    error = refused(packed[: len(packed) // 2], "data.csv.gz")

    assert error.code == "format"
    assert "gzip" in str(error)


def test_a_byte_order_mark_is_skipped():
    result = run(b"\xef\xbb\xbfid,name\n1,a\n")

    assert [c.name for c in result.columns] == ["id", "name"]


def test_a_declared_latin1_file_is_transcoded():
    result = run("ville,prix\nMontréal,3\nQuébec,4\n".encode("latin-1"), encoding="latin-1")

    assert column(result, "ville").top == [("Montréal", 1), ("Québec", 1)]
    assert result.preview[0] == ["Montréal", "3"]
    assert result.encoding == "iso8859-1"  # the codec's own name, for the readers after us


def test_a_utf16_file_with_a_byte_order_mark_needs_no_declaration():
    result = run("name\tcount\nü\t1\nö\t2\n".encode("utf-16"), "export.txt")

    assert result.format == "tsv"
    assert result.preview == [["ü", "1"], ["ö", "2"]]
    assert result.encoding == "utf-16"


def test_a_character_split_across_blocks_is_read_whole():
    # With 7-byte blocks the first one ends between the two bytes of "é".
    data = "name\naé\nbé\nçc\n".encode()

    result = run(data, block_size=7)

    assert [row[0] for row in result.preview] == ["aé", "bé", "çc"]
