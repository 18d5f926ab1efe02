"""What one block of a column says on its own: values converted, counted, hashed, summed.

Everything here is a pure function of a block and of a few facts about its column (a ``Plan``),
so the parse thread works it out for the next block while the column absorbs the current one
(``Column.add_strings``), which is cheap. The column checks that the plan still holds when it
absorbs the result, and works the block out again if not (a column changed kind meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .hashing import float_hashes, mixed_hashes, string_hashes, time_hashes
from .memory import pool
from .summaries import candidates
from .values import US_PER_DAY, as_numbers, as_times

BOOLEAN_TRUE = ("true", "yes", "t", "y", "1")
BOOLEAN_FALSE = ("false", "no", "f", "n", "0")
_BOOLEAN_TOKENS = pa.array(BOOLEAN_TRUE + BOOLEAN_FALSE)
_TRUE_TOKENS = pa.array(BOOLEAN_TRUE)


@dataclass(frozen=True)
class Plan:
    """What a column was when a block was worked out for it.

    ``kind``, ``tz`` and ``mixed`` must still hold when the block is absorbed. The others only
    ever change one way (a column stops counting, stops being boolean, its sketch bound falls),
    so a block worked out with an older value is still right, if a little more work.
    """

    kind: str | None
    tz: str | None = None
    mixed: bool = False
    boolean: bool = True
    counting: bool = True  # the column still counts how often each value occurs
    dedupe: bool = True  # its values repeat: deduplicate before hashing
    date_only: bool = True
    bound: np.uint64 | None = None  # hashes from here up no longer change the distinct count
    threshold: float = 1.0  # sample keys from here up can no longer enter the sample
    seed: tuple[int, int] = (0, 0)  # the column's seed and the block's number, for the sample


@dataclass
class Counted:
    """A block's distinct values, how often each occurs, and their hashes."""

    values: np.ndarray | pa.Array
    counts: np.ndarray
    hashes: np.ndarray


@dataclass
class ValueBlock:
    """A block of numbers or instants (microseconds), missing values left out."""

    plan: Plan
    count: int
    sample: tuple[np.ndarray, np.ndarray]  # candidates for the sample: keys and values
    low: float
    high: float
    mean: float
    m2: float  # sum of squared deviations from the mean (numbers only)
    counted: Counted | None  # when the plan counts values
    hashes: np.ndarray | None  # otherwise: hashes below the plan's bound
    unique_share: float | None  # distinct values per value, when deduplicated
    date_only: bool = True


@dataclass
class StringBlock:
    plan: Plan
    counted: Counted  # values: the distinct strings
    known: bool  # every value is a boolean token (worked out while the plan is boolean)
    trues: int


def prepare(plan: Plan, values: pa.Array | pa.ChunkedArray,
            converted: object = None) -> ValueBlock | StringBlock | None:
    """The block worked out for ``plan``; None if its values are not all of the plan's kind
    (or the kind is not known yet). ``converted``: the values already converted, if they are."""
    if plan.kind == "number":
        numbers = converted if converted is not None else as_numbers(values)
        return None if numbers is None else number_block(plan, *numbers)
    if plan.kind == "datetime":
        times = converted if converted is not None else as_times(values, plan.tz)
        return None if times is None else time_block(plan, times)
    if plan.kind == "string":
        return string_block(plan, values)
    return None


def number_block(plan: Plan, numbers: np.ndarray, low: float, high: float) -> ValueBlock:
    n = len(numbers)
    mean = float(numbers.sum()) / n if n else 0.0
    centred = numbers - mean
    # einsum sums the products in one pass; np.dot would call BLAS, whose threads cost more
    # than they save here.
    m2 = float(np.einsum("i,i->", centred, centred))
    sample = candidates(numbers, plan.threshold, plan.seed)
    block = ValueBlock(plan, n, sample, low, high, mean, m2, None, None, None)
    if plan.counting:
        block.counted = _small_integer_counts(numbers, low, high)
    if block.counted is None:
        _count_or_hash(block, numbers, float_hashes)
    return block


def _small_integer_counts(numbers: np.ndarray, low: float, high: float) -> Counted | None:
    """Counts of whole numbers over a short range (ages, codes, 0/1 flags) by direct indexing,
    many times cheaper than a hash table of floats; None for other numbers."""
    if not len(numbers) or high - low > 4 * len(numbers) + 1024 or max(-low, high) >= 2.0**53:
        return None
    whole = numbers.astype(np.int64)
    if not np.array_equal(whole, numbers):
        return None
    counts = np.bincount(whole - int(low))
    present = np.flatnonzero(counts)
    unique = (present + int(low)).astype(np.float64)
    return Counted(unique, counts[present], float_hashes(unique))


def time_block(plan: Plan, times: np.ndarray) -> ValueBlock:
    n = len(times)
    low, high = (float(times.min()), float(times.max())) if n else (0.0, 0.0)
    mean = float(times.sum(dtype=np.float64)) / n if n else 0.0
    date_only = plan.date_only and not np.any(times % US_PER_DAY)
    sample = candidates(times, plan.threshold, plan.seed)
    block = ValueBlock(plan, n, sample, low, high, mean, 0.0, None, None, None, date_only)
    _count_or_hash(block, times, time_hashes)
    return block


def _count_or_hash(block: ValueBlock, values: np.ndarray, hasher) -> None:
    """Count each value while the column may still be a category; afterwards only hashes
    matter, deduplicated first when blocks repeat values (dates, small integers): a hash
    table pass then costs less than sorting the repeats later."""
    plan = block.plan
    if plan.counting:
        counted = pc.value_counts(pa.array(values), memory_pool=pool())
        unique = counted.field("values").to_numpy(zero_copy_only=False)
        block.counted = Counted(unique, counted.field("counts").to_numpy(zero_copy_only=False),
                                hasher(unique))
        return
    if plan.dedupe:
        unique = pc.unique(pa.array(values), memory_pool=pool()).to_numpy()
        block.unique_share = len(unique) / max(len(values), 1)
        values = unique
    hashes = hasher(values)
    block.hashes = hashes if plan.bound is None else hashes[hashes < plan.bound]


def string_block(plan: Plan, values: pa.Array | pa.ChunkedArray) -> StringBlock:
    counted = pc.value_counts(values, memory_pool=pool())
    unique, counts = counted.field("values"), counted.field("counts")
    if unique.null_count:
        valid = pc.is_valid(unique, memory_pool=pool())
        unique = pc.filter(unique, valid, memory_pool=pool())
        counts = pc.filter(counts, valid, memory_pool=pool())
    counts_np = counts.to_numpy(zero_copy_only=False)
    hashes = mixed_hashes(unique, plan.tz) if plan.mixed else string_hashes(unique)
    known, trues = False, 0
    if plan.boolean:
        lowered = pc.ascii_lower(unique, memory_pool=pool())
        known_tokens = pc.is_in(lowered, value_set=_BOOLEAN_TOKENS, memory_pool=pool())
        known = bool(pc.all(known_tokens).as_py())
        if known:
            is_true = pc.is_in(lowered, value_set=_TRUE_TOKENS, memory_pool=pool())
            trues = int(counts_np[is_true.to_numpy(zero_copy_only=False)].sum())
    return StringBlock(plan, Counted(unique, counts_np, hashes), known, trues)
