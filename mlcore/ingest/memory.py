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
    quarter of the CPU time).

    It is also the process's default pool (mlcore/__init__.py asks pyarrow for it), because the
    Parquet reader takes no pool of its own: with mimalloc under it, reading a 200,000-row Parquet
    file grew a worker by 68 MB, with jemalloc by 38 MB, and no slower (bench/parquet_memory.py).
    Where pyarrow was imported first and kept mimalloc, it is made the default here (54 MB).
    """
    global _memory_pool
    if _memory_pool is None:
        try:
            _memory_pool = pa.jemalloc_memory_pool()
            pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
            pa.set_memory_pool(_memory_pool)
        except NotImplementedError:  # pyarrow built without jemalloc (Windows wheels)
            _memory_pool = pa.default_memory_pool()
    return _memory_pool
