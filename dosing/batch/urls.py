"""Batch simulation pages, mounted at /dosing/batch/ (in the ``dosing`` namespace)."""

from django.urls import path

from dosing.batch import views

urlpatterns = [
    path("", views.job_list, name="batch-list"),
    path("new/pta/", views.new_pta, name="batch-new-pta"),
    path("new/evaluation/", views.new_evaluation, name="batch-new-evaluation"),
    path("<int:job_id>/", views.job_detail, name="batch-job"),
    path("<int:job_id>/results.csv", views.job_results_csv, name="batch-results-csv"),
]
