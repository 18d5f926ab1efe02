"""mlcore.ingest: validation messages, type inference and profiles, read in one streaming pass.

Pure tests: no database, no Django. Files are built in memory; ``block_size`` is made tiny where a
test needs blocks to end in awkward places.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcore.ingest import IngestError, IngestLimits, detect_format, ingest
from mlcore.ingest.source import UTF8_HINT

LIMITS = IngestLimits(max_rows=1_000_000, max_columns=100)


def run(data: bytes, filename: str = "data.csv", **options):
    return ingest(io.BytesIO(data), filename=filename, limits=options.pop("limits", LIMITS),
                  **options)


def refused(data: bytes, filename: str = "data.csv", **options) -> IngestError:
    with pytest.raises(IngestError) as caught:
        run(data, filename, **options)
    return caught.value


def column(result, name: str):
    return next(c for c in result.columns if c.name == name)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


class CountingStream(io.RawIOBase):
    """A non-seekable upload that remembers how much was read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.bytes_read += len(chunk)
        return chunk


# -- errors: one per case, with the exact sentence the uploader sees


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


def test_it_refuses_an_unknown_encoding_name():
    error = refused(b"a\n1\n", encoding="klingon")

    assert (error.code, str(error)) == ("encoding", "'klingon' is not a text encoding we know.")


@pytest.mark.parametrize("name", ["hex", "base64", "zlib", "rot13", "idna", "punycode",
                                  "unicode_escape", "utf\x00"])
def test_codecs_that_are_not_character_sets_are_refused_as_encodings(name):
    error = refused(b"a,b\n1,2\n", encoding=name)

    assert (error.code, str(error)) == ("encoding", f"'{name}' is not a text encoding we know.")


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


def test_it_refuses_binary_content():
    error = refused(b"a,b\n" + bytes(range(256)) * 4)

    assert (error.code, str(error)) == ("binary", "This looks like a binary file, not CSV text.")


def test_it_refuses_a_nul_byte_further_down():
    rows = b"".join(b"%d,x\n" % i for i in range(20_000))
    error = refused(b"a,b\n" + rows + b"1,\x00\n", block_size=8192)

    assert str(error) == ("Line 20,002 contains a NUL byte: this looks like a binary file, not "
                          "CSV text.")


@pytest.mark.parametrize(("head", "advice"), [
    (b"PK\x03\x04rest-of-an-xlsx", "Export the sheet as CSV and upload that."),
    (b"%PDF-1.7\n", "This is a PDF document, not a table."),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "This is a PNG image, not a table."),
])
def test_it_recognises_files_that_are_not_tables(head, advice):
    error = refused(head + b"\x00" * 100, "upload.csv")

    assert error.code == "binary"
    assert advice in str(error)


def test_it_refuses_more_columns_than_the_plan_allows_before_reading_rows():
    stream = CountingStream(b"a,b,c,d,e\n" + b"1,2,3,4,5\n" * 50_000)
    limits = IngestLimits(max_rows=1_000_000, max_columns=4)

    with pytest.raises(IngestError) as caught:
        ingest(stream, filename="wide.csv", limits=limits, block_size=4096)

    assert str(caught.value) == "The file has 5 columns, more than 4, the limit of your plan."
    assert caught.value.code == "too_many_columns"
    assert stream.bytes_read < 100_000


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


@pytest.mark.parametrize("data", [b"", b"   \n\n  \r\n"])
def test_it_refuses_an_empty_file(data):
    error = refused(data)

    assert (error.code, str(error)) == ("empty", "The file is empty.")


@pytest.mark.parametrize("data", [b"id,name\n", b"id,name", b"id,name\n\n\n"])
def test_it_refuses_a_header_without_rows(data):
    error = refused(data)

    assert (error.code, str(error)) == ("empty", "The file has a header but no data rows.")


def test_it_refuses_a_file_type_it_cannot_read():
    error = refused(b'{"a": 1}', "data.json")

    assert str(error) == ("Files ending in '.json' are not supported: upload CSV, TSV or Parquet "
                          "(gzip-compressed CSV or TSV too).")
    assert error.code == "format"


def test_it_refuses_a_damaged_gzip_file():
    packed = gzip.compress(b"id,name\n" + b"1,a\n" * 10_000)

    error = refused(packed[: len(packed) // 2], "data.csv.gz")

    assert error.code == "format"
    assert "gzip" in str(error)


def test_it_has_stopped_reading_the_upload_when_it_returns():
    class ClosingStream(CountingStream):
        closed_reads = 0

        def read(self, size: int = -1) -> bytes:
            if self.closed:
                self.closed_reads += 1
            return super().read(size)

    stream = ClosingStream(b"id\n" + b"".join(b"%d\n" % i for i in range(300_000)))

    with pytest.raises(IngestError):
        ingest(stream, filename="a.csv", limits=IngestLimits(max_rows=10, max_columns=5),
               block_size=4096)
    stream.close()
    threading.Event().wait(0.05)

    assert stream.closed_reads == 0


def test_it_leaves_no_thread_behind_after_a_failure():
    before = threading.active_count()
    rows = b"".join(b"%d,%d\n" % (i, i) for i in range(50_000))

    refused(b"a,b\n" + rows + b"1\n", block_size=4096)

    assert threading.active_count() == before


# -- type inference


def test_it_infers_each_type():
    frame = pd.DataFrame({
        "amount": [1.5, 2, -3, 4e3, 5] * 10,
        "plan": ["free", "team", "team", "enterprise", "free"] * 10,
        "active": ["yes", "no", "YES", "No", "y"] * 10,
        "signed_up": ["2024-01-02", "2024-02-03T10:00:00", "2024-03-04 11:30:00.5",
                      "2023-12-31", "2024-01-01"] * 10,
        "note": [f"free text number {i}" for i in range(50)],
    })

    result = run(csv_bytes(frame))

    assert [(c.name, c.type) for c in result.columns] == [
        ("amount", "number"), ("plan", "category"), ("active", "boolean"),
        ("signed_up", "datetime"), ("note", "text")]


def test_a_column_of_zeros_and_ones_is_a_number_until_a_word_appears():
    result = run(b"flag,answer\n0,1\n1,0\n1,yes\n0,no\n")

    assert column(result, "flag").type == "number"
    assert column(result, "flag").mean == 0.5
    answer = column(result, "answer")
    assert answer.type == "boolean"
    assert answer.top == [("true", 2), ("false", 2)]


def test_datetimes_with_utc_offsets_are_datetimes_in_utc():
    result = run(b"at\n2024-01-02T03:04:05Z\n2024-01-02T05:04:05+02:00\n2024-01-03T00:00:00Z\n")

    at = column(result, "at")
    assert at.type == "datetime"
    assert (at.min, at.max) == ("2024-01-02T03:04:05+00:00", "2024-01-03T00:00:00+00:00")


def test_a_column_mixing_dates_and_words_is_text_or_category():
    result = run(b"when\n2024-01-01\nsoon\n2024-01-02\nlater\n")

    assert column(result, "when").type == "text"


def test_numbers_are_strict_like_pandas():
    result = run(b'a,b,c\n"1,000",1 000,inf\n2,3,4\n')

    assert [c.type for c in result.columns] == ["text", "text", "text"]


def test_missing_values_are_the_documented_tokens_in_any_case():
    result = run(b"x,y\n1,a\n,b\nNA,c\nn/a,d\nNaN,e\nNULL,f\nnone,g\n#N/A,h\n2,i\n")

    x = column(result, "x")
    assert (x.type, x.missing, x.distinct, x.min, x.max) == ("number", 7, 2, 1.0, 2.0)
    assert result.preview[1] == [None, "b"]


def test_a_column_with_no_values_is_text():
    result = run(b"a,b\n1,\n2,\n")

    assert (column(result, "b").type, column(result, "b").missing) == ("text", 2)


# -- statistics against pandas


def test_statistics_match_pandas_on_a_small_table():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "x": np.round(rng.normal(50, 10, 500), 3),
        "n": rng.integers(0, 40, 500),
        "c": rng.choice(["red", "green", "blue", "grey"], 500, p=[0.4, 0.3, 0.2, 0.1]),
    })
    frame.loc[rng.choice(500, 37, replace=False), "x"] = np.nan
    frame.loc[rng.choice(500, 11, replace=False), "c"] = None

    result = run(csv_bytes(frame))

    expected = pd.read_csv(io.BytesIO(csv_bytes(frame)))
    for name in ("x", "n"):
        profile, series = column(result, name), expected[name]
        assert profile.missing == series.isna().sum()
        assert profile.distinct == series.nunique()
        assert profile.min == series.min() and profile.max == series.max()
        assert math.isclose(profile.mean, series.mean(), rel_tol=1e-12)
        assert math.isclose(profile.std, series.std(), rel_tol=1e-9)
    c = column(result, "c")
    assert (c.missing, c.distinct) == (11, 4)
    assert c.top == list(expected["c"].value_counts().items())
    assert not c.top_is_estimate


def test_histogram_counts_add_up_to_the_values_present():
    rng = np.random.default_rng(3)
    values = rng.exponential(5, 60_000)
    data = b"v\n" + b"\n".join(b"%.4f" % v for v in values) + b"\nNA\n\n"

    v = column(run(data, block_size=64 * 1024), "v")

    assert len(v.histogram) == 20
    assert sum(b["count"] for b in v.histogram) == 60_000
    assert v.histogram[0]["start"] == v.min and v.histogram[-1]["end"] == v.max
    assert v.histogram[0]["count"] > v.histogram[-1]["count"] > 0
    assert v.missing == 1


def test_small_histograms_are_exact():
    result = run(b"v\n" + b"".join(b"%d\n" % i for i in range(100)))

    counts = [b["count"] for b in column(result, "v").histogram]
    assert counts == [5] * 20


def test_datetime_histograms_have_iso_edges():
    result = run(b"d\n2024-01-01\n2024-01-11\n2024-01-21\n")

    d = column(result, "d")
    assert (d.min, d.max, d.mean) == ("2024-01-01", "2024-01-21", "2024-01-11T00:00:00")
    assert d.histogram[0]["start"] == "2024-01-01T00:00:00"
    assert sum(b["count"] for b in d.histogram) == 3


def test_top_categories_are_counted_exactly():
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + [f"rare{i}" for i in range(12)]
    result = run(("k\n" + "\n".join(values) + "\n").encode())

    k = column(result, "k")
    assert k.top[:3] == [("a", 50), ("b", 30), ("c", 20)]
    assert len(k.top) == 10
    assert k.histogram[0] == {"value": "a", "count": 50}


def test_many_distinct_values_are_estimated():
    data = b"id,g\n" + b"".join(b"%d,%d\n" % (i, i % 7) for i in range(300_000))

    result = run(data, block_size=256 * 1024)

    ident = column(result, "id")
    assert ident.distinct_is_estimate
    assert abs(ident.distinct - 300_000) < 300_000 * 0.03
    assert (column(result, "g").distinct, column(result, "g").distinct_is_estimate) == (7, False)


def test_frequent_values_of_a_big_text_column_are_found():
    rng = np.random.default_rng(1)
    words = [f"word{i}" for i in rng.integers(0, 10**6, 100_000)]
    words[7::10] = ["common"] * 10_000  # never the first value of a block
    data = ("w\n" + "\n".join(words) + "\n").encode()

    w = column(run(data, block_size=64 * 1024), "w")

    assert w.type == "text"
    assert w.top[0][0] == "common"
    assert 9_000 <= w.top[0][1] <= 10_000
    assert w.top_is_estimate


# -- CSV dialects and encodings


def test_quoted_fields_keep_their_commas_quotes_and_line_breaks():
    data = b'id,comment\n1,"a, b"\n2,"said ""hi"""\n3,"two\nlines"\n4,plain\n'

    result = run(data)

    assert result.rows == 4
    assert [row[1] for row in result.preview] == ["a, b", 'said "hi"', "two\nlines", "plain"]


def test_a_byte_order_mark_is_skipped():
    result = run(b"\xef\xbb\xbfid,name\n1,a\n")

    assert [c.name for c in result.columns] == ["id", "name"]


def test_crlf_line_endings():
    result = run(b"id,name\r\n1,a\r\n2,b\r\n")

    assert result.preview == [["1", "a"], ["2", "b"]]
    assert [c.name for c in result.columns] == ["id", "name"]


def test_crlf_ragged_row_is_named_by_line():
    error = refused(b"id,name\r\n1,a\r\n2\r\n")

    assert str(error) == "Line 3 has 1 field but the header has 2 columns."


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


def test_gzip_compressed_csv():
    result = run(gzip.compress(b"id,name\n1,a\n2,b\n"), "data.csv.gz")

    assert (result.format, result.rows) == ("csv.gz", 2)


def test_tsv_by_extension_and_by_sniffing():
    data = b"id\tname\n1\ta, b\n2\tc\n"

    assert run(data, "data.tsv").format == "tsv"
    assert run(data, "data.txt").format == "tsv"
    assert run(data, "data.txt").preview[0] == ["1", "a, b"]


def test_a_character_split_across_blocks_is_read_whole():
    # With 7-byte blocks the first one ends between the two bytes of "é".
    data = "name\naé\nbé\nçc\n".encode()

    result = run(data, block_size=7)

    assert [row[0] for row in result.preview] == ["aé", "bé", "çc"]


def test_a_column_that_changes_type_between_blocks_is_reclassified():
    rows = [str(i % 50) for i in range(3_000)] + ["n/a (see notes)"] + ["7"] * 10
    data = ("code\n" + "\n".join(rows) + "\n").encode()

    result = run(data, block_size=1024)

    code = column(result, "code")
    assert code.type == "category"
    assert code.distinct == 51  # "7" counted once, before and after the change
    assert code.min is None
    assert dict(code.top)["7"] == 60 + 10


def test_a_very_long_value_does_not_change_how_short_ones_are_counted():
    first = [b"a", b"b", b"x" * 70_000] + [b"a", b"b"] * 10
    later = [b"a", b"b"] * 20_000
    data = b"v\n" + b"\n".join(first + later) + b"\n"

    v = column(run(data, block_size=128 * 1024), "v")

    assert (v.distinct, v.distinct_is_estimate) == (3, False)
    assert v.top[:2] == [("a", 20_011), ("b", 20_011)]


def test_a_number_column_with_a_late_word_becomes_text():
    data = b"v\n" + b"".join(b"%d.5\n" % i for i in range(5_000)) + b"oops\n"

    v = column(run(data, block_size=2048), "v")

    assert (v.type, v.distinct) == ("text", 5_001)


# -- Parquet


def test_parquet_columns_keep_their_types():
    table = pa.table({
        "n": pa.array([1, 2, None, 4], pa.int32()),
        "f": pa.array([0.5, float("nan"), 2.5, None]),
        "flag": pa.array([True, False, True, None]),
        "when": pa.array([1_700_000_000_000_000, None, 1_700_086_400_000_000, 0],
                         pa.timestamp("us", "UTC")),
        "label": pa.array(["x", "y", "x", "NA"]).dictionary_encode(),
        "numbers_as_text": pa.array(["1", "2", "3", "4"]),
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer)

    result = run(buffer.getvalue(), "data.parquet")

    assert (result.format, result.rows) == ("parquet", 4)
    types = {c.name: (c.type, c.missing) for c in result.columns}
    assert types == {"n": ("number", 1), "f": ("number", 2), "flag": ("boolean", 1),
                     "when": ("datetime", 1), "label": ("category", 1),
                     "numbers_as_text": ("text", 0)}
    assert column(result, "n").mean == pytest.approx(7 / 3)
    assert column(result, "flag").top == [("true", 2), ("false", 1)]
    assert column(result, "when").min == "1970-01-01T00:00:00+00:00"
    assert result.preview[0] == ["1", "0.5", "true", "2023-11-14T22:13:20+00:00", "x", "1"]


def test_parquet_nested_columns_are_refused():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"tags": [["a"], ["b", "c"]]}), buffer)

    error = refused(buffer.getvalue(), "data.parquet")

    assert error.code == "format"
    assert str(error).startswith("Column 'tags' holds nested values")


def test_parquet_row_limit_is_checked_from_the_metadata():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": list(range(50))}), buffer)

    error = refused(buffer.getvalue(), "data.parquet",
                    limits=IngestLimits(max_rows=10, max_columns=5))

    assert str(error) == "The file has more than 10 rows, the limit of your plan."


def test_a_file_named_parquet_that_is_not_one_is_refused():
    error = refused(b"id,name\n1,a\n", "data.parquet")

    assert (error.code, str(error)) == (
        "format", "The file name ends in .parquet but the content is not a Parquet file.")


# -- shapes


def test_the_result_is_json_serialisable_with_the_api_keys():
    result = run(b"id,plan,at\n1,free,2024-01-01\n2,team,2024-01-02\n3,free,2024-01-03\n")

    data = json.loads(json.dumps(result.to_dict()))

    assert data["rows"] == 3
    assert data["preview"] == {"columns": ["id", "plan", "at"],
                               "rows": [["1", "free", "2024-01-01"], ["2", "team", "2024-01-02"],
                                        ["3", "free", "2024-01-03"]]}
    plan = data["columns"][1]
    assert {"name", "type", "missing", "distinct", "top", "histogram"} <= plan.keys()
    assert plan["top"][0] == {"value": "free", "count": 2}


def test_the_preview_has_the_first_rows_only():
    data = b"i\n" + b"".join(b"%d\n" % i for i in range(100))

    result = run(data, preview_rows=5, block_size=64)

    assert result.preview == [["0"], ["1"], ["2"], ["3"], ["4"]]


@pytest.mark.parametrize(("filename", "head", "expected"), [
    ("a.csv", b"x,y\n", "csv"),
    ("a.TSV", b"x\ty\n", "tsv"),
    ("a.tab", b"x\ty\n", "tsv"),
    ("a.txt", b"x,y\n", "csv"),
    ("a.csv.gz", gzip.compress(b"x,y\n"), "csv.gz"),
    ("a.gz", gzip.compress(b"x\ty\n"), "tsv.gz"),
    ("anything", b"PAR1\x15\x04", "parquet"),
])
def test_detect_format(filename, head, expected):
    assert detect_format(filename, head) == expected


# -- the same answers whichever thread worked a block out


def mixed_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({
        "id": np.arange(rows),
        "age": rng.integers(-5, 90, rows),
        "price": np.round(rng.lognormal(3, 1, rows), 2),
        "plan": rng.choice(["free", "team", "enterprise"], rows),
        "joined": (np.datetime64("2020-01-01") + rng.integers(0, 900, rows)).astype(str),
        "note": [f"note {i % 997} {'x' * (i % 7)}" for i in range(rows)],
    })
    frame.loc[rng.choice(rows, rows // 20, replace=False), "price"] = np.nan
    return frame


def test_the_same_file_gives_the_same_profile_every_time():
    data = csv_bytes(mixed_frame(30_000))

    profiles = [run(data, block_size=16 * 1024).to_dict() for _ in range(3)]

    assert profiles[0] == profiles[1] == profiles[2]


def test_statistics_match_pandas_over_many_blocks():
    frame = mixed_frame(30_000)
    data = csv_bytes(frame)

    result = run(data, block_size=8 * 1024)

    expected = pd.read_csv(io.BytesIO(data))
    for name in ("id", "age", "price"):
        profile, series = column(result, name), expected[name]
        assert (profile.type, profile.missing) == ("number", series.isna().sum())
        assert (profile.distinct, profile.distinct_is_estimate) == (series.nunique(), False)
        assert (profile.min, profile.max) == (series.min(), series.max())
        assert math.isclose(profile.mean, series.mean(), rel_tol=1e-12)
        assert math.isclose(profile.std, series.std(), rel_tol=1e-9)
    joined = column(result, "joined")
    assert (joined.type, joined.distinct) == ("datetime", expected["joined"].nunique())
    assert (joined.min, joined.max) == (expected["joined"].min(), expected["joined"].max())
    plan = column(result, "plan")
    assert plan.top == list(expected["plan"].value_counts().items())
    assert column(result, "note").distinct == expected["note"].nunique()


def test_a_column_that_turns_to_text_late_still_counts_its_numbers_by_value():
    rows = [str(i % 30) for i in range(20_000)] + ["n/a (see notes)"] + ["7.0"] * 3_000
    data = ("code\n" + "\n".join(rows) + "\n").encode()

    code = column(run(data, block_size=2048), "code")

    assert (code.type, code.distinct, code.min) == ("category", 31, None)
    assert dict(code.top)["7"] == rows.count("7") + 3_000


def test_whole_numbers_written_differently_are_one_value():
    data = b"n\n1\n1.0\n01\n-0\n0\n-3\n"

    n = column(run(data), "n")

    assert (n.type, n.distinct) == ("number", pd.read_csv(io.BytesIO(data))["n"].nunique())


def test_long_values_are_cut_to_200_characters_in_the_top_values():
    long = "é" * 500
    data = ("v\n" + "\n".join([long] * 30 + [f"short {i}" for i in range(20)]) + "\n").encode()

    v = column(run(data), "v")

    assert v.top[0] == ("é" * 200, 30)
