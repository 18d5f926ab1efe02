"""ingest() while the upload arrives: its bytes are pushed in as they come, the profile is pulled.

A web worker receives an upload in chunks on its request thread. ``IngestFeed`` runs ``ingest()``
on a thread of its own that reads those chunks from a bounded buffer, so that when the last byte
arrives only the tail of the file is left to validate and profile. The buffer holds at most
``buffer_bytes``: a profile slower than the network holds the sender back (``write`` waits)
rather than memory growing with the file.

The outcome is exactly ``ingest()``'s on the same bytes: the same result or the same
``IngestError``. An error found part-way is kept for ``result()``; later chunks are dropped
unread. Parquet is read from its end, so a feed refuses it with ``NeedsRandomAccess``: the
caller reads the stored file back instead.
"""

from __future__ import annotations

import collections
import io
import logging
import threading
import weakref

from . import DEFAULT_BLOCK_SIZE, check_encoding, ingest
from .errors import IngestError, IngestLimits, NeedsRandomAccess
from .results import IngestResult

logger = logging.getLogger(__name__)

BUFFER_BYTES = 2 * 1024 * 1024  # two blocks: rides out a slow block, small next to the budget


class FeedClosed(Exception):
    """The feed was closed before the upload ended: the pass stops, its outcome is not wanted."""


class _Pipe(io.RawIOBase):
    """Chunks written on one thread, read as a non-seekable binary stream on another."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self._capacity = capacity
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._ended = False
        self._stopped = False
        self._changed = threading.Condition()

    # -- the writer's side

    def put(self, data: bytes) -> None:
        """Queue ``data``, waiting while the buffer is full; dropped once the reader stopped."""
        with self._changed:
            while self._size and self._size + len(data) > self._capacity and not self._stopped:
                self._changed.wait()
            if self._stopped or not data:
                return
            self._chunks.append(data)
            self._size += len(data)
            self._changed.notify_all()

    def end(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def stop(self) -> None:
        """No more reading: what is buffered goes, a waiting writer goes on, a reader raises."""
        with self._changed:
            self._stopped = True
            self._chunks.clear()
            self._size = 0
            self._changed.notify_all()

    # -- the reader's side

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._changed:
            while not self._chunks and not self._ended and not self._stopped:
                self._changed.wait()
            if self._stopped:
                raise FeedClosed
            if not self._chunks:
                return b""
            first = self._chunks[0]
            if 0 <= size < len(first):
                data, self._chunks[0] = first[:size], first[size:]
            else:
                data = self._chunks.popleft()
            self._size -= len(data)
            self._changed.notify_all()
            return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class IngestFeed:
    """``ingest()`` of an upload, on its own thread, fed the upload's bytes as they arrive.

        feed = IngestFeed(filename="sales.csv", limits=limits)
        for chunk in upload:
            feed.write(chunk)          # waits while the buffer is full
        feed.end()
        result = feed.result()         # IngestResult, or raises IngestError / NeedsRandomAccess
        feed.close()                   # always: ends the thread if the upload stopped half-way

    ``filename``, ``limits`` and ``encoding`` are those of the ``ingest()`` it runs; a caller that
    learns other ones only after the upload (a declared encoding sent after the file) checks them
    and reads the stored file back when they differ. A feed dropped without ``end()`` or
    ``close()`` (a request whose body broke off) stops its thread when it is garbage-collected.
    """

    def __init__(self, *, filename: str, limits: IngestLimits, encoding: str = "utf-8",
                 preview_rows: int = 20, block_size: int | None = None,
                 buffer_bytes: int = BUFFER_BYTES) -> None:
        self.filename = filename
        self.limits = limits
        self.encoding = check_encoding(encoding)
        self._pipe = _Pipe(buffer_bytes)
        self._outcome: list[IngestResult | BaseException] = []
        options = {"filename": filename, "limits": limits, "encoding": self.encoding,
                   "preview_rows": preview_rows, "block_size": block_size or DEFAULT_BLOCK_SIZE}
        # The thread holds the pipe and the outcome, never the feed: the feed can be collected.
        self._thread = threading.Thread(target=_run, args=(self._pipe, self._outcome, options),
                                        name="ingest-feed", daemon=True)
        self._thread.start()
        weakref.finalize(self, self._pipe.stop)

    def write(self, data: bytes) -> None:
        self._pipe.put(data)

    def end(self) -> None:
        """The upload is complete: what is buffered is the rest of the file."""
        self._pipe.end()

    def result(self) -> IngestResult:
        """Wait for the pass over everything written before ``end()``."""
        self._thread.join()
        outcome = self._outcome[0] if self._outcome else FeedClosed()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        """Stop the pass (if it still runs) and wait for its thread. Idempotent."""
        self._pipe.stop()
        self._thread.join()


def _run(pipe: _Pipe, outcome: list, options: dict) -> None:
    try:
        outcome.append(ingest(pipe, **options))
    except (IngestError, NeedsRandomAccess, FeedClosed) as exc:
        # Kept until the upload ends: its traceback would keep the pass's frames, and through
        # them pyarrow's blocks, in memory meanwhile.
        outcome.append(_without_traceback(exc))
    except BaseException as exc:
        logger.exception("the streaming ingest pass failed", extra={"filename": options["filename"]})
        outcome.append(exc)
    finally:
        pipe.stop()  # a writer waiting for room goes on; what comes later is dropped


def _without_traceback(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
    return exc
