"""Reading values: strings as numbers or instants, and numbers or instants back as text."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .memory import pool

NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
ISO_PATTERN = r"^\d{4}-\d{2}-\d{2}"
ISO_RE = re.compile(ISO_PATTERN, re.ASCII)
US_PER_DAY = 86_400_000_000
_EPOCH = dt.datetime(1970, 1, 1)


def non_null(values: pa.Array) -> pa.Array:
    return pc.drop_null(values, memory_pool=pool()) if values.null_count else values


def as_numbers(values: pa.Array) -> tuple[np.ndarray, float, float] | None:
    """The values as floats with their min and max, or None if one is not a finite number."""
    try:
        numbers = pc.cast(values, pa.float64(), memory_pool=pool())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    array = non_null(numbers).to_numpy(zero_copy_only=False)
    if not len(array):
        return array, 0.0, 0.0
    # "nan", "inf" and overflowing exponents parse too; the extremes, needed anyway, tell.
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return array, low, high


def as_times(values: pa.Array, tz: str | None) -> np.ndarray | None:
    """Microseconds since 1970 (UTC when ``tz``), or None if any value is not ISO-8601."""
    try:
        times = pc.cast(values, pa.timestamp("us", tz), memory_pool=pool())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return non_null(times).to_numpy(zero_copy_only=False).view(np.int64)


def first_value(values: pa.Array) -> str:
    for i in range(min(len(values), 64)):
        if values[i].is_valid:
            return values[i].as_py()
    return values.drop_null()[0].as_py()


def format_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def iso(us: float, tz: str | None, *, date_only: bool = False) -> str:
    try:
        moment = _EPOCH + dt.timedelta(microseconds=round(us))
    except OverflowError:
        return str(us)
    if date_only:
        return moment.date().isoformat()
    if tz:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat()
