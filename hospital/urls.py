"""Top-level URLs: pages per app, the API under /api/v1/, the schema and its docs, health."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from hospital import views

api_v1 = [
    path("", include("medcard.api")),
    path("", include("medcard.message_api")),
    path("", include("reservations.api")),
    path("", include("screening.api")),
    path("", include("dosing.api")),
    path("dosing/batch/", include("dosing.batch.api")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("preferences/text-size", views.text_size, name="text-size"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("medcard.urls")),
    path("booking/", include("reservations.urls")),
    path("screening/", include("screening.urls")),
    path("dosing/", include("dosing.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", views.ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("payments/notify/", include("reservations.payments.notify_urls")),
]

if settings.PAYMENT_SANDBOX:
    # The local stand-in for WeChat Pay and Alipay (dev, tests, training); never mounted in production.
    urlpatterns.append(path("sandbox-gateway/", include("reservations.payments.sandbox.urls")))

handler400 = "core.api.bad_request"
handler404 = "hospital.views.not_found"
handler500 = "hospital.views.server_error"
