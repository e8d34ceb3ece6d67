"""What the OpenAPI schema must say beyond what drf-spectacular reads from the views.

Every operation can refuse: bad input (400, 422), no or not enough rights (401, 403), nothing there (404), a
state that refuses (409), too large or of the wrong type (413, 415), too many tries (429), a busy provider
(503). All of them answer the one error format of :mod:`core.api`, so each operation lists them with that
body; a client (and schemathesis) can rely on any status the API answers being documented.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import CATALOGUE

ERROR_COMPONENT = "Error"
# DRF's own refusals (parse error, authentication, permission, method, media type, throttling) and every
# status of the refusal catalogue.
ERROR_STATUSES = sorted({400, 401, 403, 404, 405, 415, 429} | {r.status for r in CATALOGUE.values()})
_WORDS = {
    400: "The request is malformed or a value is not valid (see fields).",
    401: "Not signed in.",
    403: "Signed in without the right to do this, or the CSRF token is missing.",
    404: "Nothing at this address, or not yours to see.",
    405: "This method is not allowed here.",
    409: "The current state refuses it (full, closed, already done); the code says which.",
    413: "The request or the file is too large.",
    415: "This media type is not accepted.",
    422: "The request is incomplete for this action (a reason, a count).",
    429: "Too many tries; wait and try again.",
    503: "A provider (payment gateway) is busy; try again.",
}
_ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error format of the API.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable."},
                "message": {"type": "string", "description": "For people, in the request's language."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Messages by field name (non_field_errors for the whole request).",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error statuses on every operation, with the error body."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = _ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status in ERROR_STATUSES:
                responses.setdefault(
                    str(status),
                    {"description": _WORDS[status], "content": {"application/json": {"schema": ref}}},
                )
    return result


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        "example": "08:00",
        "description": "A clock time in the hospital's time zone (Asia/Shanghai), hours and minutes.",
    }
)
class ClockTimeField(serializers.TimeField):
    """A local clock time as ``HH:MM``, as the hospital prints it. Not an OpenAPI ``format: time`` (RFC 3339
    ``partial-time`` has seconds), so the schema says exactly what is sent."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("format", "%H:%M")
        super().__init__(**kwargs)


class KeyField(serializers.IntegerField):
    """The id of a row, as a request names it: a positive 64-bit integer. A larger number names no row and is
    refused with the field's name, before any lookup (SQLite could not take it in a foreign-key lookup)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)
