"""Batch API (/api/v1/dosing/batch/): pharmacists' sessions only, the project's error envelope, schema."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from dosing.batch import services
from dosing.batch.models import BatchJob
from dosing.engine import simulate
from medcard.models import User
from tests.dosing.batch.conftest import COHORT_CSV, SMALL_PTA, client_for

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/dosing/batch/jobs"


def test_pharmacist_starts_a_pta_job_and_reads_its_result(
    pharmacist_client: Client, eager: Callable[..., Any]
) -> None:
    body = {"kind": "pta", "title": "api", **SMALL_PTA}
    with eager():
        response = pharmacist_client.post(JOBS, body, content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "queued" and created["n_chunks"] == 3  # as stored before the chunks ran
    detail = pharmacist_client.get(created["url"]).json()
    assert detail["status"] == "done" and detail["progress_percent"] == 100
    assert detail["result"] == simulate.pta_run(simulate.pta_spec(SMALL_PTA))
    assert detail["inputs"]["population"] == "adult_general" and detail["inputs"]["seed"] == "3"
    assert [j["id"] for j in pharmacist_client.get(JOBS).json()] == [created["id"]]
    text = pharmacist_client.get(detail["results_csv_url"]).content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert float(rows[1]["pta"]) == detail["result"]["regimens"][1]["pta"]


def test_pharmacist_starts_an_evaluation_with_a_cohort_csv(
    pharmacist_client: Client, eager: Callable[..., Any]
) -> None:
    body = {"kind": "evaluation", "model": "goti_2018", "cohort_csv": COHORT_CSV, "chunk_size": 2}
    with eager():
        response = pharmacist_client.post(JOBS, body, content_type="application/json")
    assert response.status_code == 201, response.content
    detail = pharmacist_client.get(response.json()["url"]).json()
    assert detail["status"] == "done" and detail["n_chunks"] == 2
    assert detail["result"]["metrics"]["bayesian_all"]["n"] == 3


def test_bad_covariate_csv_is_refused_on_its_field_with_row_and_column(pharmacist_client: Client) -> None:
    body = {
        "kind": "pta",
        **{k: v for k, v in SMALL_PTA.items() if k != "population"},
        "covariates_csv": "age_years,sex,weight_kg,scr_mg_dl\n64,male,82,1\n70,male,,1\n",
    }
    response = pharmacist_client.post(JOBS, body, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"]["covariates_csv"] == ["Row 3, column “weight_kg”: A value is missing."]
    assert not BatchJob.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"regimens": [{"dose_mg": -5, "interval_h": 12, "infusion_h": 1}]}, "regimens"),
        ({"model": "no_such_model"}, "model"),
        ({"population": "martians"}, "population"),
        ({"n_patients": None}, "n_patients"),
        ({"covariates_csv": "age_years\n50\n"}, "population"),
    ],
)
def test_bad_requests_get_the_error_envelope_and_store_nothing(
    pharmacist_client: Client, changes: dict[str, Any], field: str
) -> None:
    body = {"kind": "pta", **SMALL_PTA, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    response = pharmacist_client.post(JOBS, body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not BatchJob.objects.exists()


def test_evaluation_with_a_level_before_its_dose_is_refused(pharmacist_client: Client) -> None:
    body = {
        "kind": "evaluation",
        "model": "goti_2018",
        "cohort_csv": COHORT_CSV.replace("P2,level,11.5", "P2,level,-2"),
    }
    response = pharmacist_client.post(JOBS, body, content_type="application/json")
    assert response.status_code == 400
    [message] = response.json()["error"]["fields"]["cohort_csv"]
    assert message.startswith("Row 10, column “time_h”")


@pytest.mark.parametrize("who", ["patient", "desk", "administrator", "other_pharmacist"])
def test_outsiders_get_404(who: str, request: pytest.FixtureRequest, pharmacist: User) -> None:
    job = services.batch_job_create(user=pharmacist, kind="pta", title="mine", spec=dict(SMALL_PTA))
    client = client_for(request.getfixturevalue(who))
    for url in (f"{JOBS}/{job.pk}", f"{JOBS}/{job.pk}/results.csv"):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    if who == "other_pharmacist":
        assert client.get(JOBS).json() == []
    else:
        assert client.get(JOBS).status_code == 404
        assert (
            client.post(JOBS, {"kind": "pta", **SMALL_PTA}, content_type="application/json").status_code
            == 404
        )
    assert BatchJob.objects.count() == 1


def test_signed_out_callers_are_refused() -> None:
    response = Client().get(JOBS)
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_authenticated"


def test_endpoints_are_in_the_openapi_schema(pharmacist_client: Client) -> None:
    schema = pharmacist_client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/dosing/batch/jobs", "/api/v1/dosing/batch/jobs/{job_id}", "results.csv"):
        assert path in schema
    assert "BatchJobRequest" in schema
