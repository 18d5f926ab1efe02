"""Per-process caches keyed by tenant, user or token: bounded, so that a process that has served
thousands of tenants holds no more than PER_PROCESS_ENTRIES entries of each.

An insertion into a full cache drops its oldest entries (dicts keep insertion order), not all of
them: a busy process keeps what it serves most of the time instead of refetching everything at
once. The values are small (a Tenant row, a membership, limits); bench/scale.py measures what a
process holds after serving thousands of tenants.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TypeVar

PER_PROCESS_ENTRIES = 10_000

K = TypeVar("K")
V = TypeVar("V")


def cache_put(cache: MutableMapping[K, V], key: K, value: V, *, limit: int | None = None) -> None:
    """cache[key] = value, first dropping the oldest entries while the cache holds `limit`
    (PER_PROCESS_ENTRIES unless given)."""
    limit = limit or PER_PROCESS_ENTRIES
    cache.pop(key, None)  # re-inserted at the end: the newest
    while len(cache) >= limit:
        try:
            del cache[next(iter(cache))]
        except (StopIteration, KeyError, RuntimeError):  # emptied or changed by another thread
            break
    cache[key] = value
