"""CSV and TSV rows: ragged rows and open quotes named by line, row limits, dialects (mlcore/ingest/text.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import pytest

from mlcore.ingest import IngestError, IngestLimits, ingest
from tests.mlcore.ingest.conftest import CountingStream, refused, run


def test_it_names_the_line_of_a_ragged_row():
    rows = b"".join(b"%d,%d,%d\n" % (i, i, i) for i in range(2000))
    error = refused(b"a,b,c\n" + rows + b"1,2,3,4\n", block_size=1024)

    assert str(error) == "Line 2,002 has 4 fields but the header has 3 columns."
    assert (error.code, error.line) == ("ragged_row", 2002)


def test_a_ragged_row_after_a_quoted_line_break_gets_its_physical_line():
    data = b'a,b\n"x\ny",1\n"p,q",2\n3\n'

    error = refused(data)

    assert str(error) == "Line 5 has 1 field but the header has 2 columns."


def test_a_ragged_row_after_blank_lines_gets_its_physical_line():
    error = refused(b"a,b\n1,2\n\n\n3,4,5\n")

    assert str(error) == "Line 5 has 3 fields but the header has 2 columns."


def test_it_names_the_line_of_a_quote_that_is_never_closed():
    error = refused(b'id,note\n1,fine\n2,"oops\n3,lost\n4,lost too\n')

    assert str(error) == ("Line 3: a quote opened on this line is never closed, so the rest of "
                          "the file would be read as a single value.")
    assert (error.code, error.line) == ("format", 3)


def test_it_stops_reading_as_soon_as_the_row_limit_is_passed():
    data = b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * 2) for i in range(200_000))
    stream = CountingStream(data)
    limits = IngestLimits(max_rows=1_000, max_columns=10)

    with pytest.raises(IngestError) as caught:
        ingest(stream, filename="big.csv", limits=limits, block_size=4096)

    assert str(caught.value) == "The file has more than 1,000 rows, the limit of your plan."
    assert caught.value.code == "too_many_rows"
    assert stream.bytes_read < 200_000 < len(data)


def test_it_accepts_exactly_the_row_limit():
    data = b"id\n" + b"".join(b"%d\n" % i for i in range(1_000))

    assert run(data, limits=IngestLimits(max_rows=1_000, max_columns=10)).rows == 1_000


@pytest.mark.parametrize("data", [b"id,name\n", b"id,name", b"id,name\n\n\n"])
def test_it_refuses_a_header_without_rows(data):
    error = refused(data)

    assert (error.code, str(error)) == ("empty", "The file has a header but no data rows.")


def test_quoted_fields_keep_their_commas_quotes_and_line_breaks():
    data = b'id,comment\n1,"a, b"\n2,"said ""hi"""\n3,"two\nlines"\n4,plain\n'

    result = run(data)

    assert result.rows == 4
    assert [row[1] for row in result.preview] == ["a, b", 'said "hi"', "two\nlines", "plain"]


def test_crlf_line_endings():
    result = run(b"id,name\r\n1,a\r\n2,b\r\n")

    assert result.preview == [["1", "a"], ["2", "b"]]
    assert [c.name for c in result.columns] == ["id", "name"]


def test_crlf_ragged_row_is_named_by_line():
    error = refused(b"id,name\r\n1,a\r\n2\r\n")

    assert str(error) == "Line 3 has 1 field but the header has 2 columns."
