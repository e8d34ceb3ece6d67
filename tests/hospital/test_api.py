from __future__ import annotations

import pytest
from django.test import Client

from medcard.models import User
from reservations.services import demo_departments_seed


def _error(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


@pytest.mark.django_db
def test_unknown_api_address_answers_the_json_error_format(client: Client) -> None:
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


@pytest.mark.django_db
def test_unauthenticated_request_answers_the_json_error_format(client: Client) -> None:
    response = client.get("/api/v1/me/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "not_authenticated"
    assert error["message"] == "Authentication credentials were not provided."


@pytest.mark.django_db
def test_invalid_query_names_the_field_in_the_error(client: Client) -> None:
    response = client.get("/api/v1/departments/?kind=spa", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid"
    assert error["message"] == "Some of the values sent are not valid."
    assert error["fields"] == {"kind": ["Choose one of: clinic, examination."]}


@pytest.mark.django_db
def test_wrong_method_answers_the_json_error_format(client: Client) -> None:
    response = client.post("/api/v1/departments/", {}, content_type="application/json")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_error_messages_follow_the_request_language(client: Client) -> None:
    response = client.get("/api/v1/departments/?kind=spa", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert _error(response)["message"] == "提交的部分内容无效。"


@pytest.mark.django_db
def test_departments_are_listed_with_names_in_both_languages(client: Client) -> None:
    demo_departments_seed()
    response = client.get("/api/v1/departments/?kind=examination", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    rows = response.json()
    assert {
        "code": "mri",
        "name": "MRI examination",
        "name_zh": "磁共振检查",
        "name_en": "MRI examination",
        "kind": "examination",
        "doctor_count": 0,
    } in rows
    assert all(row["kind"] == "examination" for row in rows)


@pytest.mark.django_db
def test_me_shows_the_mobile_number_masked(patient: User) -> None:
    client = Client()
    client.force_login(patient)
    body = client.get("/api/v1/me/").json()
    clear = patient.mobile
    assert body["mobile_masked"] == f"{clear[:3]}****{clear[-4:]}"
    assert clear not in str(body)
    assert body["roles"] == ["patient"]


@pytest.mark.django_db
def test_schema_is_openapi_3_and_lists_the_v1_endpoints(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/departments/", "/api/v1/me/"} <= set(schema["paths"])


@pytest.mark.django_db
def test_docs_page_loads_its_assets_from_this_server(client: Client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn." not in html and "unpkg" not in html
