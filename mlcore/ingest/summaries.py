"""Mergeable summaries of a column: distinct count, most frequent values, sample, moments.

Each takes a block's worth at a time and keeps a bounded state, whatever the number of rows. A
block costs a handful of numpy or pyarrow calls and no loop over values in Python: per-call
costs, not per-value ones, are what a block of ten thousand values mostly pays for.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .memory import pool

DISTINCT_EXACT_CAP = 65_536
SKETCH_SIZE = 16_384
TOP_CAPACITY = 1024
TOP_SIZE = 10
LABEL_MAX_CHARS = 200
SAMPLE_SIZE = 10_000

Examples = np.ndarray | pa.Array  # one value per key: numbers, instants or strings


class Distinct:
    """Distinct count from 64-bit hashes: exact up to ``cap`` values, then estimated.

    Up to ``cap`` distinct values, all their hashes are kept and the count is exact. Beyond, only
    the SKETCH_SIZE smallest are (a "k minimum values" sketch): if the k-th smallest hash is h,
    there are about (k - 1) * 2**64 / h distinct values (relative error about 1/sqrt(k), 0.8%).
    Only hashes below h can still matter, so a block then costs one comparison per value.
    Hashes wait in a list and are merged in bulk, because per-call costs dominate small blocks.
    """

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._limit = cap  # becomes SKETCH_SIZE once the count is an estimate
        self._kept = np.empty(0, np.uint64)  # distinct, sorted
        self._pending: list[np.ndarray] = []
        self._pending_size = 0
        self._bound: np.uint64 | None = None  # the cap-th smallest hash, once there are more

    @property
    def bound(self) -> np.uint64 | None:
        """Hashes from here up cannot change the count any more (None while it is exact)."""
        return self._bound

    def add(self, hashes: np.ndarray) -> None:
        if self._bound is not None:
            hashes = hashes[hashes < self._bound]
            if not len(hashes):
                return
        self._pending.append(hashes)
        self._pending_size += len(hashes)
        if self._pending_size > min(self._limit, SKETCH_SIZE):
            self._merge()

    def at_most(self, limit: int) -> bool:
        """Whether there are at most ``limit`` distinct values so far (cheap when far below)."""
        if self._bound is None and len(self._kept) + self._pending_size > limit:
            self._merge()
        return self._bound is None and len(self._kept) + self._pending_size <= limit

    def count(self) -> tuple[int, bool]:
        self._merge()
        if self._bound is None:
            return len(self._kept), False
        return round((self._limit - 1) * 2.0**64 / (float(self._bound) + 1.0)), True

    def _merge(self) -> None:
        """Sorted merge: a hash table over the kept hashes would take several times their size
        (pyarrow's ``unique`` over 100,000 hashes briefly needs 15 MB)."""
        if not self._pending:
            return
        fresh = _sorted_unique(np.concatenate(self._pending))
        self._pending, self._pending_size = [], 0
        if len(self._kept):
            # Most hashes of a repetitive column are known already: merge only the new ones.
            where = np.minimum(np.searchsorted(self._kept, fresh), len(self._kept) - 1)
            fresh = fresh[self._kept[where] != fresh]
            if not len(fresh):
                return
        merged = np.concatenate([self._kept, fresh])
        merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
        merged = _sorted_unique(merged, presorted=True)
        if len(merged) > self._limit:
            self._limit = min(self._cap, SKETCH_SIZE)
            merged = merged[: self._limit].copy()
            self._bound = merged[-1]
        self._kept = merged


def _sorted_unique(values: np.ndarray, *, presorted: bool = False) -> np.ndarray:
    if not presorted:
        values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


class TopK:
    """Most frequent values: exact counts up to ``capacity`` keys, then Misra-Gries.

    Keys are value hashes, each with one example of its value (numbers, instants or strings cut
    to LABEL_MAX_CHARS), turned into labels only for the final top. Misra-Gries summaries merge
    by adding counters and subtracting the (k+1)-th largest, which is also how a block's exact
    counts are cut down to k: every value more frequent than rows / (k + 1) survives, and kept
    counts never exceed the true ones.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys = np.empty(0, np.uint64)
        self.counts = np.empty(0, np.int64)
        self.examples: Examples | None = None
        self.pruned = False
        self._kth = 0
        self.active = True  # tracking stops for number/datetime columns with many values
        self.complete = True

    def stop(self) -> None:
        self.active, self.complete = False, False
        self.keys, self.counts, self.examples = self.keys[:0], self.counts[:0], None

    def relabel(self, label) -> None:
        """Examples as text from now on (a number or datetime column became text)."""
        if self.examples is not None and not isinstance(self.examples, pa.Array):
            self.examples = pa.array([label(v) for v in self.examples.tolist()], pa.string())

    def add(self, hashes: np.ndarray, counts: np.ndarray, examples: Examples) -> None:
        """A block's distinct keys with their counts and an example of each."""
        counts = counts.astype(np.int64, copy=False)
        if len(hashes) > self.capacity:
            kept = np.flatnonzero(self._cut_mask(counts))
            hashes, counts = hashes[kept], counts[kept] - self._kth
            examples = _take(examples, kept)
        if not len(hashes):
            return
        if isinstance(examples, pa.Array):
            examples = pc.utf8_slice_codeunits(examples, 0, LABEL_MAX_CHARS, memory_pool=pool())
        if self.examples is not None:
            examples = _concat(self.examples, examples)
        keys = np.concatenate([self.keys, hashes])
        totals = np.concatenate([self.counts, counts])
        order = np.argsort(keys, kind="stable")  # a key already kept keeps its example
        keys, totals = keys[order], totals[order]
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        self.keys, self.counts, picked = keys[starts], np.add.reduceat(totals, starts), order[starts]
        if len(self.keys) > self.capacity:
            kept = np.flatnonzero(self._cut_mask(self.counts))
            self.keys, self.counts, picked = self.keys[kept], self.counts[kept] - self._kth, \
                picked[kept]
        self.examples = _take(examples, picked)

    def _cut_mask(self, counts: np.ndarray) -> np.ndarray:
        """The counters above the (capacity + 1)-th largest, which is then subtracted."""
        self._kth = _kth_largest(counts, self.capacity + 1)
        self.pruned = True
        return counts > self._kth

    def top(self, label, n: int = TOP_SIZE) -> list[tuple[str, int]]:
        if self.examples is None:
            return []
        values = self.examples.tolist()
        labels = values if isinstance(self.examples, pa.Array) else [label(v) for v in values]
        entries = list(zip(labels, self.counts.tolist(), strict=True))
        return sorted(entries, key=lambda entry: (-entry[1], entry[0]))[:n]


def _take(examples: Examples, where: np.ndarray) -> Examples:
    if isinstance(examples, pa.Array):
        return pc.take(examples, pa.array(where), memory_pool=pool())
    return examples[where]


def _concat(kept: Examples, new: Examples) -> Examples:
    if isinstance(kept, pa.Array) or isinstance(new, pa.Array):
        return pa.concat_arrays([kept, new], memory_pool=pool())
    return np.concatenate([kept, new])


def _kth_largest(counts: np.ndarray, k: int) -> int:
    """The k-th largest count; counting counts is faster than partitioning when they are small."""
    highest = int(counts.max())
    if highest > 4 * len(counts):
        return int(np.partition(counts, len(counts) - k)[len(counts) - k])
    at_least = np.cumsum(np.bincount(counts, minlength=highest + 1)[::-1])[::-1]
    return int(np.flatnonzero(at_least >= k)[-1])


class Reservoir:
    """A uniform sample of ``size`` values: the ones with the smallest random keys.

    Blocks offer candidates (``candidates``): once the sample is full only keys below the
    largest kept one can enter, so a block offers only those. Candidates wait in lists until
    there are half a sample's worth more than the sample, then the smallest keys are kept.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._count = 0
        self.threshold = 1.0  # keys from here up cannot enter any more

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        if not len(keys):
            return
        self._keys.append(keys)
        self._values.append(values)
        self._count += len(keys)
        if self._count > 1.5 * self._size:
            self._compact()

    def sample(self) -> np.ndarray:
        if self._count > self._size:
            self._compact()
        return np.concatenate(self._values) if self._values else np.empty(0)

    def _compact(self) -> None:
        keys, values = np.concatenate(self._keys), np.concatenate(self._values)
        keep = np.argpartition(keys, self._size - 1)[: self._size]
        self._keys, self._values, self._count = [keys[keep]], [values[keep]], self._size
        self.threshold = float(keys[keep].max())


def candidates(values: np.ndarray, threshold: float,
               seed: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A block's values that may enter a sample whose keys are below ``threshold``, with their
    keys. Every value gets a uniform key from a generator seeded with the column and the block,
    whatever the threshold: a block worked out with an older, higher threshold offers more
    candidates with the same keys, so the sample is the same whichever thread drew it, and when.
    """
    column, block = seed
    random = np.random.Generator(np.random.Philox(key=(column << 40) | block))
    keys = random.random(len(values))
    if threshold < 1.0:
        keep = keys < threshold
        keys, values = keys[keep], values[keep]
    return keys, values.astype(np.float64)


class Moments:
    """Count, min, max, mean and sum of squared deviations, merged block by block (Chan et al.)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.low = math.inf
        self.high = -math.inf

    def merge(self, n: int, mean: float, m2: float, low: float, high: float) -> None:
        """A block's count, mean, sum of squared deviations and extremes."""
        if not n:
            return
        self.low, self.high = min(self.low, low), max(self.high, high)
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None
