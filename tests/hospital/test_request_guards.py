"""Guards every request passes through: NUL characters in addresses."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from medcard.models import User
from reservations.services import demo_departments_seed


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address",
    [
        "/booking/departments/?q=%00",
        "/booking/departments/?q=ne%00uro",
        "/booking/departments/?q%00=x",
        "/booking/departments/neuro%00logy/",
    ],
)
def test_a_nul_character_in_a_public_address_is_a_clear_400(client: Client, address: str) -> None:
    demo_departments_seed()
    response = client.get(address, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "character that is not allowed" in response.content.decode()


@pytest.mark.django_db
def test_a_nul_character_in_the_audit_search_is_a_clear_400(administrator: User) -> None:
    client = Client()
    client.force_login(administrator)
    response = client.get("/accounts/audit/?card=%00", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert client.get("/accounts/audit/?card=1234").status_code == 200


@pytest.mark.django_db
def test_a_nul_character_in_an_api_query_answers_the_json_error_format(client: Client) -> None:
    response = client.get("/api/v1/departments/?kind=%00", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address", ["/", "/booking/departments/", "/api/v1/departments/", "/healthz", "/nowhere/"]
)
def test_every_answer_carries_the_content_security_policy(client: Client, address: str) -> None:
    policy = client.get(address)["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_no_template_has_an_inline_script() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    inline = [
        str(path.relative_to(root))
        for path in (root / "templates").rglob("*.html")
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", path.read_text())
    ]
    assert inline == []
