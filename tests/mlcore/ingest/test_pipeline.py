"""Blocks worked out on pyarrow's thread: no read after return, no thread left, the same answers every time
(mlcore/ingest/pipeline.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import threading

import pytest

from mlcore.ingest import IngestError, IngestLimits, ingest
from tests.mlcore.ingest.conftest import CountingStream, csv_bytes, mixed_frame, refused, run


def test_it_has_stopped_reading_the_upload_when_it_returns():
    class ClosingStream(CountingStream):
        closed_reads = 0

        def read(self, size: int = -1) -> bytes:
            if self.closed:
                self.closed_reads += 1
            return super().read(size)

    stream = ClosingStream(b"id\n" + b"".join(b"%d\n" % i for i in range(300_000)))

    with pytest.raises(IngestError):
        ingest(stream, filename="a.csv", limits=IngestLimits(max_rows=10, max_columns=5),
               block_size=4096)
    stream.close()
    threading.Event().wait(0.05)

    assert stream.closed_reads == 0


def test_it_leaves_no_thread_behind_after_a_failure():
    before = threading.active_count()
    rows = b"".join(b"%d,%d\n" % (i, i) for i in range(50_000))

    refused(b"a,b\n" + rows + b"1\n", block_size=4096)

    assert threading.active_count() == before


def test_the_same_file_gives_the_same_profile_every_time():
    data = csv_bytes(mixed_frame(30_000))

    profiles = [run(data, block_size=16 * 1024).to_dict() for _ in range(3)]

    assert profiles[0] == profiles[1] == profiles[2]
