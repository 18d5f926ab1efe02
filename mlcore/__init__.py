"""Datasets, models, jobs and predictions of one tenant."""

import os

# pyarrow picks its default allocator once, when it is imported, from this variable; its own choice
# here is mimalloc, which kept a reading worker 16-30 MB larger than jemalloc (see
# mlcore.ingest.memory, bench/parquet_memory.py). Set before anything in the project imports pyarrow;
# an operator's own value wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
