"""Patient pages of the reservations app: finding a number (discovery) and holding, paying, cancelling."""

from django.urls import path

from reservations import (
    booking_views,
    dashboard_views,
    desk_views,
    discovery_urls,
    discovery_views,
    queue_views,
    staff_views,
)

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
    path(
        "staff/sessions/<int:session_id>/reveal/",
        staff_views.session_reveal_names,
        name="staff-session-reveal",
    ),
    path("staff/dashboard/", dashboard_views.day_dashboard, name="staff-dashboard"),
    path("staff/dashboard.csv", dashboard_views.day_dashboard_csv, name="staff-dashboard-csv"),
    path("staff/receipts/<int:payment_id>/", staff_views.receipt, name="staff-receipt"),
    path("desk/", desk_views.desk_home, name="desk-home"),
    path("kiosk/", desk_views.kiosk, name="kiosk"),
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
    path("desk/no-shows/<int:booking_id>/waive/", desk_views.no_show_waive, name="desk-no-show-waive"),
    path("console/", queue_views.console_home, name="console-home"),
    path("console/sessions/<int:session_id>/", queue_views.console, name="console"),
    path("console/sessions/<int:session_id>/call/", queue_views.console_call_next, name="console-call"),
    path("console/entries/<int:entry_id>/<str:action>/", queue_views.console_move, name="console-move"),
    path("staff/queue/<int:entry_id>/requeue/", queue_views.queue_requeue, name="staff-queue-requeue"),
    path("staff/queue/<int:entry_id>/flag/", queue_views.queue_priority, name="staff-queue-flag"),
    path("check-in/<str:token>/", queue_views.self_check_in, name="self-check-in"),
    path("staff/posters/", queue_views.posters, name="staff-posters"),
    path("board/<slug:department_code>/", queue_views.board, name="board"),
    path("board/<slug:department_code>/stream/", queue_views.board_stream, name="board-stream"),
    path("appointments/<int:booking_id>/queue/", queue_views.my_place, name="my-place"),
    path("appointments/<int:booking_id>/queue/stream/", queue_views.my_place_stream, name="my-place-stream"),
    path("staff/slots/<int:slot_id>/extra/", staff_views.slot_extra, name="staff-slot-extra"),
    path("staff/appointments/<int:booking_id>/check-in/", staff_views.check_in, name="staff-check-in"),
    path(
        "staff/appointments/<int:booking_id>/desk-payment/",
        staff_views.desk_payment,
        name="staff-desk-payment",
    ),
]
