"""What the OpenAPI schema (``/api/schema/``, shown at ``/api/docs/``) says beyond the code itself.

The API views are plain ``TenantAPI`` classes whose bodies are built by hand, so drf-spectacular
cannot guess their shapes: each method says them with ``@extend_schema``, using the serializers
and helpers here. ``tests/test_api_schema.py`` keeps the schema free of warnings.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from tenants.web.problems import CONTENT_TYPE

__all__ = ["ID", "PAGE_PARAMETERS", "OpenApiResponse", "OpenApiTypes", "PortalAutoSchema",
           "component_rules", "file_response", "paginated", "problems", "state_rules"]


class PortalAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.accounts.authentication.PortalAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token made on the Tokens page or with POST /api/v1/tokens/: "
                           "`Authorization: Bearer <token>`. Pages of the same workspace may also "
                           "call the API with their session cookie and CSRF token.",
        }


class PortalAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the body of a DELETE on views that read one
    (``delete_has_body = True``: the share endpoints name whom to remove), and the headers of
    idempotent creation and conditional requests (``TenantAPI.idempotent``, ``ObjectAPI``)."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is not None:
            _document_headers(self.view, self.method, operation)
        return operation

    def _get_request_body(self, direction="request"):
        if self.method != "DELETE" or not getattr(self.view, "delete_has_body", False):
            return super()._get_request_body(direction)
        self.method = "POST"  # drf-spectacular documents bodies of unsafe methods only
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"


def _header(name: str, description: str, **schema) -> dict:
    return {"in": "header", "name": name, "required": False, "description": description,
            "schema": {"type": "string", **schema}}


def _problem(code: int) -> dict:
    return {"description": _PROBLEM_WORDS[code],
            "content": {CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _document_headers(view, method: str, operation: dict) -> None:
    from tenants.web.api import ObjectAPI  # (the API base classes use this module's helpers)

    parameters, responses = operation.setdefault("parameters", []), operation["responses"]
    if method == "POST" and getattr(view, "idempotent", False):
        parameters.append(_header(
            "Idempotency-Key", "Any unique string (a UUID): a retry with the same key within 24 hours "
            "gets the first answer (`Idempotent-Replayed: true`) and creates nothing more.",
            minLength=1, maxLength=255, pattern=r"^[\x21-\x7e]+$"))
        for code in (400, 409, 422):
            responses.setdefault(str(code), _problem(code))
    if isinstance(view, ObjectAPI) and method == "GET":
        parameters.append(_header("If-None-Match", "An ETag of an earlier answer: 304 while it is current."))
        for code, body in responses.items():
            if code == "200" and "application/json" in body.get("content", {}):
                body["headers"] = {"ETag": {"description": "The object's version as you see it",
                                            "schema": {"type": "string"}}}
        responses["304"] = {"description": "Not modified: If-None-Match names the current ETag (no body)."}
    if isinstance(view, ObjectAPI) and method in ("PATCH", "DELETE") and hasattr(view, "get"):
        parameters.append(_header("If-Match", "The ETag of the object as you read it: the change is made "
                                  "only while it is still current (else 412)."))
        for code in (409, 412):
            responses.setdefault(str(code), _problem(code))


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, the body of every error."""

    type = serializers.CharField(help_text="/problems/<slug>, or about:blank")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="A sentence for the person who made the request.")
    errors = serializers.ListField(
        child=inline_serializer("ProblemFieldError", fields={
            "field": serializers.CharField(allow_null=True),
            "message": serializers.CharField(),
        }), required=False)


_PROBLEM_WORDS = {
    400: "Invalid input (the body or a parameter), with the field at fault in `errors`.",
    401: "No valid token or session.",
    403: "The role, the token's scope or a quota does not allow it.",
    404: "Not found, or not visible to you (another workspace's ids are never confirmed); for a "
         "list, a page after the last one.",
    409: "Conflicts with what exists (a name already taken), or a request with the same "
         "Idempotency-Key or a conditional change to the same object is still running.",
    412: "If-Match does not name the object's current ETag: it changed since you read it.",
    413: "Too large for the plan (rows, columns, storage).",
    422: "Valid input that cannot be done (named in `detail`), or an Idempotency-Key used "
         "before with another request.",
    429: "Rate limit: try again after `Retry-After` seconds.",
    503: "The database or Redis is unreachable: try again after `Retry-After` seconds.",
}
# What any API request may be answered, whatever the operation: no or bad credentials, a host,
# id or page that is not there for you, the rate limit, a dependency that is down.
EVERY_OPERATION = (401, 404, 429, 503)


def problems(*codes: int) -> dict:
    """``responses`` entries for error statuses, as problem details (with EVERY_OPERATION's)."""
    return {(code, CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description=_PROBLEM_WORDS[code])
            for code in sorted(set(codes) | set(EVERY_OPERATION))}


def paginated(serializer_class: type[serializers.Serializer], name: str):
    """A page of ``serializer_class`` as TenantAPI.paginated() returns it."""
    return inline_serializer(f"Paginated{name}List", fields={
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer_class(many=True),
    })


def file_response(description: str, *media_types: str) -> dict:
    """A streamed file (``responses`` entries for each media type it may have)."""
    return {(200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=description)
            for media_type in media_types}


PAGE_PARAMETERS = [
    OpenApiParameter("page", {"type": "integer", "minimum": 1},
                     description="Page number, from 1 (400 below 1, 404 after the last page)."),
    OpenApiParameter("page_size", {"type": "integer", "minimum": 1},
                     description="Items per page (default 50); values above 200 are capped at 200."),
]
ID = OpenApiTypes.INT


# --- rules between fields, which serializers cannot describe -------------------------------------
_COMPONENT_RULES: dict[str, dict] = {}


def component_rules(component: str, **rules) -> None:
    """Add JSON Schema keywords (``oneOf``, ``anyOf``...) to a request component: rules the
    serializer enforces across fields, stated where clients read them. Applied by state_rules."""
    _COMPONENT_RULES[component] = rules


def state_rules(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    schemas = result.get("components", {}).get("schemas", {})
    for component, rules in _COMPONENT_RULES.items():
        for name in (component, f"{component}Request"):
            if name in schemas:
                schemas[name].update(rules)
    return result
