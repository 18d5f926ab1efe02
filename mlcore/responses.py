"""Responses shared by pages and the API: streamed, decrypted downloads."""

from __future__ import annotations

import re

from django.http import StreamingHttpResponse

from .models import Dataset
from .services import datasets as dataset_services

CONTENT_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "csv.gz": "application/gzip",
    "tsv.gz": "application/gzip",
    "parquet": "application/vnd.apache.parquet",
}
CHUNK = 1024 * 1024


def safe_filename(name: str, default: str = "download") -> str:
    """A filename safe inside a Content-Disposition header."""
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip(" .") or default
    return cleaned[:150]


def stream_chunks(stream):
    with stream:
        while True:
            block = stream.read(CHUNK)
            if not block:
                return
            yield block


def charset(encoding: str) -> str:
    """The IANA name of a Python codec name ("cp1252" -> "windows-1252"), for Content-Type."""
    name = (encoding or "utf-8").lower()
    if re.fullmatch(r"cp125\d", name):
        return "windows-" + name[2:]
    if name.startswith("iso8859-"):
        return "iso-8859-" + name[8:]
    return {"mac-roman": "macintosh"}.get(name, name)


def download_response(tenant, dataset: Dataset) -> StreamingHttpResponse:
    """The original file as uploaded; a text file's charset is the encoding it was read as."""
    stream = dataset_services.dataset_open_for_download(tenant=tenant, dataset=dataset)
    content_type = CONTENT_TYPES.get(dataset.format, "application/octet-stream")
    if content_type.startswith("text/"):
        content_type += f"; charset={charset(dataset.encoding)}"
    response = StreamingHttpResponse(stream_chunks(stream), content_type=content_type)
    response["Content-Length"] = str(dataset.size_bytes)
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(dataset.original_filename)}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


PREDICTION_FILES = {
    "csv": ("output_object_id", "output_bytes", "text/csv; charset=utf-8", "predictions-{job}.csv"),
    "parquet": ("parquet_object_id", "parquet_bytes", "application/vnd.apache.parquet",
                "predictions-{job}.parquet"),
    "errors": ("errors_object_id", "errors_bytes", "text/csv; charset=utf-8", "errors-{job}.csv"),
}


def prediction_download(tenant, output, kind: str) -> StreamingHttpResponse:
    """A prediction job's output (CSV or Parquet) or errors file, decrypted as it streams."""
    from . import storage
    from .storage import PREDICTIONS

    field, size_field, content_type, filename = PREDICTION_FILES[kind]
    stream = storage.open_object(tenant, PREDICTIONS, str(getattr(output, field)))
    response = StreamingHttpResponse(stream_chunks(stream), content_type=content_type)
    response["Content-Length"] = str(getattr(output, size_field))
    response["Content-Disposition"] = f'attachment; filename="{filename.format(job=output.job_id)}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
