"""Dosing pages (mounted at /dosing/): the pharmacist's worklist and courses, and the batch simulations."""

from django.urls import include, path

from dosing import views

app_name = "dosing"

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("courses/new/", views.course_new, name="course-new"),
    path("courses/<int:course_id>/", views.course_detail, name="course"),
    path("courses/<int:course_id>/details/", views.course_details, name="course-details"),
    path("courses/<int:course_id>/doses/", views.course_doses, name="course-doses"),
    path("courses/<int:course_id>/doses/<int:entry_id>/", views.dose_edit, name="dose-edit"),
    path("courses/<int:course_id>/levels/", views.course_level, name="course-level"),
    path("courses/<int:course_id>/levels/<int:entry_id>/", views.level_edit, name="level-edit"),
    path(
        "courses/<int:course_id>/screening-creatinine/",
        views.course_use_screening_creatinine,
        name="course-screening-creatinine",
    ),
    path("courses/<int:course_id>/refit/", views.course_refit, name="course-refit"),
    path("courses/<int:course_id>/next-level/", views.course_next_level, name="course-next-level"),
    path("courses/<int:course_id>/sign/", views.course_sign, name="course-sign"),
    path("courses/<int:course_id>/close/", views.course_close, name="course-close"),
    path("courses/<int:course_id>/report.pdf", views.course_report, name="course-report"),
    path("batch/", include("dosing.batch.urls")),
]
