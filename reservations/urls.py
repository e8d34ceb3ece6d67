"""Patient pages of the reservations app: finding a number (discovery) and holding, paying, cancelling."""

from django.urls import path

from reservations import booking_views, desk_views, discovery_urls, discovery_views, staff_views

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
    path("appointments/<int:booking_id>/cancel/", booking_views.booking_cancel, name="booking-cancel"),
    path("sessions/<int:session_id>/waitlist/", booking_views.waitlist_join, name="waitlist-join"),
    path("staff/sessions/", staff_views.sessions_of_day, name="staff-sessions"),
    path("staff/sessions/<int:session_id>/stop/", staff_views.session_stop, name="staff-session-stop"),
    path(
        "staff/sessions/<int:session_id>/reveal/",
        staff_views.session_reveal_names,
        name="staff-session-reveal",
    ),
    path("staff/receipts/<int:payment_id>/", staff_views.receipt, name="staff-receipt"),
    path("desk/", desk_views.desk_home, name="desk-home"),
    path("desk/patients/<int:patient_id>/", desk_views.desk_patient, name="desk-patient"),
    path("desk/appointments/<int:booking_id>/check-in/", desk_views.desk_check_in, name="desk-check-in"),
    path("desk/appointments/<int:booking_id>/ticket/", desk_views.desk_ticket, name="desk-ticket"),
    path("desk/patients/<int:patient_id>/walk-in/", desk_views.walk_in, name="desk-walk-in"),
    path(
        "desk/patients/<int:patient_id>/walk-in/confirm/",
        desk_views.walk_in_confirm,
        name="desk-walk-in-confirm",
    ),
    path("desk/payments/<int:payment_id>/code/", desk_views.desk_code, name="desk-code"),
    path("staff/slots/<int:slot_id>/extra/", staff_views.slot_extra, name="staff-slot-extra"),
    path("staff/appointments/<int:booking_id>/check-in/", staff_views.check_in, name="staff-check-in"),
    path(
        "staff/appointments/<int:booking_id>/desk-payment/",
        staff_views.desk_payment,
        name="staff-desk-payment",
    ),
]
