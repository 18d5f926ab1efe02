"""A WSGI app for bench/upload.py: what receiving and storing an upload costs without profiling.

It runs in gunicorn like the platform, parses the multipart body with Django and stores the file
through the same EncryptingUploadHandler (encrypted, hashed, fsynced), then deletes it. There is
no routing, authentication, quota, validation or profile: its time is the floor under any
profiler, measured in the same run as the real upload. Not part of the product.
"""

from __future__ import annotations

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
django.setup()

from django.core.handlers.wsgi import WSGIRequest  # noqa: E402
from django_tenants.utils import get_tenant_model  # noqa: E402

from mlcore import storage  # noqa: E402

TENANT = get_tenant_model().objects.get(schema_name=os.environ["BENCH_TENANT_SCHEMA"])


def application(environ, start_response):
    request = WSGIRequest(environ)
    handler = storage.install_encrypting_upload(request, kind="datasets", tenant=TENANT)
    uploaded = request.FILES["file"]
    stored = uploaded.stored
    handler.discard()
    body = json.dumps({"bytes": stored.plaintext_bytes, "sha256": stored.sha256_hex}).encode()
    start_response("201 Created", [("Content-Type", "application/json"),
                                   ("Content-Length", str(len(body)))])
    return [body]
