"""One error format for the whole API.

Every error answer, from DRF or from Django (unknown URL, server error), has the body::

    {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}

``code`` is stable and machine-readable; ``message`` is for people, in the request's language; ``fields``
maps a field name to its messages (``non_field_errors`` for the whole object).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import AppError


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The error envelope.

    >>> error_body("full", "No numbers left.")
    {'error': {'code': 'full', 'message': 'No numbers left.', 'fields': {}}}
    """
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, list):
        return [msg for item in detail for msg in _flatten(item)]
    if isinstance(detail, dict):
        return [msg for item in detail.values() for msg in _flatten(item)]
    return [str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF hook: an ``AppError`` answers with its catalogue status and code; for anything else let DRF build
    the response (status, headers), then rewrite its body into the envelope."""
    if isinstance(exc, AppError):
        return Response(exc.body(), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: Django's handler500 answers in the same format
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = {str(k): _flatten(v) for k, v in detail.items()} if isinstance(detail, dict) else {}
        if not isinstance(detail, dict):
            fields = {"non_field_errors": _flatten(detail)}
        response.data = error_body("invalid", _("Some of the values sent are not valid."), fields)
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(str(code), " ".join(_flatten(exc.detail)))
    else:  # Http404 and PermissionDenied from Django, already given a status by DRF
        code = "not_found" if response.status_code == status.HTTP_404_NOT_FOUND else "permission_denied"
        response.data = error_body(code, " ".join(_flatten(response.data.get("detail", ""))))
    return response


class CsrfRequired(BasePermission):
    """CSRF protection for endpoints that create a session (sign-in), even for anonymous requests.

    DRF's SessionAuthentication checks CSRF only once a user is signed in, so without this a cross-site form
    could post the attacker's own credentials and sign the victim's browser into the attacker's account
    (login CSRF). Clients take the token from ``GET /api/v1/auth/csrf/`` (cookie and body) and send it back
    in the ``X-CSRFToken`` header.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        SessionAuthentication().enforce_csrf(request)  # raises PermissionDenied("CSRF Failed: ...")
        return True


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 (a suspicious request, a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``): JSON under /api/."""
    too_large = isinstance(exception, RequestDataTooBig)
    if too_large:
        code, message, status_code = "too_large", _("The request body is too large."), 413
    else:
        code, message, status_code = "bad_request", _("The request could not be understood."), 400
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code, message), status=status_code)
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8", status=status_code)


def json_not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("not_found", _("There is nothing at this address.")), status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body("server_error", _("Something went wrong on our side. Please try again.")), status=500
    )
