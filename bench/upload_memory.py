"""Memory stays flat while a large upload streams through EncryptingUploadHandler (target: peak RSS
grows by a few MiB, not by the file's size).

    .venv/bin/python bench/upload_memory.py [--mb 200]

A multipart body is generated on the fly (never held whole), parsed by Django's MultiPartParser into
an encrypted object, then read back and verified chunk by chunk. Runs against a throw-away database
on the configured (DATABASE_URL) or embedded PostgreSQL, with a temporary storage folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time

from _db import bench_database

BOUNDARY = "benchboundary7f3a9c"
ROW_BLOCK = b"".join(b"%d,%d.25,north,row number %d\n" % (i, i * 3, i) for i in range(2000))


class MultipartBody:
    """A file-like multipart/form-data body of `size` bytes of CSV, produced as it is read."""

    def __init__(self, size: int):
        self.head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.size = size
        self.length = len(self.head) + size + len(self.tail)
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        n = self.length - self.pos if n is None or n < 0 else min(n, self.length - self.pos)
        out = bytearray()
        while len(out) < n:
            out += self._at(self.pos + len(out), n - len(out))
        self.pos += n
        return bytes(out)

    def readline(self, size: int = -1) -> bytes:  # WSGI input must have it; the parser never calls it
        raise NotImplementedError

    def _at(self, pos: int, n: int) -> bytes:
        if pos < len(self.head):
            return self.head[pos:pos + n]
        pos -= len(self.head)
        if pos < self.size:
            start = pos % len(ROW_BLOCK)
            return ROW_BLOCK[start:start + min(n, self.size - pos)]
        pos -= self.size
        return self.tail[pos:pos + n]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="portal-bench-storage-")
    os.environ["PORTAL_STORAGE_DIR"] = folder
    try:
        with bench_database("upload"):
            run(args.mb * 1024 * 1024)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(size: int) -> None:
    from django.core.handlers.wsgi import WSGIRequest

    from mlcore import storage
    from tenants.services import tenant_create

    tenant = tenant_create(slug="bench-upload", name="Bench", admin_email="a@bench.test",
                           notify=False).tenant
    body = MultipartBody(size)
    request = WSGIRequest({
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/datasets/", "SERVER_NAME": "bench",
        "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": body,
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(body.length),
    })
    request.tenant = tenant
    storage.install_encrypting_upload(request, delete_unless_kept=False)

    before = peak_rss_mib()
    t0 = time.perf_counter()
    uploaded = request.FILES["file"]
    upload_s = time.perf_counter() - t0
    after_upload = peak_rss_mib()
    t0 = time.perf_counter()
    verified = storage.verify_object(tenant, "datasets", uploaded.object_id)
    verify_s = time.perf_counter() - t0
    after_verify = peak_rss_mib()
    assert verified.sha256_hex == uploaded.stored.sha256_hex and verified.plaintext_bytes == size

    mib = size / 2**20
    print(f"{'measure':<44}{'value':>12}")
    print(f"{'uploaded plaintext, MiB':<44}{mib:>12.0f}")
    print(f"{'stored file, MiB':<44}{uploaded.stored.path.stat().st_size / 2**20:>12.1f}")
    print(f"{'peak RSS before the upload, MiB':<44}{before:>12.1f}")
    print(f"{'peak RSS after upload + encrypt, MiB':<44}{after_upload:>12.1f}")
    print(f"{'peak RSS after decrypt + verify, MiB':<44}{after_verify:>12.1f}")
    print(f"{'growth of peak RSS, MiB':<44}{after_verify - before:>12.1f}")
    print(f"{'upload (parse + encrypt + fsync), MiB/s':<44}{mib / upload_s:>12.0f}")
    print(f"{'read back (decrypt + sha256), MiB/s':<44}{mib / verify_s:>12.0f}")
    flat = after_verify - before < 32
    print(f"target: peak RSS grows < 32 MiB for {mib:.0f} MiB -> {'met' if flat else 'NOT met'}")


if __name__ == "__main__":
    main()
