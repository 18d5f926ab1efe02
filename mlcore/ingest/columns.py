"""Everything learnt about one column, updated a block at a time, and its profile at the end."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .blocks import Plan, StringBlock, ValueBlock, number_block, prepare, string_block, time_block
from .errors import IngestError
from .header import NUMBER_RE, missing_values
from .memory import pool
from .results import ColumnProfile
from .summaries import (
    DISTINCT_EXACT_CAP,
    SAMPLE_SIZE,
    TOP_CAPACITY,
    Distinct,
    Moments,
    Reservoir,
    TopK,
)
from .values import ISO_RE, as_numbers, as_times, first_value, format_number, iso, non_null

STATE_BUDGET_BYTES = 48 * 1024 * 1024  # summaries of all columns together, at most
CATEGORY_MAX_DISTINCT = 1000
CATEGORY_MIN_LIMIT = 20
CATEGORY_SHARE = 0.05
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class Budget:
    """Per-column summary sizes: full size for ordinary tables, smaller for very wide ones.

    A column's summaries take up to about 24 bytes per distinct hash tracked, 32 per sampled
    value and 256 per top-value counter; a third of STATE_BUDGET_BYTES goes to each.
    """

    distinct_cap: int
    sample_size: int
    top_capacity: int

    @classmethod
    def for_columns(cls, count: int) -> Budget:
        share = STATE_BUDGET_BYTES // 3 // max(count, 1)
        return cls(distinct_cap=min(DISTINCT_EXACT_CAP, max(1024, share // 24)),
                   sample_size=min(SAMPLE_SIZE, max(256, share // 32)),
                   top_capacity=min(TOP_CAPACITY, max(64, share // 256)))


class Column:
    """Everything learnt about one column so far, updated block by block.

    ``kind`` is decided by the first block with a value: "number" or "datetime" while every
    value so far parses as one, else "string"; a number/datetime column that meets a value of
    another kind becomes "string" for good (``mixed``). ``boolean`` stays true while every value
    is a boolean token (numbers: 0 or 1).
    """

    def __init__(self, name: str, *, seed: int, budget: Budget, kind: str | None = None,
                 boolean: bool = True) -> None:
        self.name = name
        self.budget = budget
        self.kind = kind
        self.boolean = boolean
        self.tz: str | None = None
        self.mixed = False
        self.missing = 0
        self.values = 0
        self.trues = 0
        self.date_only = True
        self.unique_share = 0.0  # distinct numbers per number, when last measured
        self.moments = Moments()
        self.seed = seed
        self.sample = Reservoir(budget.sample_size)
        self.distinct = Distinct(budget.distinct_cap)
        self.top = TopK(budget.top_capacity)

    # -- input

    def plan(self, index: int) -> Plan:
        """What block number ``index`` needs to know about the column to be worked out on
        another thread.

        Read there while this thread may be changing the column: the kind is set after the
        time zone, and ``add_strings`` checks the plan again.
        """
        kind = self.kind
        return Plan(kind=kind, tz=self.tz, mixed=self.mixed, boolean=self.boolean,
                    counting=self.top.active, dedupe=self.unique_share < 0.5,
                    date_only=self.date_only, bound=self.distinct.bound,
                    threshold=self.sample.threshold, seed=(self.seed, index))

    def add_strings(self, values: pa.Array | pa.ChunkedArray, index: int,
                    block: ValueBlock | StringBlock | None = None) -> None:
        """Block number ``index`` of a CSV column: strings, with missing values already null.

        ``block``: the same block already worked out (see ``blocks.prepare``), if it was.
        """
        self.missing += values.null_count
        if values.null_count == len(values):
            return
        converted = None
        if self.kind is None:
            self.kind, converted = self._first_kind(values)
            block = None
        if block is None or (block.plan.kind, block.plan.tz, block.plan.mixed) != (
                self.kind, self.tz, self.mixed):
            block = prepare(self.plan(index), values, converted)
        if block is None:  # a number or datetime column meets another kind of value
            self._demote()
            block = prepare(self.plan(index), values)
        if isinstance(block, StringBlock):
            self._absorb_strings(block)
        else:
            self._absorb_values(block)

    def add_arrow(self, values: pa.Array, index: int) -> None:
        """Block number ``index`` of a Parquet column, of the type ``kind`` was set from."""
        if pa.types.is_dictionary(values.type):
            values = pc.cast(values, values.type.value_type, memory_pool=pool())
        if self.kind == "number":
            numbers = pc.cast(values, pa.float64(), memory_pool=pool())
            numbers = non_null(numbers).to_numpy(zero_copy_only=False)
            # NaN and infinities are gaps in a float column, and JSON cannot carry them.
            finite = numbers[np.isfinite(numbers)]
            self.missing += len(values) - len(finite)
            if len(finite):
                low, high = float(finite.min()), float(finite.max())
                self._absorb_values(number_block(self.plan(index), finite, low, high))
        elif self.kind == "datetime":
            self.missing += values.null_count
            # safe=False: nanoseconds are truncated to microseconds
            times = pc.cast(values, pa.timestamp("us", self.tz), safe=False, memory_pool=pool())
            times = non_null(times).to_numpy(zero_copy_only=False).view(np.int64)
            if len(times):
                self._absorb_values(time_block(self.plan(index), times))
        elif self.kind == "boolean":
            self.missing += values.null_count
            self.values += len(values) - values.null_count
            self.trues += pc.sum(values).as_py() or 0
        else:
            self._add_parquet_strings(values, index)

    def _add_parquet_strings(self, values: pa.Array, index: int) -> None:
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            try:
                values = pc.cast(values, pa.string(), memory_pool=pool())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise unreadable_column(self.name, values.type)
        missing = pc.is_in(values, value_set=pa.array(missing_values()), memory_pool=pool())
        values = pc.if_else(missing, pa.scalar(None, values.type), values, memory_pool=pool())
        self.missing += values.null_count
        if values.null_count < len(values):
            self._absorb_strings(string_block(self.plan(index), values))

    def _first_kind(self, values: pa.Array) -> tuple[str, object]:
        """The column's kind, and the block converted to it (a failed cast costs a whole block,
        so only the conversion the first value suggests is tried)."""
        first = first_value(values)
        if NUMBER_RE.fullmatch(first):
            numbers = as_numbers(values)
            return ("number", numbers) if numbers is not None else ("string", None)
        if ISO_RE.match(first):
            for tz in (None, "UTC"):
                times = as_times(values, tz)
                if times is not None:
                    self.tz = tz
                    return "datetime", times
        return "string", None

    def _demote(self) -> None:
        """Numbers or datetimes until now, text from here on: their statistics no longer apply."""
        self.top.relabel(self._label)
        self.kind, self.mixed = "string", True
        self.moments, self.sample = Moments(), Reservoir(self.budget.sample_size)

    def _label(self, value: float) -> str:
        return iso(value, self.tz) if self.kind == "datetime" else format_number(value)

    def _absorb_values(self, block: ValueBlock) -> None:
        is_time = self.kind == "datetime"
        self.values += block.count
        self.moments.merge(block.count, block.mean, block.m2, block.low, block.high)
        self.sample.add(*block.sample)
        if is_time:
            self.boolean = False
            self.date_only = self.date_only and block.date_only
        if not self.top.active:
            self.boolean = False
            if block.hashes is None:  # worked out while the column was still counting
                self.distinct.add(block.counted.hashes)
                return
            if block.unique_share is not None:
                self.unique_share = block.unique_share
            self.distinct.add(block.hashes)
            return
        counted = block.counted
        unique = counted.values
        self.distinct.add(counted.hashes)
        self.top.add(counted.hashes, counted.counts, unique)
        if self.boolean:
            self.boolean = bool(np.isin(unique, (0.0, 1.0)).all())
            self.trues += int(counted.counts[unique == 1.0].sum())
        # A number column with many values cannot become a category: stop counting its values.
        if not self.distinct.at_most(CATEGORY_MAX_DISTINCT):
            self.top.stop()

    def _absorb_strings(self, block: StringBlock) -> None:
        counted = block.counted
        total = int(counted.counts.sum())
        self.values += total
        self.distinct.add(counted.hashes)
        if self.boolean:
            self.boolean = block.known
            self.trues += block.trues
        self.top.add(counted.hashes, counted.counts, counted.values)

    # -- output

    def type(self) -> str:
        if self.values == 0:
            return "text"
        if self.kind in ("number", "datetime", "boolean"):
            return self.kind
        if self.boolean:
            return "boolean"
        distinct, estimated = self.distinct.count()
        limit = min(CATEGORY_MAX_DISTINCT, max(CATEGORY_MIN_LIMIT, CATEGORY_SHARE * self.values))
        if not estimated and distinct <= limit and distinct < self.values:
            return "category"
        return "text"

    def profile(self) -> ColumnProfile:
        kind = self.type()
        result = ColumnProfile(name=self.name, type=kind, missing=self.missing, distinct=0)
        if kind == "boolean":
            sides = [("true", self.trues), ("false", self.values - self.trues)]
            result.top = sorted((s for s in sides if s[1]), key=lambda s: -s[1])
            result.distinct = len(result.top)
        else:
            result.distinct, result.distinct_is_estimate = self.distinct.count()
        if kind == "number":
            self._number_stats(result)
        elif kind == "datetime":
            self._time_stats(result)
        elif kind in ("category", "text"):
            result.top = self.top.top(self._label)
            result.top_is_estimate = self.top.pruned or not self.top.complete
        if kind not in ("number", "datetime"):
            result.histogram = [{"value": value, "count": count} for value, count in result.top]
        return result

    def _number_stats(self, result: ColumnProfile) -> None:
        m = self.moments
        result.min, result.max, result.mean, result.std = m.low, m.high, m.mean, m.std()
        counts = histogram_counts(self.sample.sample(), m.low, m.high, m.n)
        edges = bin_edges(m.low, m.high, len(counts))
        result.histogram = [{"start": float(edges[i]), "end": float(edges[i + 1]), "count": c}
                            for i, c in enumerate(counts)]

    def _time_stats(self, result: ColumnProfile) -> None:
        m = self.moments
        date_only = self.date_only and not self.tz
        result.min = iso(m.low, self.tz, date_only=date_only)
        result.max = iso(m.high, self.tz, date_only=date_only)
        result.mean = iso(round(m.mean / 1e6) * 1e6, self.tz)
        counts = histogram_counts(self.sample.sample(), m.low, m.high, m.n)
        edges = bin_edges(m.low, m.high, len(counts))
        result.histogram = [
            {"start": iso(edges[i], self.tz), "end": iso(edges[i + 1], self.tz), "count": c}
            for i, c in enumerate(counts)]



def unreadable_column(name: str, arrow_type: pa.DataType) -> IngestError:
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return IngestError(f"Column '{name}' holds binary data, not text.", code="binary",
                           column=name)
    return IngestError(f"Column '{name}' holds values of type {arrow_type}, which cannot be "
                       f"read as text.", code="format", column=name)


def bin_edges(low: float, high: float, bins: int) -> np.ndarray:
    return np.linspace(low, high, bins + 1)


def histogram_counts(sample: np.ndarray, low: float, high: float, total: int) -> list[int]:
    """Counts of HISTOGRAM_BINS equal-width bins; from the sample, scaled to ``total``."""
    if high <= low:
        return [total]
    counts, _ = np.histogram(sample, bins=bin_edges(low, high, HISTOGRAM_BINS))
    if len(sample) == total:
        return counts.tolist()
    expected = counts * (total / counts.sum())
    scaled = np.floor(expected).astype(np.int64)
    # Largest remainders get the rounding, so the bars add up to the real count...
    order = np.argsort(-(expected - scaled), kind="stable")
    scaled[order[: total - int(scaled.sum())]] += 1
    # ...and the bins that hold the min and the max are never shown empty.
    for edge in (0, len(scaled) - 1):
        if scaled[edge] == 0:
            scaled[int(np.argmax(scaled))] -= 1
            scaled[edge] = 1
    return scaled.tolist()
