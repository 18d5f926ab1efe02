"""Helpers of the ingest tests (tests/mlcore/ingest/test_<module>.py mirror mlcore/ingest/).

Pure tests: no database, no Django. Files are built in memory; ``block_size`` is made tiny where a
test needs blocks to end in awkward places.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from mlcore.ingest import IngestError, IngestLimits, ingest

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
