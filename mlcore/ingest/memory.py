"""Where ingest's Arrow allocations go."""

from __future__ import annotations

import pyarrow as pa

JEMALLOC_DECAY_MS = 100
_memory_pool: pa.MemoryPool | None = None


def pool() -> pa.MemoryPool:
    """jemalloc, returning freed pages to the system quickly.

    pyarrow's default allocator (mimalloc) keeps what a long pass frees, spread over its threads'
    heaps, which looks like memory growing with the file. jemalloc with a short decay gives freed
    pages back after JEMALLOC_DECAY_MS (0 would cost a page fault for every fresh block: a
    quarter of the CPU time). The decay setting belongs to the jemalloc pool, which pyarrow does
    not use by default: the rest of the process keeps its allocator.
    """
    global _memory_pool
    if _memory_pool is None:
        try:
            _memory_pool = pa.jemalloc_memory_pool()
            pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
        except NotImplementedError:  # pyarrow built without jemalloc (Windows wheels)
            _memory_pool = pa.default_memory_pool()
    return _memory_pool
