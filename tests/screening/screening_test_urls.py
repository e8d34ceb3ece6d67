"""The site's URLs: hospital.urls now mounts the screening pages (/screening/) and API (/api/v1/)."""

from hospital.urls import handler404, handler500, urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]
