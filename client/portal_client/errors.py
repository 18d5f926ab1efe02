"""Exceptions carrying the server's RFC 9457 problem details.

Every error answer of the API is a problem (`type`, `title`, `status`, `detail`, and `errors` for
validation). `error_from_response` turns one into the most specific exception below, choosing by
the problem `type` first (quota refusals are 403 or 413 with a type ending in `quota-exceeded`)
and by the status code otherwise.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "AuthenticationFailed", "Conflict", "JobFailed", "NotFound", "PermissionDenied", "PortalError",
    "PreconditionFailed", "QuotaExceeded", "RateLimited", "ServiceUnavailable", "TooLarge", "ValidationFailed",
    "WaitTimedOut", "error_from_response",
]


class PortalError(Exception):
    """An error answer of the API (or a failure of the client around it).

    Attributes: `status` (HTTP status, None when no answer came), `type` (the problem type, for
    example `/problems/quota-exceeded`, or `about:blank`), `title`, `detail` (the sentence meant
    for people), `problem` (the whole problem body as a dict) and `response` (the httpx response).
    """

    def __init__(self, problem: dict[str, Any], response: httpx.Response | None = None):
        self.problem = problem
        self.status: int | None = problem.get("status")
        self.type: str = problem.get("type") or "about:blank"
        self.title: str = problem.get("title") or ""
        self.detail: str = problem.get("detail") or self.title or "Error"
        self.response = response
        super().__init__(self.detail)

    @property
    def slug(self) -> str:
        """The last part of the problem type (`quota-exceeded`, `rate-limited`...), or ''."""
        return "" if self.type == "about:blank" else self.type.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        status = f" ({self.status})" if self.status else ""
        return f"{self.detail}{status}"


class ValidationFailed(PortalError):
    """400 or 422: the input is invalid or the data cannot satisfy the request.

    `errors` is the server's list of `{field, message}`; `fields` maps each field to its message.
    """

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.problem.get("errors") or [])

    @property
    def fields(self) -> dict[str | None, str]:
        return {e.get("field"): e.get("message", "") for e in self.errors}


class AuthenticationFailed(PortalError):
    """401: no token, or a token that is wrong, expired or revoked."""


class PermissionDenied(PortalError):
    """403: the role or a grant forbids this action on something you may see."""


class NotFound(PortalError):
    """404: no such object, or one you may not see (the API does not tell them apart)."""


class Conflict(PortalError):
    """409: the operation clashes with what exists (a name taken, a job not finished...)."""


class PreconditionFailed(Conflict):
    """412: an `If-Match` precondition failed (someone changed the object since you read it).
    The client sends no conditional headers itself; this is for callers who do."""


class TooLarge(PortalError):
    """413: over a size limit (an online prediction of too many rows, a file too large)."""


class QuotaExceeded(PortalError):
    """403 or 413 with a `…/quota-exceeded` type: a plan or member limit refuses the operation."""


class RateLimited(PortalError):
    """429 after the client's own retries: `retry_after` is the server's last `Retry-After`."""

    @property
    def retry_after(self) -> float | None:
        return _retry_after(self.response)


class ServiceUnavailable(PortalError):
    """503 after the client's own retries, or the server could not be reached at all."""


class JobFailed(PortalError):
    """A job you waited for ended `failed` or `cancelled`; `job` is its last state."""

    def __init__(self, job: Any):
        self.job = job
        detail = job.error or job.message or f"job {job.id} {job.status}"
        super().__init__({"type": f"job-{job.status}", "title": f"Job {job.status}", "status": None,
                          "detail": f"Job {job.id} {job.status}: {detail}"})


class WaitTimedOut(PortalError, TimeoutError):
    """The job did not finish within the time you allowed; `job` is its last state."""

    def __init__(self, job: Any, timeout: float):
        self.job = job
        super().__init__({"type": "wait-timed-out", "title": "Timed out", "status": None,
                          "detail": f"Job {job.id} is still {job.status} after {timeout:g} s"})


_BY_STATUS: dict[int, type[PortalError]] = {
    400: ValidationFailed, 401: AuthenticationFailed, 403: PermissionDenied, 404: NotFound,
    409: Conflict, 412: PreconditionFailed, 413: TooLarge, 422: ValidationFailed, 429: RateLimited, 503: ServiceUnavailable,
}


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date, or nothing: the caller backs off on its own


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem body of an error answer; a made-up one when the body is not a problem (a proxy's
    HTML page, an empty body)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("detail" in body or "title" in body):
        return {"status": response.status_code, **body}
    text = " ".join(response.text.split())[:200]
    return {"type": "about:blank", "title": response.reason_phrase, "status": response.status_code,
            "detail": text or response.reason_phrase or f"HTTP {response.status_code}"}


def error_from_response(response: httpx.Response) -> PortalError:
    problem = problem_of(response)
    error = PortalError(problem, response)
    if error.slug == "quota-exceeded":
        cls: type[PortalError] = QuotaExceeded
    else:
        cls = _BY_STATUS.get(response.status_code, PortalError)
    return cls(problem, response)
