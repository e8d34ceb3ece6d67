"""Request guards that apply to every page and endpoint."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _

from core import api

Handler = Callable[[HttpRequest], HttpResponse]


def bad_request(request: HttpRequest, code: str, message: str, *, status: int = 400) -> HttpResponse:
    """A refusal in the API's JSON error format under /api/, plain text elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse(api.error_body(code, message), status=status)
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8", status=status)


class NulByteMiddleware:
    """Refuse a NUL character in the address or its query string with a clear 400.

    PostgreSQL text cannot hold NUL (psycopg2 raises ``ValueError`` on it), so a ``?q=%00`` that reached a
    query would be a server error. Forms and API serializers refuse NUL in bodies themselves (Django's and
    DRF's ``ProhibitNullCharactersValidator``); query parameters and path segments are read raw, so they are
    checked here, once, for every view.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path_info or any(
            "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
        ):
            return bad_request(request, "invalid", _("The address contains a character that is not allowed."))
        return self.get_response(request)


# No inline script anywhere (every script is a static file), so scripts need no nonce. Inline style
# *attributes* stay allowed (the staff page positions the boxes of the fields read with them); <style>
# elements and every other source must be this site.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Send the Content-Security-Policy on every answer (pages, API, admin, errors) that has none yet."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
