"""The API's one exception handler (REST_FRAMEWORK["EXCEPTION_HANDLER"]): every error is an RFC
9457 problem; a ServiceError maps here and nowhere else; a dependency that is down is a 503."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tenants.errors import ServiceError
from tenants.web import outages
from tenants.web.problems import CONTENT_TYPE, Problem, problem


def _flatten(data, prefix: str = "") -> list[dict]:
    """DRF's nested error dicts -> [{field, message}]."""
    out: list[dict] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = key if key != "non_field_errors" else ""
            out.extend(_flatten(value, f"{prefix}.{name}" if prefix and name else (name or prefix)))
    elif isinstance(data, list):
        if all(not isinstance(item, (dict, list)) for item in data):
            out.extend({"field": prefix or None, "message": str(item)} for item in data)
        else:
            for index, item in enumerate(data):
                out.extend(_flatten(item, f"{prefix}[{index}]"))
    else:
        out.append({"field": prefix or None, "message": str(data)})
    return out


def exception_handler(exc, context):
    """DRF's handler, answering every error as a problem; the one place a ServiceError maps."""
    outage = outages.outage_response(context["request"], exc)
    if outage is not None:
        return outage
    if isinstance(exc, ServiceError):
        exc = Problem(exc.status, exc.message, slug=exc.code, errors=exc.errors, **exc.extra)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    if isinstance(exc, Problem):
        body = problem(exc.status_code, str(exc.detail), slug=exc.slug, errors=exc.errors, **exc.extra)
        return Response(body, status=exc.status_code, headers=exc.headers,
                        content_type=CONTENT_TYPE)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = response.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = errors[0]["message"] if len(errors) == 1 else "The request has invalid fields."
        body = problem(code, detail, errors=errors)
    elif code == status.HTTP_404_NOT_FOUND:
        body = problem(code, "No such resource.")
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        body = problem(code, str(detail))
    response.data = body
    response.content_type = CONTENT_TYPE
    return response
