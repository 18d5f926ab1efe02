"""Small in-memory datasets for the machine-learning core; no database, no files on disk."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

MIXED_TYPES = {"age": "number", "income": "number", "city": "category", "member": "boolean",
               "note": "text", "signup": "datetime"}


def profile_of(frame: pd.DataFrame, types: dict[str, str], top: int = 10) -> list[dict]:
    """What the upload profiler reports for each column (missing, distinct, top counts)."""
    columns = []
    for name, col_type in types.items():
        series = frame[name]
        present = series[series.notna() & (series.astype(str) != "")]
        counts = present.astype(str).value_counts()
        columns.append({"name": name, "type": col_type, "missing": int(len(series) - len(present)),
                        "distinct": int(present.nunique()),
                        "top": [[value, int(count)] for value, count in counts.head(top).items()]})
    return columns


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, dict[str, str]]:
    """sklearn's bundled breast-cancer table: 569 rows, 30 numeric features, target 0/1."""
    bunch = load_breast_cancer(as_frame=True)
    return bunch.frame.copy(), {name: "number" for name in bunch.data.columns}


def _mixed_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, rows).astype(float),
        "income": rng.normal(50_000, 15_000, rows).round(2),
        "city": rng.choice(["Paris", "Lyon", "Nice", "Lille", "Metz", "Brest", "Caen", ""], rows,
                           p=[.3, .2, .15, .1, .1, .07, .05, .03]),
        "member": rng.choice(["true", "false"], rows),
        "note": rng.choice(["new", "returning", "vip"], rows),
        "signup": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, rows),
                                                               unit="D"),
    })
    frame.loc[frame.index % 13 == 0, "income"] = np.nan
    frame["signup"] = frame["signup"].astype("datetime64[us]")
    score = (frame["age"] / 40 + (frame["city"] == "Paris") + (frame["member"] == "true")
             + rng.normal(0, 0.5, rows))
    frame["churn"] = np.where(score > 1.9, "yes", "no")
    frame["spend"] = (frame["age"] * 12 + (frame["city"] == "Lyon") * 300
                      + rng.normal(0, 40, rows)).round(2)
    return frame


@pytest.fixture(scope="session")
def mixed() -> tuple[pd.DataFrame, dict[str, str]]:
    """600 customers with every column type; targets `churn` (yes/no) and `spend` (amount)."""
    return _mixed_frame(600, seed=7), dict(MIXED_TYPES)


@pytest.fixture
def stream():
    return lambda payload: io.BytesIO(payload)
