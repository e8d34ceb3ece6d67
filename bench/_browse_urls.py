"""The site's URLs plus the benchmark's trivial view."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from hospital.urls import handler404, handler500
from hospital.urls import urlpatterns as site_urlpatterns


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/trivial/", trivial), *site_urlpatterns]

__all__ = ["handler404", "handler500", "urlpatterns"]
