"""Batch pages: pharmacists create, follow and download jobs; others get 404; bad input stores nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from dosing.batch import services
from dosing.batch.models import BatchJob
from dosing.engine import simulate
from medcard.models import User
from tests.dosing.batch.conftest import COHORT_CSV, SMALL_PTA, client_for

pytestmark = pytest.mark.django_db

PTA_FORM = {
    "title": "Thomson adults",
    "model": "thomson_2009",
    "population": "adult_general",
    "n_patients": "1200",
    "seed": "3",
    "auc24_low": "400",
    "auc24_high": "600",
    "dose_1": "1000",
    "interval_1": "12",
    "infusion_1": "1",
    "dose_2": "1500",
    "interval_2": "24",
    "infusion_2": "1.5",
}


def test_pharmacist_runs_a_pta_job_and_downloads_its_csv(
    pharmacist_client: Client, eager: Callable[..., Any]
) -> None:
    assert pharmacist_client.get(reverse("dosing:batch-list")).status_code == 200
    assert pharmacist_client.get(reverse("dosing:batch-new-pta")).status_code == 200
    with eager():
        response = pharmacist_client.post(reverse("dosing:batch-new-pta"), PTA_FORM)
    job = BatchJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("dosing:batch-job", args=[job.pk])
    assert job.status == "done" and job.n_chunks == 1  # 1200 patients in the default 5000-patient chunks
    spec = {**SMALL_PTA, "chunk_size": 5000}
    spec.pop("chunk_size")
    assert job.result == simulate.pta_run(simulate.pta_spec(job.spec))
    page = pharmacist_client.get(reverse("dosing:batch-job", args=[job.pk])).content.decode()
    assert "Thomson adults" in page and 'http-equiv="refresh"' not in page
    pta = job.result["regimens"][0]["pta"]
    assert f"{round(pta * 100)}%" in page
    download = pharmacist_client.get(reverse("dosing:batch-results-csv", args=[job.pk]))
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert [float(r["dose_mg"]) for r in rows] == [1000.0, 1500.0]
    assert float(rows[0]["pta"]) == pta
    assert rows[0]["model"] == "thomson_2009" and rows[0]["population"] == "adult_general"
    assert rows[0]["seed"] == "3" and rows[0]["n_patients"] == "1200"


def test_running_job_page_shows_progress_and_refreshes_itself(
    pharmacist: User, pharmacist_client: Client
) -> None:
    job = services.batch_job_create(user=pharmacist, kind="pta", title="slow", spec=dict(SMALL_PTA))
    services.batch_chunk_store(job_id=job.pk, index=0)
    page = pharmacist_client.get(reverse("dosing:batch-job", args=[job.pk])).content.decode()
    assert 'http-equiv="refresh"' in page
    assert '<progress value="1" max="3"' in page and "1 of 3 parts done (33%)" in page
    assert pharmacist_client.get(reverse("dosing:batch-results-csv", args=[job.pk])).status_code == 404


def test_pages_are_in_chinese_for_a_chinese_browser(pharmacist_client: Client) -> None:
    page = pharmacist_client.get(
        reverse("dosing:batch-new-pta"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "目标达成" in page


def test_pta_with_a_covariate_csv_uses_its_patients(
    pharmacist_client: Client, eager: Callable[..., Any]
) -> None:
    upload = SimpleUploadedFile(
        "cohort.csv", b"age_years,sex,weight_kg,scr_umol_l\n64,male,82,97\n80,female,50,130\n", "text/csv"
    )
    with eager():
        response = pharmacist_client.post(
            reverse("dosing:batch-new-pta"), {**PTA_FORM, "population": "csv", "covariates_file": upload}
        )
    assert response.status_code == 302
    job = BatchJob.objects.get()
    assert job.status == "done" and len(job.spec["covariates"]) == 2 and job.input_filename == "cohort.csv"
    assert "age_years,sex" in job.input_csv


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"age_years,sex,weight_kg,scr_mg_dl\n64,male,82,1.0\n70,male,abc,1.0\n",
            "Row 3, column “weight_kg”",
        ),
        (b"age_years,sex,weight,scr_mg_dl\n64,male,82,1.0\n", "Row 1, column “weight”: Unknown column"),
        (b"age_years,sex,weight_kg,scr_mg_dl\n64,male,82,45\n", "Row 2, column “scr_mg_dl”: 45 is outside"),
        (
            b"age_years,sex,weight_kg,scr_mg_dl\n64,x,82,1\n",
            "Row 2, column “sex”: Sex must be male or female",
        ),
        (b"", "The submitted file is empty."),
    ],
)
def test_bad_covariate_csv_is_refused_naming_row_and_column(
    pharmacist_client: Client, content: bytes, message: str
) -> None:
    upload = SimpleUploadedFile("bad.csv", content, "text/csv")
    response = pharmacist_client.post(
        reverse("dosing:batch-new-pta"), {**PTA_FORM, "population": "csv", "covariates_file": upload}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not BatchJob.objects.exists()


def test_bad_csv_message_is_in_chinese_for_a_chinese_browser(pharmacist_client: Client) -> None:
    upload = SimpleUploadedFile("bad.csv", b"age_years,sex,weight_kg,scr_mg_dl\n64,male,abc,1\n", "text/csv")
    response = pharmacist_client.post(
        reverse("dosing:batch-new-pta"),
        {**PTA_FORM, "population": "csv", "covariates_file": upload},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "第 2 行" in response.content.decode() and "weight_kg" in response.content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"dose_1": ""}, "dose_1", "This field is required."),
        ({"infusion_2": "30"}, "infusion_2", "Ensure this value is less than or equal to 24"),
        ({"infusion_2": "20", "interval_2": "12"}, "infusion_2", "cannot last longer than the interval"),
        ({"dose_2": ""}, "dose_2", "Give the dose, the interval and the infusion time."),
        ({"auc24_high": "300"}, "auc24_high", "must be above the lower one"),
        ({"trough_low": "10"}, "trough_high", "Give both trough bounds, or neither."),
        ({"n_patients": "0"}, "n_patients", "greater than or equal to 1"),
        ({"population": "csv"}, "covariates_file", "Choose the CSV file of covariates."),
        ({"model": "revilla_2010"}, "model", "The model needs a value the covariates do not give"),
    ],
)
def test_bad_form_entries_get_a_message_on_their_field(
    pharmacist_client: Client, changes: dict[str, str], field: str, message: str
) -> None:
    response = pharmacist_client.post(reverse("dosing:batch-new-pta"), {**PTA_FORM, **changes})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert not BatchJob.objects.exists()


def test_pharmacist_evaluates_a_model_on_a_cohort(
    pharmacist_client: Client, eager: Callable[..., Any]
) -> None:
    assert pharmacist_client.get(reverse("dosing:batch-new-evaluation")).status_code == 200
    upload = SimpleUploadedFile("cohort.csv", COHORT_CSV.encode(), "text/csv")
    with eager():
        response = pharmacist_client.post(
            reverse("dosing:batch-new-evaluation"), {"model": "goti_2018", "cohort_file": upload}
        )
    assert response.status_code == 302
    job = BatchJob.objects.get()
    assert job.status == "done" and job.result["n_levels"] == 6
    page = pharmacist_client.get(reverse("dosing:batch-job", args=[job.pk])).content.decode()
    assert "Forecast from 1 earlier level" in page and "MAPE" in page
    metrics = pharmacist_client.get(reverse("dosing:batch-results-csv", args=[job.pk])).content.decode()
    stages = [r["stage"] for r in csv.DictReader(io.StringIO(metrics))]
    assert stages[:3] == ["a_priori", "population_all", "after_1"]
    predictions = pharmacist_client.get(
        reverse("dosing:batch-results-csv", args=[job.pk]) + "?part=predictions"
    ).content.decode()
    rows = list(csv.DictReader(io.StringIO(predictions)))
    assert len(rows) == 6 and rows[0]["patient_id"] == "P1" and rows[0]["forecast_mg_per_l"] == ""
    assert rows[1]["forecast_mg_per_l"] != ""


def test_cohort_with_a_level_before_any_dose_is_refused(pharmacist_client: Client) -> None:
    bad = COHORT_CSV.replace("P3,level,11.5", "P3,level,-1")
    upload = SimpleUploadedFile("cohort.csv", bad.encode(), "text/csv")
    response = pharmacist_client.post(
        reverse("dosing:batch-new-evaluation"), {"model": "goti_2018", "cohort_file": upload}
    )
    assert response.status_code == 400
    assert "Row 13, column “time_h”: The level at -1 h of patient P3" in response.content.decode()
    assert not BatchJob.objects.exists()


@pytest.mark.parametrize("who", ["patient", "desk", "administrator", "other_pharmacist"])
def test_outsiders_get_404_everywhere(
    who: str, request: pytest.FixtureRequest, pharmacist: User, eager: Callable[..., Any]
) -> None:
    with eager():
        job = services.batch_job_create(user=pharmacist, kind="pta", title="mine", spec=dict(SMALL_PTA))
    client = client_for(request.getfixturevalue(who))
    urls = [
        reverse("dosing:batch-job", args=[job.pk]),
        reverse("dosing:batch-results-csv", args=[job.pk]),
    ]
    if who != "other_pharmacist":
        urls += [
            reverse("dosing:batch-list"),
            reverse("dosing:batch-new-pta"),
            reverse("dosing:batch-new-evaluation"),
        ]
        assert client.post(reverse("dosing:batch-new-pta"), PTA_FORM).status_code == 404
    for url in urls:
        assert client.get(url).status_code == 404, url
    if who == "other_pharmacist":
        assert "mine" not in client.get(reverse("dosing:batch-list")).content.decode()
    assert BatchJob.objects.count() == 1


def test_signed_out_visitors_are_sent_to_the_staff_sign_in() -> None:
    response = Client().get(reverse("dosing:batch-list"))
    assert response.status_code == 302 and reverse("medcard:staff-login") in response["Location"]
