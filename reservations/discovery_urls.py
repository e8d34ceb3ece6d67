"""URLs for finding a number: ``urlpatterns`` (pages, for the ``reservations`` namespace) and
``api_urlpatterns`` (for /api/v1/)."""

from django.urls import path

from reservations import discovery_views
from reservations.discovery_api import api_urlpatterns

urlpatterns = [
    path("departments/", discovery_views.department_list, name="departments"),
    path("departments/<slug:code>/", discovery_views.department_detail, name="department"),
    path(
        "departments/<slug:code>/sessions/<int:session_id>/",
        discovery_views.session_detail,
        name="session",
    ),
]

__all__ = ["api_urlpatterns", "urlpatterns"]
