"""Patient pages of the reservations app: finding a number (discovery) and holding, paying, cancelling."""

from django.urls import path

from reservations import booking_views, discovery_urls, discovery_views

app_name = "reservations"
urlpatterns = [
    path("", discovery_views.department_list, name="department-list"),
    *discovery_urls.urlpatterns,
    path("hold/", booking_views.hold, name="hold"),
    path("appointments/", booking_views.booking_list, name="bookings"),
    path("appointments/<int:booking_id>/", booking_views.booking_detail, name="booking-detail"),
    path("appointments/<int:booking_id>/pay/", booking_views.booking_pay, name="booking-pay"),
    path("appointments/<int:booking_id>/cancel/", booking_views.booking_cancel, name="booking-cancel"),
    path("sessions/<int:session_id>/waitlist/", booking_views.waitlist_join, name="waitlist-join"),
]
