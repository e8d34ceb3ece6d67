"""Patient pages of the reservations app: finding a number (discovery) and holding, paying, cancelling."""

from django.urls import path

from reservations import booking_views, discovery_urls, discovery_views, staff_views

app_name = "reservations"
urlpatterns = [
    path("", discovery_views.department_list, name="department-list"),
    *discovery_urls.urlpatterns,
    path("hold/", booking_views.hold, name="hold"),
    path("appointments/", booking_views.booking_list, name="bookings"),
    path("appointments/<int:booking_id>/", booking_views.booking_detail, name="booking-detail"),
    path("appointments/<int:booking_id>/pay/", booking_views.booking_pay, name="booking-pay"),
    path(
        "appointments/<int:booking_id>/wechat-pay/",
        booking_views.booking_wechat_pay,
        name="booking-wechat-pay",
    ),
    path("wechat/oauth/callback/", booking_views.wechat_oauth_callback, name="wechat-oauth-callback"),
    path(
        "appointments/<int:booking_id>/reschedule/",
        booking_views.booking_reschedule,
        name="booking-reschedule",
    ),
    path("appointments/<int:booking_id>/cancel/", booking_views.booking_cancel, name="booking-cancel"),
    path(
        "appointments/<int:booking_id>/payment-status/",
        booking_views.booking_payment_status,
        name="booking-payment-status",
    ),
    path("sessions/<int:session_id>/waitlist/", booking_views.waitlist_join, name="waitlist-join"),
    path("waitlist/<int:entry_id>/leave/", booking_views.waitlist_leave, name="waitlist-leave"),
    path("staff/sessions/", staff_views.sessions_of_day, name="staff-sessions"),
    path("staff/sessions/<int:session_id>/stop/", staff_views.session_stop, name="staff-session-stop"),
    path("staff/slots/<int:slot_id>/extra/", staff_views.slot_extra, name="staff-slot-extra"),
    path("staff/appointments/<int:booking_id>/check-in/", staff_views.check_in, name="staff-check-in"),
    path(
        "staff/appointments/<int:booking_id>/desk-payment/",
        staff_views.desk_payment,
        name="staff-desk-payment",
    ),
]
