"""Screening pages (mounted at /screening/)."""

from django.urls import path

from screening import views

app_name = "screening"

urlpatterns = [
    path("bookings/<int:booking_id>/uploads/", views.booking_uploads, name="booking-uploads"),
    path("uploads/<int:upload_id>/file/", views.upload_file, name="upload-file"),
]
