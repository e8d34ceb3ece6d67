"""Pages and endpoints that belong to the platform rather than to one app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView

from core import api
from hospital.health import health_status
from hospital.middleware import CONTENT_SECURITY_POLICY
from medcard.selectors import messages_unread_count, user_roles

TEXT_SIZE_COOKIE = "text_size"
TEXT_SIZES = ("normal", "large")


def preferences(request: HttpRequest) -> dict[str, Any]:
    """Template context: the remembered text size and the hospital's name in the active language."""
    language = get_language() or settings.LANGUAGE_CODE
    return {
        "large_text": request.COOKIES.get(TEXT_SIZE_COOKIE) == "large",
        "hospital_name": settings.HOSPITAL_NAME.get(language, settings.HOSPITAL_NAME["zh-hans"]),
    }


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.headers.get("referer") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return "/"
    return target


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI. The split view serves its start-up script as a file (no inline script); Swagger UI adds
    <style> elements as it renders, so this page alone also allows inline styles."""

    @extend_schema(exclude=True)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().get(request, *args, **kwargs)
        if response.get("Content-Type", "").startswith("text/html"):
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
                "style-src 'self'", "style-src 'self' 'unsafe-inline'", 1
            )
        return response


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    roles = user_roles(user=request.user) if request.user.is_authenticated else []
    unread = 0
    if request.user.is_authenticated and getattr(request.user, "kind", "") == "patient":
        unread = messages_unread_count(account=request.user)
    return render(request, "hospital/home.html", {"user_roles": roles, "unread_messages": unread})


@require_POST
def text_size(request: HttpRequest) -> HttpResponse:
    """Remember the chosen text size for a year in a cookie, so it works signed out and without JavaScript."""
    size = request.POST.get("size", "")
    if size not in TEXT_SIZES:
        return HttpResponseBadRequest(_("Unknown text size: choose normal or large."))
    response = HttpResponseRedirect(_safe_next(request))
    response.set_cookie(
        TEXT_SIZE_COOKIE,
        size,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=request.is_secure(),
        httponly=True,
    )
    return response


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    status = health_status()
    # 503 only when this host cannot serve (no database): a Redis outage must not take every web host out
    # of the load balancer; "degraded" in the body tells the monitoring what is wrong.
    return JsonResponse(status, status=503 if status["status"] == "down" else 200)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api.json_not_found(request)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api.json_server_error(request)
    return render(request, "500.html", status=500)
