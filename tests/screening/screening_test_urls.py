"""The site's URLs plus the screening pages (/screening/) and API (/api/v1/), until hospital.urls mounts
them. Built on hospital.urls' list rather than including it, so no namespace is mounted twice."""

from django.urls import include, path

from hospital.urls import urlpatterns as base

urlpatterns = [
    *base,
    path("screening/", include("screening.urls")),
    path("api/v1/", include("screening.api")),
]

handler404 = "hospital.views.not_found"
handler500 = "hospital.views.server_error"
