"""One way to answer a refusal that no view caught: the API's error body under /api/, a page elsewhere."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from core.errors import AppError


class RefusalMiddleware:
    """Turn an ``AppError`` that escaped a view into its status: JSON for the API (DRF's handler answers its
    own views first), the ``refusal.html`` page (``404.html`` for ``not_found``) for everything else. Views
    that want to show a refusal next to a form still catch it themselves."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, AppError):
            return None
        if request.path.startswith("/api/"):
            return JsonResponse(exception.body(), status=exception.status)
        template = "404.html" if exception.status == 404 else "refusal.html"
        return render(request, template, {"refusal": exception}, status=exception.status)
