"""Two threads share a CSV upload's work: one parses and works blocks out, one absorbs them.

pyarrow parses on the parse thread with the GIL released; the same thread then works out
(``blocks.prepare``) the next batch's blocks for some of the columns while the calling thread
absorbs the current batch into the columns' summaries and works out the rest. ``Balance``
decides which columns go where, from what each thread measures, so that neither waits for the
other.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from .blocks import StringBlock, ValueBlock, prepare
from .columns import Column
from .source import TextSource

REBALANCE_BATCHES = 8  # how often the columns are dealt again between the two threads
HANDOFF_BATCHES = 1  # parsed batches waiting for the calling thread (more: more memory, no faster)

Blocks = list[ValueBlock | StringBlock | None]


class Balance:
    """Which columns the parse thread works out for the calling thread.

    Each thread measures its own CPU time, and every REBALANCE_BATCHES batches the columns are
    dealt again, costliest first, to whichever thread has less to do. CPU time does not tell
    everything (the parse thread also waits for reads, either may wait for a core), so the time
    each thread spent waiting for the other corrects the deal. Any split is right: a column the
    parse thread did not work out is worked out by the calling thread.
    """

    def __init__(self, count: int) -> None:
        self.ahead: tuple[int, ...] = tuple(range(count))  # read by the parse thread
        self._costs = [0.0] * count  # CPU seconds to work out a block of each column
        self._parse = 0.0  # CPU seconds to parse a batch
        self._absorb = 0.0  # CPU seconds to absorb a batch's blocks
        self._bias = 0.0  # seconds per batch the parse thread needs beyond its CPU time
        # Each written by one thread only: ``+=`` from two threads could lose updates.
        self._waited_for_batch = 0.0  # by the calling thread
        self._waited_for_room = 0.0  # by the parse thread

    def measured(self, column: int, seconds: float) -> None:
        self._costs[column] = _smooth(self._costs[column], seconds)

    def parsed(self, seconds: float) -> None:
        self._parse = _smooth(self._parse, seconds)

    def absorbed(self, seconds: float) -> None:
        self._absorb = _smooth(self._absorb, seconds)

    def waited(self, seconds: float, *, for_batch: bool) -> None:
        if for_batch:
            self._waited_for_batch += seconds
        else:
            self._waited_for_room += seconds

    def rebalance(self) -> None:
        idle = self._waited_for_batch - self._waited_for_room
        self._waited_for_batch = self._waited_for_room = 0.0  # a lost wait or two is harmless
        self._bias = max(self._bias + 0.5 * idle / REBALANCE_BATCHES, -self._parse)
        parse, absorb, ahead = self._parse + self._bias, self._absorb, []
        for i in sorted(range(len(self._costs)), key=lambda i: -self._costs[i]):
            if parse <= absorb:
                ahead.append(i)
                parse += self._costs[i]
            else:
                absorb += self._costs[i]
        self.ahead = tuple(sorted(ahead))


def _smooth(average: float, sample: float) -> float:
    return sample if not average else 0.8 * average + 0.2 * sample


def work_out(columns: list[Column], batch: pa.RecordBatch, index: int,
             balance: Balance) -> Blocks:
    """On the parse thread: the blocks of the columns it was given, for the columns as they are
    now (``Column.add_strings`` checks that they still are)."""
    blocks: Blocks = [None] * len(columns)
    for i in balance.ahead:
        started = time.thread_time()
        blocks[i] = prepare(columns[i].plan(index), batch.column(i))
        balance.measured(i, time.thread_time() - started)
    return blocks


def absorb(columns: list[Column], batch: pa.RecordBatch, index: int, blocks: Blocks,
           balance: Balance) -> None:
    """On the calling thread: batch number ``index`` into the columns' summaries."""
    started = time.thread_time()
    for i, (column, values) in enumerate(zip(columns, batch.columns, strict=True)):
        block = blocks[i]
        if block is None and column.kind is not None:
            begun = time.thread_time()
            block = prepare(column.plan(index), values)
            spent = time.thread_time() - begun
            balance.measured(i, spent)
            started += spent
        column.add_strings(values, index, block)
    balance.absorbed(time.thread_time() - started)
    if index % REBALANCE_BATCHES == REBALANCE_BATCHES - 1:
        balance.rebalance()


def pipelined(reader: pa.RecordBatchReader, source: TextSource, columns: list[Column],
              balance: Balance) -> Iterator[tuple[pa.RecordBatch, Blocks]]:
    """Batches from ``reader`` with the blocks the parse thread worked out for them.

    However the caller leaves (error, limit), the thread and pyarrow's reads of the upload are
    over when this generator is closed.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=HANDOFF_BATCHES)
    stop = threading.Event()
    holder = [reader]
    del reader

    def put(item: tuple[str, Any]) -> None:
        started = time.perf_counter()
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        balance.waited(time.perf_counter() - started, for_batch=False)

    def produce() -> None:
        # Once stopped, reads return nothing, and the reader is run to its end anyway: only
        # then has pyarrow finished with the source on its own threads. No local may hold the
        # reader: an exception's traceback would keep it, and the blocks lent to it.
        try:
            source.parser_waiting = True
            started = time.thread_time()
            for index, batch in enumerate(holder[0]):
                source.parser_waiting = False
                source.block_parsed()
                balance.parsed(time.thread_time() - started)
                if not stop.is_set():
                    put(("batch", (batch, work_out(columns, batch, index, balance))))
                source.parser_waiting = True
                started = time.thread_time()
            source.parser_waiting = False
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(("error", exc))

    thread = threading.Thread(target=produce, name="ingest-parse", daemon=True)
    thread.start()
    try:
        while True:
            started = time.perf_counter()
            kind, item = handoff.get()
            balance.waited(time.perf_counter() - started, for_batch=True)
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        source.cancel()
        thread.join()
        # An exception's traceback keeps these frames, and through them the reader and the
        # blocks pyarrow holds: let go of it here.
        holder.clear()
