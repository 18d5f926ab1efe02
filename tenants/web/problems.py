"""RFC 9457 problem details for every API error."""

from __future__ import annotations

import logging

from django.http import JsonResponse
from rest_framework import exceptions

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
TITLES = {
    400: "Invalid input",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    503: "Service unavailable",
}


def problem_type(slug: str | None) -> str:
    return f"/problems/{slug}" if slug else "about:blank"


def problem(status_code: int, detail: str, *, slug: str | None = None, title: str | None = None,
            errors: list[dict] | None = None, **extra) -> dict:
    body = {
        "type": problem_type(slug),
        "title": title or TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return body


def problem_response(status_code: int, detail: str, **kwargs) -> JsonResponse:
    return JsonResponse(problem(status_code, detail, **kwargs), status=status_code,
                        content_type=CONTENT_TYPE)


class Problem(exceptions.APIException):
    """Raised by API classes for errors of the request itself; services raise ServiceError."""

    def __init__(self, status_code: int, detail: str, *, slug: str | None = None,
                 errors: list[dict] | None = None, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status_code = status_code
        self.slug = slug
        self.errors = errors
        self.extra = extra
        self.headers = headers or {}
