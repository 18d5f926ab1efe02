"""What a version remembers of its training columns, for people typing a row by hand.

Per feature: for numbers the range seen in the training data and a typical value; for categories
the most frequent values. The "try it" form uses them to warn (never to refuse) about a value the
model never saw, and to fill in a sample row. They come from the dataset's stored profile, so
training reads no extra data; versions trained before they existed have none, and no warning.
"""

from __future__ import annotations

import math
from typing import Any

MAX_VALUES = 20


def training_ranges(profile_columns: list[dict[str, Any]], features: list[str]) -> dict[str, dict]:
    """{feature: {"type": "number", "min", "max", "typical"} | {"type", "values", "typical"}}."""
    by_name = {column["name"]: column for column in profile_columns}
    out = {}
    for name in features:
        column = by_name.get(name)
        if column is None:
            continue
        if column["type"] == "number" and _finite(column.get("min")) and _finite(column.get("max")):
            low, high = float(column["min"]), float(column["max"])
            typical = column.get("mean") if _finite(column.get("mean")) else (low + high) / 2
            whole = low.is_integer() and high.is_integer()
            out[name] = {"type": "number", "min": low, "max": high,
                         "typical": round(float(typical)) if whole else significant(float(typical))}
        elif column.get("top"):
            values = [str(item["value"]) for item in column["top"][:MAX_VALUES]]
            out[name] = {"type": column["type"], "values": values, "typical": values[0]}
    return out


def out_of_range(ranges: dict[str, dict], row: dict[str, Any]) -> dict[str, str]:
    """{feature: warning} for the numbers of `row` outside the range seen in training."""
    warnings = {}
    for name, seen in ranges.items():
        if seen.get("type") != "number" or name not in row:
            continue
        try:
            value = float(row[name])
        except (TypeError, ValueError):
            continue  # not a number: the prediction itself refuses it, naming the column
        if math.isfinite(value) and not seen["min"] <= value <= seen["max"]:
            warnings[name] = (f"Outside the range seen in training ({_show(seen['min'])} to "
                              f"{_show(seen['max'])}): the prediction may be unreliable.")
    return warnings


def significant(value: float, digits: int = 4) -> float:
    """`value` rounded to `digits` significant digits (152.4601593 -> 152.5)."""
    if not math.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _show(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{significant(value):,}"


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
