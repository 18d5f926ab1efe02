"""The header line, checked before any row is parsed (mlcore/ingest/header.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import pytest

from mlcore.ingest import IngestError, IngestLimits, ingest
from tests.mlcore.ingest.conftest import CountingStream, column, refused, run


def test_it_asks_for_a_header_when_the_first_line_is_numbers():
    error = refused(b"1,2,3\n4,5,6\n")

    assert str(error) == ("Line 1 looks like data, not a header: every cell is a number. Add a "
                          "first line with the column names.")
    assert (error.code, error.line) == ("no_header", 1)


def test_it_names_the_column_without_a_name():
    error = refused(b"id,,price\n1,2,3\n")

    assert str(error) == "Column 2 of the header has no name."
    assert (error.code, error.column) == ("empty_column_name", 2)


def test_it_names_both_positions_of_a_duplicate_column():
    error = refused(b"id,name,price,id\n1,a,2,3\n")

    assert str(error) == "The header has two columns named 'id' (columns 1 and 4)."
    assert (error.code, error.column) == ("duplicate_column", "id")


def test_it_refuses_more_columns_than_the_plan_allows_before_reading_rows():
    stream = CountingStream(b"a,b,c,d,e\n" + b"1,2,3,4,5\n" * 50_000)
    limits = IngestLimits(max_rows=1_000_000, max_columns=4)

    with pytest.raises(IngestError) as caught:
        ingest(stream, filename="wide.csv", limits=limits, block_size=4096)

    assert str(caught.value) == "The file has 5 columns, more than 4, the limit of your plan."
    assert caught.value.code == "too_many_columns"
    assert stream.bytes_read < 100_000


@pytest.mark.parametrize("data", [b"", b"   \n\n  \r\n"])
def test_it_refuses_an_empty_file(data):
    error = refused(data)

    assert (error.code, str(error)) == ("empty", "The file is empty.")


def test_missing_values_are_the_documented_tokens_in_any_case():
    result = run(b"x,y\n1,a\n,b\nNA,c\nn/a,d\nNaN,e\nNULL,f\nnone,g\n#N/A,h\n2,i\n")

    x = column(result, "x")
    assert (x.type, x.missing, x.distinct, x.min, x.max) == ("number", 7, 2, 1.0, 2.0)
    assert result.preview[1] == [None, "b"]
