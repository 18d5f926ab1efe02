"""The one error type services raise when they refuse an operation.

It carries what every caller needs and nothing of HTTP machinery: a stable `code` (the problem
type slug of the API), a `message` for people, the input `field` at fault, and the `status` an
API answers with. The API maps it to an RFC 9457 problem in one place
(tenants.web.exceptions.exception_handler); pages map it to form errors or a message in one place
(tenants.web.pages.show_error). Lower layers (storage, ingest, ml) raise their own exceptions, which
the service that called them turns into a ServiceError.
"""

from __future__ import annotations


class ServiceError(Exception):
    status: int = 400
    code: str = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 status: int | None = None, errors: list[dict] | None = None, **extra):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field
        self._errors = errors
        self.extra = extra  # more members of the problem body (quota, used, limit, line...)

    @property
    def errors(self) -> list[dict]:
        """[{field, message}]: the fields at fault (one entry unless the service gave several)."""
        return self._errors if self._errors is not None else [{"field": self.field, "message": self.message}]


class Conflict(ServiceError):
    """The operation clashes with what exists (a name taken, a member already there)."""

    status = 409
    code = "conflict"
