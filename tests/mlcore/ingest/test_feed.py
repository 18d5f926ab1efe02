"""ingest() fed an upload as it arrives (mlcore/ingest/feed.py): exactly the outcome of ingest() on
the same bytes, a bounded buffer that holds the sender back, and no thread left running.

Pure tests: no database, no Django. Chunks are of an odd size, so that they end in the middle of
rows, characters and gzip blocks; ``block_size`` is small so that a file is many blocks.
"""

from __future__ import annotations

import gc
import gzip
import io
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcore.ingest import IngestError, IngestLimits, NeedsRandomAccess
from mlcore.ingest.feed import FeedClosed, IngestFeed, _Pipe
from tests.mlcore.ingest.conftest import LIMITS, csv_bytes, mixed_frame, run

BLOCK = 16 * 1024
CHUNK = 7_919  # what the web server hands over at a time (Django: 256 kB; odd here on purpose)


def fed(data: bytes, filename: str = "data.csv", *, chunk: int = CHUNK, **options):
    feed = IngestFeed(filename=filename, limits=options.pop("limits", LIMITS), block_size=BLOCK,
                      **options)
    try:
        for start in range(0, len(data), chunk):
            feed.write(data[start:start + chunk])
        feed.end()
        return feed.result()
    finally:
        feed.close()


def outcome(read, data: bytes, filename: str, **options):
    """The profile, or the error as the uploader sees it."""
    try:
        return read(data, filename, **options).to_dict()
    except IngestError as exc:
        return {"code": exc.code, "message": str(exc), "line": exc.line, "column": exc.column,
                "row": exc.row}


def feed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("ingest-feed", "ingest-parse")]


MIXED = csv_bytes(mixed_frame(20_000))
RAGGED = MIXED + b"1,2,3\n" + MIXED.split(b"\n", 1)[1]
EXCEL_EXPORT = ("ville,ventes\n" + "Montréal,10\nQuébec,7\n" * 4_000).encode("cp1252")

FILES = {
    "csv": (MIXED, "data.csv", {}),
    "tsv": (mixed_frame(5_000).to_csv(index=False, sep="\t").encode(), "data.tsv", {}),
    "gzip csv": (gzip.compress(MIXED), "data.csv.gz", {}),
    "utf-16 by its byte order mark": (MIXED.decode().replace("note", "nöte").encode("utf-16"),
                                      "data.csv", {}),
    "cp1252 declared": (EXCEL_EXPORT, "ventes.csv", {"encoding": "cp1252"}),
    "crlf line ends": (MIXED.replace(b"\n", b"\r\n"), "data.csv", {}),
    "ragged row deep in the file": (RAGGED, "data.csv", {}),
    "a NUL byte deep in the file": (MIXED[:200_000] + b"\x00" + MIXED[200_000:], "data.csv", {}),
    "bad UTF-8 deep in the file": (MIXED[:300_000] + b"caf\xe9," + MIXED[300_000:], "data.csv", {}),
    "more rows than the plan": (MIXED, "data.csv", {"limits": IngestLimits(10_000, 100)}),
    "more columns than the plan": (MIXED, "data.csv", {"limits": IngestLimits(10**6, 3)}),
    "a quote never closed": (MIXED + b'1,2,3,free,2020-01-01,"open\n' + MIXED[-5_000:], "data.csv", {}),
    "a header only": (b"a,b,c\n", "data.csv", {}),
    "empty": (b"", "data.csv", {}),
    "a PDF": (b"%PDF-1.7\n" + b"\x00" * 5_000, "report.csv", {}),
    "a broken gzip": (gzip.compress(MIXED)[:150_000], "data.csv.gz", {}),
}


@pytest.mark.parametrize("name", list(FILES))
def test_a_fed_upload_gives_exactly_what_ingest_gives_on_the_same_bytes(name):
    data, filename, options = FILES[name]

    expected = outcome(lambda d, f, **o: run(d, f, block_size=BLOCK, **o), data, filename, **options)
    assert outcome(fed, data, filename, **options) == expected


def test_it_does_not_depend_on_how_the_upload_is_cut_into_chunks():
    expected = outcome(fed, RAGGED, "data.csv", chunk=len(RAGGED))

    for chunk in (1_000, 65_536, 262_144):
        assert outcome(fed, RAGGED, "data.csv", chunk=chunk) == expected


def test_parquet_needs_random_access_and_is_refused_with_that():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3]}), buffer)

    with pytest.raises(NeedsRandomAccess):
        fed(buffer.getvalue(), "data.parquet")


def test_a_full_buffer_holds_the_writer_back_until_the_reader_catches_up():
    pipe = _Pipe(capacity=8)
    pipe.put(b"12345678")
    written = threading.Event()
    writer = threading.Thread(target=lambda: (pipe.put(b"9"), written.set()))
    writer.start()

    assert not written.wait(0.2)
    assert pipe.read(4) == b"1234"
    assert written.wait(5)
    writer.join()
    assert pipe.read() == b"5678"
    assert pipe.read() == b"9"


def test_an_error_found_part_way_lets_the_rest_of_the_upload_through_unread():
    feed = IngestFeed(filename="data.csv", limits=LIMITS, buffer_bytes=64 * 1024)
    sender = threading.Thread(target=lambda: [feed.write(b"a,b\n1,2,3\n" if i == 0 else b"9,9\n" * 16_384)
                                              for i in range(300)])
    sender.start()
    sender.join(timeout=30)

    assert not sender.is_alive(), "a stopped pass must not hold the upload back"
    feed.end()
    with pytest.raises(IngestError) as refused:
        feed.result()
    assert (refused.value.code, refused.value.line) == ("ragged_row", 2)
    feed.close()
    assert feed_threads() == []


def test_closing_a_feed_before_the_upload_ends_stops_its_threads():
    feed = IngestFeed(filename="data.csv", limits=LIMITS, block_size=BLOCK)
    feed.write(MIXED[:100_000])

    feed.close()

    assert feed_threads() == []
    with pytest.raises(FeedClosed):
        feed.result()


def test_a_feed_dropped_half_way_stops_its_threads():
    feed = IngestFeed(filename="data.csv", limits=LIMITS, block_size=BLOCK)
    feed.write(MIXED[:100_000])
    thread = feed._thread

    del feed
    gc.collect()

    thread.join(timeout=10)
    assert not thread.is_alive()
    assert feed_threads() == []
