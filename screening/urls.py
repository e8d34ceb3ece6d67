"""Screening pages (mounted at /screening/): the patient's uploads and status, and the staff review pages."""

from django.urls import path

from screening import staff_views, views

app_name = "screening"

urlpatterns = [
    path("bookings/<int:booking_id>/uploads/", views.booking_uploads, name="booking-uploads"),
    path("bookings/<int:booking_id>/status/", views.booking_status, name="booking-status"),
    path("bookings/<int:booking_id>/confirm/", views.booking_confirm, name="booking-confirm"),
    path("bookings/<int:booking_id>/review/", views.booking_review_request, name="booking-review-request"),
    path("uploads/<int:upload_id>/file/", views.upload_file, name="upload-file"),
    path("staff/", staff_views.queue, name="staff-queue"),
    path("staff/audit/", staff_views.audit, name="staff-audit"),
    path("staff/history/", staff_views.history, name="staff-history"),
    path("staff/cases/<int:case_id>/", staff_views.case_detail, name="staff-case"),
    path(
        "staff/uploads/<int:upload_id>/pages/<int:page>/", staff_views.upload_page, name="staff-upload-page"
    ),
]
