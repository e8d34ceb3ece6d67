"""Dosing pages, mounted at /dosing/."""

from django.urls import include, path

app_name = "dosing"

urlpatterns = [
    path("batch/", include("dosing.batch.urls")),
]
