"""The site's URLs plus the payment modules' own, until hospital/urls.py includes them."""

from django.urls import include, path

from hospital.urls import handler404, handler500
from hospital.urls import urlpatterns as site_urlpatterns

urlpatterns = [
    *site_urlpatterns,
    path("sandbox-gateway/", include("reservations.payments.sandbox_urls")),
    path("payments/notify/", include("reservations.payments.notify_urls")),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
