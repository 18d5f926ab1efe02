"""Type inference, also when a column changes kind between blocks (mlcore/ingest/columns.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import pandas as pd

from tests.mlcore.ingest.conftest import column, csv_bytes, run


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


def test_a_column_mixing_dates_and_words_is_text_or_category():
    result = run(b"when\n2024-01-01\nsoon\n2024-01-02\nlater\n")

    assert column(result, "when").type == "text"


def test_a_column_with_no_values_is_text():
    result = run(b"a,b\n1,\n2,\n")

    assert (column(result, "b").type, column(result, "b").missing) == ("text", 2)


def test_a_column_that_changes_type_between_blocks_is_reclassified():
    rows = [str(i % 50) for i in range(3_000)] + ["n/a (see notes)"] + ["7"] * 10
    data = ("code\n" + "\n".join(rows) + "\n").encode()

    result = run(data, block_size=1024)

    code = column(result, "code")
    assert code.type == "category"
    assert code.distinct == 51  # "7" counted once, before and after the change
    assert code.min is None
    assert dict(code.top)["7"] == 60 + 10


def test_a_number_column_with_a_late_word_becomes_text():
    data = b"v\n" + b"".join(b"%d.5\n" % i for i in range(5_000)) + b"oops\n"

    v = column(run(data, block_size=2048), "v")

    assert (v.type, v.distinct) == ("text", 5_001)


def test_a_column_that_turns_to_text_late_still_counts_its_numbers_by_value():
    rows = [str(i % 30) for i in range(20_000)] + ["n/a (see notes)"] + ["7.0"] * 3_000
    data = ("code\n" + "\n".join(rows) + "\n").encode()

    code = column(run(data, block_size=2048), "code")

    assert (code.type, code.distinct, code.min) == ("category", 31, None)
    assert dict(code.top)["7"] == rows.count("7") + 3_000
