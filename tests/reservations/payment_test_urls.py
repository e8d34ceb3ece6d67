"""The site's URLs, plus the payment modules' own where the site did not mount them: hospital/urls.py
mounts the sandbox gateway only when ``PAYMENT_SANDBOX`` was on at import, and the payment tests turn the
sandbox on per test."""

from django.urls import URLResolver, include, path

from hospital.urls import handler404, handler500
from hospital.urls import urlpatterns as site_urlpatterns

_mounted = {p.namespace for p in site_urlpatterns if isinstance(p, URLResolver)}

urlpatterns = list(site_urlpatterns)
if "sandbox_gateway" not in _mounted:
    urlpatterns.append(path("sandbox-gateway/", include("reservations.payments.sandbox.urls")))
if "payment_notify" not in _mounted:
    urlpatterns.append(path("payments/notify/", include("reservations.payments.notify_urls")))

__all__ = ["handler404", "handler500", "urlpatterns"]
