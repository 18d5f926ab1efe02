"""`Idempotency-Key` on the API's creating POSTs: a retry gets the first answer, nothing is made twice.

An endpoint opts in with ``TenantAPI.idempotent = True`` (uploads, training and prediction jobs,
tokens, invitations, audit exports). For a POST carrying the header, from a signed-in member:

- The key is claimed under a PostgreSQL advisory lock (session level: a process that dies lets go
  with its connection), so concurrent retries with one key run the operation once; a request that
  cannot get the lock within PORTAL_IDEMPOTENCY_WAIT_SECONDS is answered 409 with Retry-After.
- The first request leaves a pending row, runs, and stores its answer (status, body sealed with the
  tenant's data key, Location) with a digest of its body. An answer of 500 or more, or a body the
  endpoint did not read to the end (refused early), is not stored: the row goes, and a retry runs
  again (such requests leave nothing behind).
- A retry with the same key, operation and body gets the stored answer (``Idempotent-Replayed:
  true``) for PORTAL_IDEMPOTENCY_HOURS (24); the same key on another operation or with another body
  is answered 422; a pending row whose process died before answering is answered 409 (whether it
  took effect is not known: the caller checks, then uses a new key).

Keys belong to one person in one tenant. The digest ignores the multipart boundary, which clients
choose afresh on every attempt.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from tenants.crypto import keys
from tenants.models import IdempotentRequest
from tenants.web import advisory
from tenants.web.problems import problem_response

HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED = "Idempotent-Replayed"
SEAL_PURPOSE = b"portal-idempotent-answer:v1"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


class _DigestingStream:
    """Wraps the request's body stream: everything the endpoint reads is hashed on the way, with
    the multipart boundary replaced by a fixed token."""

    def __init__(self, stream, content_type: str, length: int):
        self._stream = stream
        self.length = length
        self.seen = 0
        self.ended = False
        self._hash = hashlib.sha256(re.sub(r";\s*boundary=[^;]*", "", content_type).encode())
        match = re.search(r"boundary=\"?([^\";]+)\"?", content_type)
        self._boundary = match.group(1).encode() if match else b""
        self._carry = b""

    def _take(self, data: bytes) -> bytes:
        self.seen += len(data)
        if not data:
            self.ended = True
        if not self._boundary:
            self._hash.update(data)
            return data
        buffer, boundary, pos = self._carry + data, self._boundary, 0
        while (found := buffer.find(boundary, pos)) >= 0:
            self._hash.update(buffer[pos:found] + b"\0boundary\0")
            pos = found + len(boundary)
        keep = max(pos, len(buffer) - len(boundary) + 1)
        self._hash.update(buffer[pos:keep])
        self._carry = buffer[keep:]
        return data

    def read(self, *args, **kwargs) -> bytes:
        return self._take(self._stream.read(*args, **kwargs))

    def readline(self, *args, **kwargs) -> bytes:
        return self._take(self._stream.readline(*args, **kwargs))

    def __getattr__(self, name):  # close() and the rest: the wrapped stream's
        return getattr(self._stream, name)

    def drain(self) -> None:
        while self.read(64 * 1024):
            pass

    @property
    def complete(self) -> bool:
        return self.ended or self.seen >= self.length

    def hexdigest(self) -> str:
        digest = self._hash.copy()
        digest.update(self._carry)
        return digest.hexdigest()


@dataclass
class Claim:
    """One POST's hold on its key: either an answer to give at once, or the right to run."""

    answer: HttpResponse | None = None
    lock_id: str = ""
    row_id: int | None = None
    stream: _DigestingStream | None = None
    tenant: object = None

    def keep(self, response) -> None:
        """Store the endpoint's answer for retries (or give the key up when it is not final)."""
        if self.row_id is None:
            return
        row_id, self.row_id = self.row_id, None
        if response.status_code >= 500 or self.stream is None or not self.stream.complete:
            IdempotentRequest.objects.filter(pk=row_id).delete()
            return
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        IdempotentRequest.objects.filter(pk=row_id).update(
            request_digest=self.stream.hexdigest(), status_code=response.status_code,
            content_type=response.get("Content-Type", "")[:100], location=response.get("Location", "")[:500],
            sealed_body=keys.seal(self.tenant, bytes(response.content), purpose=SEAL_PURPOSE))

    def close(self) -> None:
        if self.row_id is not None:  # the endpoint raised past DRF: nothing to replay
            IdempotentRequest.objects.filter(pk=self.row_id).delete()
            self.row_id = None
        if self.lock_id:
            advisory.unlock(self.lock_id)
            self.lock_id = ""


def claim(request, *, tenant, user_id: int) -> Claim:
    """Claim the request's Idempotency-Key (see the module's docstring). The caller runs the
    endpoint only when ``claim.answer`` is None, then calls ``keep(response)`` and ``close()``."""
    key = request.META[HEADER]
    if not KEY_PATTERN.match(key):
        return Claim(answer=problem_response(
            400, "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.",
            slug="invalid-idempotency-key"))
    operation = f"{request.method} {request.path}"[:300]
    lock_id = f"idempotency:{tenant.id}:{user_id}:{key}"
    if not advisory.lock(lock_id, wait=settings.PORTAL_IDEMPOTENCY_WAIT_SECONDS):
        response = problem_response(409, "A request with this Idempotency-Key is still running; "
                                    "retry after it answers.", slug="idempotency-key-in-use")
        response["Retry-After"] = "1"
        return Claim(answer=response)
    held = Claim(lock_id=lock_id, tenant=tenant)
    try:
        held.stream = _wrap_body(request)
        row = IdempotentRequest.objects.filter(tenant=tenant, user_id=user_id, key=key).first()
        if row is not None and row.created_at < timezone.now() - timedelta(hours=settings.PORTAL_IDEMPOTENCY_HOURS):
            row.delete()
            row = None
        if row is None:
            held.row_id = IdempotentRequest.objects.create(
                tenant=tenant, user_id=user_id, key=key, operation=operation, status_code=None,
                sealed_body=b"").pk
            return held
        held.answer = _answer_for(row, operation, held.stream, tenant)
    except BaseException:
        held.close()
        raise
    return held


def _answer_for(row: IdempotentRequest, operation: str, stream: _DigestingStream | None, tenant) -> HttpResponse:
    if row.operation != operation:
        return problem_response(422, f"This Idempotency-Key was used for {row.operation}; use a new "
                                "key for another request.", slug="idempotency-key-reused")
    if row.status_code is None:
        return problem_response(409, "The first request with this Idempotency-Key stopped before it "
                                "answered (its server process ended), so whether it took effect is "
                                "not known: check, then use a new key.", slug="idempotency-key-interrupted")
    if stream is None:
        return problem_response(422, "This request's body cannot be compared with the first one's; "
                                "use a new key.", slug="idempotency-key-reused")
    stream.drain()
    if stream.hexdigest() != row.request_digest:
        return problem_response(422, "This Idempotency-Key was used with a different request body; "
                                "use a new key for a new request.", slug="idempotency-key-reused")
    response = HttpResponse(keys.unseal(tenant, row.sealed_body, purpose=SEAL_PURPOSE),
                            status=row.status_code, content_type=row.content_type or None)
    if row.location:
        response["Location"] = row.location
    response[REPLAYED] = "true"
    return response


def _wrap_body(request) -> _DigestingStream | None:
    """Hash the body as the endpoint reads it (or the whole body, when it was read already)."""
    content_type = request.META.get("CONTENT_TYPE", "")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if hasattr(request, "_body"):
        stream = _DigestingStream(_Bytes(request._body), content_type, len(request._body))
        stream.drain()
        return stream
    if getattr(request, "_read_started", False):
        return None
    stream = _DigestingStream(request._stream, content_type, length)
    request._stream = stream
    return stream


class _Bytes:
    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk, self._pos = self._data[self._pos:end], min(end, len(self._data))
        return chunk


def purge_expired() -> int:
    """Rows older than the retention period (a beat task runs it hourly)."""
    cutoff = timezone.now() - timedelta(hours=settings.PORTAL_IDEMPOTENCY_HOURS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
