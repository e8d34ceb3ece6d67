"""URLs for the discovery tests until the pages and API are wired into hospital.urls: the platform's pages
that base.html links to, the discovery pages under the ``reservations`` namespace with a stand-in for the
hold view (the form's target), and the discovery API under /api/v1/.

Built from the parts rather than from hospital.urls, which already mounts a ``reservations`` namespace."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from hospital import views
from reservations import discovery_urls


def hold_stand_in(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hold")


pages = [*discovery_urls.urlpatterns, path("hold/", hold_stand_in, name="hold")]

urlpatterns = [
    path("", views.home, name="home"),
    path("preferences/text-size", views.text_size, name="text-size"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("medcard.urls")),
    path("booking/", include((pages, "reservations"))),
    path("api/v1/", include(discovery_urls.api_urlpatterns)),
]

handler404 = "hospital.views.not_found"
handler500 = "hospital.views.server_error"
