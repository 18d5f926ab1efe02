"""Responses shared by pages and the API: streamed, decrypted downloads."""

from __future__ import annotations

import re

from django.http import StreamingHttpResponse

from .models import Dataset
from .services import datasets as dataset_services

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
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


def download_response(tenant, dataset: Dataset) -> StreamingHttpResponse:
    stream = dataset_services.dataset_open_for_download(tenant=tenant, dataset=dataset)
    response = StreamingHttpResponse(stream_chunks(stream),
                                     content_type=CONTENT_TYPES.get(dataset.format, "application/octet-stream"))
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
    from .predictions import PREDICTIONS

    field, size_field, content_type, filename = PREDICTION_FILES[kind]
    stream = storage.open_object(tenant, PREDICTIONS, str(getattr(output, field)))
    response = StreamingHttpResponse(stream_chunks(stream), content_type=content_type)
    response["Content-Length"] = str(getattr(output, size_field))
    response["Content-Disposition"] = f'attachment; filename="{filename.format(job=output.job_id)}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
