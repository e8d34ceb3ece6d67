from django.urls import path

from medcard import message_views, views

app_name = "medcard"
urlpatterns = [
    path("login/", views.patient_login, name="login"),
    path("login/password/", views.patient_password_login, name="password-login"),
    path("staff-login/", views.staff_login, name="staff-login"),
    path("logout/", views.sign_out, name="logout"),
    path("deactivate/", views.account_deactivate, name="deactivate"),
    path("password/", views.account_password, name="password"),
    path("messages/", message_views.message_list, name="messages"),
    path("patients/", views.patient_list, name="patient-list"),
    path("patients/add/", views.patient_add, name="patient-add"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient-detail"),
    path("patients/<int:patient_id>/qr/", views.card_qr, name="card-qr"),
    path("patients/<int:patient_id>/print/", views.card_print, name="card-print"),
    path("patients/<int:patient_id>/report-lost/", views.card_report_lost, name="card-report-lost"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient-edit"),
    path("patients/<int:patient_id>/remove/", views.patient_remove, name="patient-remove"),
    path("patients/<int:patient_id>/correct/", views.patient_correct, name="patient-correct"),
    path("patients/<int:patient_id>/verify/", views.patient_verify_again, name="patient-verify"),
    path("patients/<int:patient_id>/access/", views.patient_access_log, name="patient-access"),
    path("desk/", views.desk_scan, name="desk-scan"),
    path("desk/patients/<int:patient_id>/reveal/", views.desk_reveal, name="desk-reveal"),
    path("audit/", views.audit_search, name="audit-search"),
]
