"""The dosing API: institutions' keys (hashed, revocable, rate-limited, audited), own courses only, the
same error format as the rest of the API, the report, and the OpenAPI schema."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pypdf
import pytest
from django.core.management import call_command
from django.test import Client

from dosing import services
from dosing.models import ApiCall, ApiKey, Course, Institution, LevelEntry
from medcard.models import User
from tests.dosing.conftest import START

pytestmark = pytest.mark.django_db

COURSE = {
    "initials": "LM",
    "ward": "ICU",
    "bed": "3",
    "sex": "female",
    "age_years": "58",
    "weight_kg": "64",
    "height_cm": "162",
    "creatinine_value": "1.1",
    "creatinine_unit": "mg/dL",
    "creatinine_on": "2026-11-20",
    "model_choice": "goti_2018",
}


def _key(code: str) -> str:
    institution = Institution.objects.create(code=code, name=code)
    return services.api_key_create(institution=institution, name="HIS")[1]


def _client(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {key}")


def _post(client: Client, url: str, data: Any = None) -> Any:
    return client.post(url, data or {}, content_type="application/json")


@pytest.fixture
def key_a(frozen: None) -> str:
    return _key("hosp-a")


@pytest.fixture
def key_b(frozen: None) -> str:
    return _key("hosp-b")


def _course_with_levels(client: Client) -> int:
    response = _post(client, "/api/v1/dosing/courses/", COURSE)
    assert response.status_code == 201, response.content
    course_id = response.json()["id"]
    doses = {
        "doses": [
            {"given_at": START.isoformat(), "amount_mg": "1500", "infusion_h": "1.5"},
            {
                "given_at": (START + timedelta(hours=12)).isoformat(),
                "amount_mg": "1000",
                "infusion_h": "1",
                "repeat_count": 2,
                "repeat_interval_h": "12",
            },
        ]
    }
    assert _post(client, f"/api/v1/dosing/courses/{course_id}/doses/", doses).status_code == 201
    for hours, conc in ((35.5, "13.0"), (37.5, "29.0")):
        level = {"drawn_at": (START + timedelta(hours=hours)).isoformat(), "conc_mg_per_l": conc}
        assert _post(client, f"/api/v1/dosing/courses/{course_id}/levels/", level).status_code == 201
    return course_id


def test_an_institution_creates_fits_and_gets_a_recommendation_and_report(key_a: str) -> None:
    client = _client(key_a)
    course_id = _course_with_levels(client)
    fit = _post(client, f"/api/v1/dosing/courses/{course_id}/fit/").json()
    assert fit["status"] == "ok" and fit["models"][0]["status"] == "converged" and len(fit["by_level"]) == 3
    rec = _post(client, f"/api/v1/dosing/courses/{course_id}/recommend/").json()
    assert rec["recommendation"]["maintenance"]["dose_mg"] > 0 and rec["regimen"]["pta"] is not None
    mine = _post(
        client,
        f"/api/v1/dosing/courses/{course_id}/recommend/",
        {
            "dose_mg": 1250,
            "interval_h": 12,
            "infusion_h": 1.5,
            "start": (START + timedelta(hours=48)).isoformat(),
        },
    ).json()
    assert mine["regimen"]["dose_mg"] == 1250 and mine["regimen"]["auc24_mg_h_per_l"] > 0
    pdf = client.get(f"/api/v1/dosing/courses/{course_id}/report.pdf?lang=en")
    assert pdf["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Vancomycin dosing report" in text and "goti_2018" in text
    assert Course.objects.get(pk=course_id).institution.code == "hosp-a"


def test_another_institutions_key_gets_404_on_a_course_not_its_own(key_a: str, key_b: str) -> None:
    course_id = _course_with_levels(_client(key_a))
    other = _client(key_b)
    for response in (
        other.get(f"/api/v1/dosing/courses/{course_id}/"),
        _post(other, f"/api/v1/dosing/courses/{course_id}/fit/"),
        _post(
            other,
            f"/api/v1/dosing/courses/{course_id}/levels/",
            {"drawn_at": START.isoformat(), "conc_mg_per_l": "9"},
        ),
        other.get(f"/api/v1/dosing/courses/{course_id}/report.pdf"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert LevelEntry.objects.count() == 2


def test_every_keyed_call_is_recorded(key_a: str, key_b: str) -> None:
    course_id = _course_with_levels(_client(key_a))
    _client(key_b).get(f"/api/v1/dosing/courses/{course_id}/")
    refused = ApiCall.objects.get(institution__code="hosp-b")
    assert refused.status_code == 404 and refused.course_id_requested == course_id
    assert ApiCall.objects.filter(institution__code="hosp-a").count() == 4


def test_keys_are_stored_hashed_and_revoked_keys_are_refused(key_a: str) -> None:
    key = ApiKey.objects.get()
    assert key_a not in (key.key_sha256, key.prefix) and len(key.key_sha256) == 64
    assert _client(key_a).get("/api/v1/dosing/courses/1/").status_code == 404
    call_command("dosing_api_key", "revoke", key.prefix)
    response = _client(key_a).get("/api/v1/dosing/courses/1/")
    assert response.status_code in (401, 403) and response.json()["error"]["code"] == "authentication_failed"
    assert _client(key_a + "x").get("/api/v1/dosing/courses/1/").status_code in (401, 403)


def test_keys_are_rate_limited(key_a: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DOSING_API_CALLS_PER_MINUTE = 3
    client = _client(key_a)
    codes = [client.get("/api/v1/dosing/courses/999/").status_code for _ in range(5)]
    assert codes == [404, 404, 404, 429, 429]
    assert client.get("/api/v1/dosing/courses/999/").json()["error"]["code"] == "throttled"


def test_bad_input_gets_field_messages_and_stores_nothing(key_a: str) -> None:
    client = _client(key_a)
    response = _post(client, "/api/v1/dosing/courses/", {**COURSE, "creatinine_unit": ""})
    assert response.status_code == 400 and "creatinine_unit" in response.json()["error"]["fields"]
    course_id = _post(client, "/api/v1/dosing/courses/", COURSE).json()["id"]
    negative = {"doses": [{"given_at": START.isoformat(), "amount_mg": "-1000", "infusion_h": "1"}]}
    response = _post(client, f"/api/v1/dosing/courses/{course_id}/doses/", negative)
    assert response.status_code == 400 and "amount_mg" in response.json()["error"]["fields"]
    early = {"drawn_at": (START - timedelta(hours=2)).isoformat(), "conc_mg_per_l": "10"}
    response = _post(client, f"/api/v1/dosing/courses/{course_id}/levels/", early)
    assert response.status_code == 400 and "drawn_at" in response.json()["error"]["fields"]
    assert not LevelEntry.objects.exists()


def test_outsiders_without_a_key_or_the_pharmacist_role_are_refused(
    key_a: str, patient_client: Client, desk: User
) -> None:
    course_id = _course_with_levels(_client(key_a))
    desk_client = Client()
    desk_client.force_login(desk)
    for client in (Client(), patient_client, desk_client):
        assert client.get(f"/api/v1/dosing/courses/{course_id}/").status_code in (401, 403)


def test_pharmacists_use_the_api_with_their_session_for_the_hospitals_courses(
    key_a: str, pharmacist: User
) -> None:
    theirs = _course_with_levels(_client(key_a))
    client = Client()
    client.force_login(pharmacist)
    own = _post(client, "/api/v1/dosing/courses/", COURSE).json()["id"]
    assert client.get(f"/api/v1/dosing/courses/{own}/").status_code == 200
    assert client.get(f"/api/v1/dosing/courses/{theirs}/").status_code == 404


def test_the_schema_lists_the_dosing_endpoints(db: None) -> None:
    schema = Client().get("/api/schema/?format=json").json()
    assert "/api/v1/dosing/courses/{course_id}/recommend/" in schema["paths"]
    assert "institutionApiKey" in schema["components"]["securitySchemes"]
