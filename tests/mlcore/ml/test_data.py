"""Reading files by the profile's types: same values from CSV, TSV, gzip and Parquet."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest

from mlcore.ml import data
from mlcore.ml.errors import DataError, MissingColumnsError

TYPES = {"amount": "number", "city": "category", "member": "boolean", "day": "datetime"}
CSV = (b"amount,city,member,day,junk\n"
       b"1.5,Paris,yes,2024-01-02,x\n"
       b" 2 ,NA,No,2024-01-03T04:05:06Z,\"a,b\"\n"
       b"abc,null,maybe,not a date,\n"
       b"N/A,Lyon,TRUE,2024-02-29 10:00:00,\n")


def test_values_are_parsed_by_the_profile_types():
    frame = data.read_frame(io.BytesIO(CSV), "csv", list(TYPES), TYPES)
    assert frame["amount"].tolist()[:2] == [1.5, 2.0]
    assert np.isnan(frame["amount"][2]) and np.isnan(frame["amount"][3])
    assert frame["city"].tolist() == ["Paris", "", "", "Lyon"]
    assert frame["member"].tolist() == ["true", "false", "", "true"]
    assert frame["day"].tolist()[:2] == [pd.Timestamp("2024-01-02"),
                                         pd.Timestamp("2024-01-03 04:05:06")]
    assert pd.isna(frame["day"][2])
    assert str(frame["day"].dtype) == "datetime64[us]"


def test_only_the_requested_columns_are_read():
    frame = data.read_frame(io.BytesIO(CSV), "csv", ["city"], TYPES)
    assert list(frame.columns) == ["city"]


def test_missing_markers_are_matched_whatever_their_case():
    payload = b"x\n1\nna\nNULL\nnone\nNaN\nn/a\n\n2\n"
    frame = data.read_frame(io.BytesIO(payload), "csv", ["x"], {"x": "number"})
    assert frame["x"].isna().tolist() == [False, True, True, True, True, True, False]


def test_tsv_gzip_and_parquet_give_the_same_frame():
    expected = data.read_frame(io.BytesIO(CSV), "csv", list(TYPES), TYPES)
    tsv = CSV.replace(b",", b"\t").replace(b'"a\tb"', b"ab")
    parquet = io.BytesIO()
    pd.read_csv(io.BytesIO(CSV), dtype=str, keep_default_na=False).to_parquet(parquet)
    sources = [(tsv, "tsv"), (gzip.compress(CSV, mtime=0), "csv.gz"), (gzip.compress(tsv, mtime=0), "tsv.gz"),
               (parquet.getvalue(), "parquet")]
    for payload, fmt in sources:
        frame = data.read_frame(io.BytesIO(payload), fmt, list(TYPES), TYPES)
        pd.testing.assert_frame_equal(frame, expected)


def test_native_parquet_types_are_converted_too():
    source = pd.DataFrame({"amount": [1, None, 3], "city": ["Paris", None, "NA"],
                           "member": [True, False, None],
                           "day": pd.to_datetime(["2024-01-01 12:00", None, "2024-02-02 00:00"])
                           .tz_localize("Europe/Paris")})
    buffer = io.BytesIO()
    source.to_parquet(buffer)
    frame = data.read_frame(buffer, "parquet", list(TYPES), TYPES)
    assert frame["city"].tolist() == ["Paris", "", ""]
    assert frame["member"].tolist() == ["true", "false", ""]
    assert frame["day"][0] == pd.Timestamp("2024-01-01 11:00")


def test_missing_columns_are_named_before_reading():
    with pytest.raises(MissingColumnsError) as caught:
        data.read_frame(io.BytesIO(CSV), "csv", ["amount", "zip", "age"],
                        {"amount": "number", "zip": "category", "age": "number"})
    assert caught.value.columns == ["zip", "age"]
    assert str(caught.value) == "The following columns are missing from the input: 'zip', 'age'."


def test_chunks_carry_one_based_rows_and_unconvertible_cells():
    chunks = list(data.iter_frames(io.BytesIO(CSV), "csv", list(TYPES), TYPES, chunk_rows=3))
    assert [frame.index.tolist() for frame, _ in chunks] == [[1, 2, 3], [4]]
    first_bad = chunks[0][1]
    assert first_bad["amount"].tolist() == [False, False, True]
    assert first_bad["member"].tolist() == [False, False, True]
    assert first_bad["day"].tolist() == [False, False, True]
    assert first_bad["city"].tolist() == [False, False, False]


def test_infinite_numbers_count_as_unconvertible():
    frames = list(data.iter_frames(io.BytesIO(b"x\n1\ninf\n-Infinity\n"), "csv", ["x"],
                                   {"x": "number"}))
    assert frames[0][1]["x"].tolist() == [False, True, True]


@pytest.mark.parametrize("fmt", ["csv", "csv.gz"])
def test_a_file_in_a_declared_encoding_reads_as_its_text(fmt):
    raw = "année,ville\n2024,Montréal\n2025,Québec\n".encode("cp1252")
    raw = gzip.compress(raw, mtime=0) if fmt == "csv.gz" else raw
    types = {"année": "number", "ville": "category"}
    assert data.read_columns(io.BytesIO(raw), fmt, "cp1252") == ["année", "ville"]
    frame = data.read_frame(io.BytesIO(raw), fmt, list(types), types, encoding="cp1252")
    assert frame["ville"].tolist() == ["Montréal", "Québec"]
    assert frame["année"].tolist() == [2024.0, 2025.0]


def test_the_header_alone_gives_the_column_names():
    assert data.read_columns(io.BytesIO(CSV), "csv") == ["amount", "city", "member", "day",
                                                         "junk"]


def test_a_damaged_file_is_a_plain_data_error():
    with pytest.raises(DataError, match="could not be read"):
        data.read_columns(io.BytesIO(b"\x00garbage"), "parquet")


def test_an_unknown_format_is_refused():
    with pytest.raises(DataError, match="cannot be read"):
        data.read_frame(io.BytesIO(CSV), "xlsx", ["amount"], TYPES)


def test_the_callers_stream_stays_open():
    source = io.BytesIO(CSV)
    data.read_frame(source, "csv", ["amount"], TYPES)
    assert not source.closed


def test_the_profilers_missing_markers_apply_here_too():
    frame = data.read_frame(io.BytesIO(b"city\nParis\n#N/A\n#n/a\n"), "csv", ["city"],
                            {"city": "category"})
    assert frame["city"].tolist() == ["Paris", "", ""]


def test_utf16_files_with_a_byte_order_mark_are_read():
    payload = "amount,city\r\n1,Zürich\r\n".encode("utf-16")
    frame = data.read_frame(io.BytesIO(payload), "csv", ["amount", "city"], TYPES)
    assert frame.values.tolist() == [[1.0, "Zürich"]]


def test_lines_ending_in_a_lone_carriage_return_are_read():
    frame = data.read_frame(io.BytesIO(b"amount,city\r1,Nice\r2,Metz\r"), "csv",
                            ["amount", "city"], TYPES)
    assert frame["city"].tolist() == ["Nice", "Metz"]


def test_bytes_that_are_not_utf8_are_a_plain_data_error():
    with pytest.raises(DataError, match="could not be read"):
        data.read_frame(io.BytesIO(b"amount,city\n1,Z\xfcrich\n"), "csv", ["amount", "city"],
                        TYPES)


def test_nan_and_infinity_stored_as_parquet_floats_are_missing_not_errors():
    buffer = io.BytesIO()
    pd.DataFrame({"amount": [1.0, np.nan, np.inf]}).to_parquet(buffer)
    (frame, bad), = data.iter_frames(buffer, "parquet", ["amount"], TYPES)
    assert frame["amount"].isna().tolist() == [False, True, True]
    assert bad["amount"].tolist() == [False, False, False]


def test_a_parquet_value_the_upload_would_refuse_is_a_data_error_before_decoding():
    buffer = io.BytesIO()
    pd.DataFrame({"city": ["Paris", "x" * (9 * 1024 * 1024)]}).to_parquet(buffer)

    with pytest.raises(DataError, match="no Parquet page may decode to more than 8 MB"):
        next(data.iter_tables(buffer, "parquet", ["city"]))


def test_parquet_chunks_are_smaller_where_dictionary_values_are_long():
    buffer = io.BytesIO()
    pd.DataFrame({"city": ["y" * 100_000] * 200}).to_parquet(buffer)

    sizes = [len(table) for table in data.iter_tables(buffer, "parquet", ["city"])]

    assert sizes == [83] * 2 + [34]
