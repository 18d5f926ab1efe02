"""Feature functions used inside saved pipelines.

They live in their own small module with stable names because a saved model refers to them by
import path (`mlcore.ml.features.datetime_parts`) and the artifact allowlist trusts exactly that
path. Renaming or moving one breaks every stored model that uses it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DATETIME_PARTS = ("year", "month", "day", "weekday", "hour")
_ACCESSORS = {"year": "year", "month": "month", "day": "day", "weekday": "day_of_week",
              "hour": "hour"}


def datetime_parts(X) -> np.ndarray:
    """Year, month, day, weekday and hour of each date column, as floats (NaN when missing).

    Models cannot use a timestamp directly; its calendar parts carry the seasonality.
    """
    frame = pd.DataFrame(X)
    parts = []
    for name in frame.columns:
        stamps = pd.to_datetime(frame[name], errors="coerce")
        parts.extend(getattr(stamps.dt, _ACCESSORS[part]) for part in DATETIME_PARTS)
    if not parts:
        return np.empty((len(frame), 0))
    return np.column_stack([part.to_numpy(dtype=float, na_value=np.nan) for part in parts])


def datetime_part_names(transformer, input_features) -> np.ndarray:
    """Output names for `FunctionTransformer(feature_names_out=...)`: `<column>_<part>`."""
    return np.array([f"{name}_{part}" for name in input_features for part in DATETIME_PARTS],
                    dtype=object)
