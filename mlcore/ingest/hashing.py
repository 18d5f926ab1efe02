"""64-bit hashes of cells, the same for equal values whatever block they are in.

Numbers are hashed by value (``1`` and ``1.0`` are one value), instants by microsecond, other
values by their bytes. Everything here works on whole arrays: a hash per value computed in
Python would cost more than all the rest of the profile.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .memory import pool
from .values import ISO_PATTERN, NUMBER_PATTERN, as_numbers, as_times

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_NUMBER_SALT = np.uint64(0x9E3779B97F4A7C15)
_TIME_SALT = np.uint64(0xD6E8FEB86659FD93)
_LENGTH_SALT = np.uint64(0xA0761D6478BD642F)
_WORD_BASE = 0x100000001B3
_word_powers = np.ones(1, np.uint64)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: every input bit moves every output bit (the sketch
    needs it)."""
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


def float_hashes(values: np.ndarray) -> np.ndarray:
    bits = (values + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0: one value, one hash
    bits ^= _NUMBER_SALT
    return mix64(bits)


def time_hashes(values: np.ndarray) -> np.ndarray:
    return mix64(values.view(np.uint64) ^ _TIME_SALT)


def _powers(count: int) -> np.ndarray:
    """B**j modulo 2**64 for j < count (numpy wraps uint64 arithmetic, which is what we want)."""
    global _word_powers
    powers = _word_powers  # another thread may swap the table meanwhile: use this one
    if len(powers) < count:
        size = max(count, 2 * len(powers))
        powers = np.ones(size, np.uint64)
        np.cumprod(np.full(size - 1, _WORD_BASE, np.uint64), out=powers[1:])
        _word_powers = powers
    return powers[:count]


def _lengths(values: pa.Array) -> np.ndarray:
    large = pa.types.is_large_string(values.type)
    offsets = np.frombuffer(values.buffers()[1], np.int64 if large else np.int32)
    return np.diff(offsets[values.offset: values.offset + len(values) + 1]).astype(np.int64)


def string_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A hash of each (non-null) string's bytes: a polynomial over its 8-byte words, mixed.

    pyarrow pads every string with NUL bytes to one width, in C++; the padded bytes are then a
    matrix of words, and one matrix product gives every polynomial. The length goes into the
    hash, so "a" and "a\\0" differ.
    """
    if isinstance(values, pa.ChunkedArray):
        chunks = [string_hashes(chunk) for chunk in values.chunks if len(chunk)]
        return np.concatenate(chunks) if chunks else np.empty(0, np.uint64)
    if not len(values):
        return np.empty(0, np.uint64)
    lengths = _lengths(values)
    hashes = _polynomial(values, lengths)
    hashes ^= lengths.astype(np.uint64) * _LENGTH_SALT
    return mix64(hashes)


def _polynomial(values: pa.Array, lengths: np.ndarray) -> np.ndarray:
    """Sum of word_j * B**j for each string. Padding to the longest string could cost far more
    than the strings when one is long: those get a width (and a pass) of their own."""
    count, longest = len(values), int(lengths.max())
    width = max(8, -(-longest // 8) * 8)
    if width * count > 2 * int(lengths.sum()) + 8 * count:
        width = max(8, -(-(2 * int(lengths.sum()) // count) // 8) * 8)
    if longest <= width:
        return _padded_polynomial(values, width)
    fits = lengths <= width
    hashes = np.empty(count, np.uint64)
    hashes[fits] = _padded_polynomial(values.filter(pa.array(fits)), width)
    hashes[~fits] = _polynomial(values.filter(pa.array(~fits)), lengths[~fits])
    return hashes


def _padded_polynomial(values: pa.Array, width: int) -> np.ndarray:
    padded = pc.ascii_rpad(values, width=width, padding="\x00", memory_pool=pool())
    words = np.frombuffer(padded.buffers()[2], np.uint64, len(values) * width // 8)
    return words.reshape(len(values), width // 8) @ _powers(width // 8)


def mixed_hashes(values: pa.Array | pa.ChunkedArray, tz: str | None) -> np.ndarray:
    """Hashes for a column that held numbers or datetimes in earlier blocks and text now.

    Values that still read as numbers (or datetimes) are hashed by value, as they were before,
    so that ``7`` before and after the change is counted once.
    """
    hashes = string_hashes(values)
    for pattern, convert, hasher in ((NUMBER_PATTERN, _numbers_only, float_hashes),
                                     (ISO_PATTERN, lambda a: as_times(a, tz), time_hashes)):
        matches = pc.match_substring_regex(values, pattern, memory_pool=pool())
        matches = matches.to_numpy(zero_copy_only=False)
        if not matches.any():
            continue
        where = np.flatnonzero(matches)
        converted = convert(pc.take(values, pa.array(where), memory_pool=pool()))
        if converted is not None and len(converted) == len(where):
            hashes[where] = hasher(converted)
    return hashes


def _numbers_only(values: pa.Array) -> np.ndarray | None:
    converted = as_numbers(values)
    return None if converted is None else converted[0]
