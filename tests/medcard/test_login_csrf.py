"""Login CSRF: a cross-site form must not sign a visitor's browser into another account."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client

from medcard import services, sms

MOBILE = "13912345678"


@pytest.fixture(autouse=True)
def _empty_outbox() -> Iterator[None]:
    sms.outbox.clear()
    yield
    sms.outbox.clear()


def _attackers_code() -> str:
    services.sms_code_request(mobile=MOBILE, ip="198.51.100.9")
    text = sms.sandbox_last_text(MOBILE)
    assert text is not None
    match = re.search(r"\b(\d{6})\b", text)
    assert match is not None
    return match.group(1)


@pytest.mark.django_db
def test_a_cross_site_form_post_to_the_api_sign_in_is_refused() -> None:
    victim = Client(enforce_csrf_checks=True)
    response = victim.post(
        "/api/v1/auth/sms-sign-in/",
        {"mobile": MOBILE, "code": _attackers_code()},  # form-encoded, as an HTML form on another site posts
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied" and "CSRF" in error["message"]
    assert "_auth_user_id" not in victim.session
    assert victim.get("/api/v1/me/").status_code == 403


@pytest.mark.django_db
def test_the_api_sign_in_works_with_the_token_it_hands_out() -> None:
    client = Client(enforce_csrf_checks=True)
    token = client.get("/api/v1/auth/csrf/").json()["csrf_token"]
    response = client.post(
        "/api/v1/auth/sms-sign-in/",
        {"mobile": MOBILE, "code": _attackers_code()},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200 and response.json()["kind"] == "patient"
    assert client.get("/api/v1/me/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/accounts/login/", {"mobile": MOBILE, "code": "123456"}),
        ("/accounts/login/password/", {"mobile": MOBILE, "password": "whatever-it-is"}),
        ("/accounts/staff-login/", {"username": "desk1", "password": "whatever-it-is"}),
        ("/admin/login/", {"username": "desk1", "password": "whatever-it-is"}),
    ],
)
def test_every_sign_in_form_refuses_a_post_without_the_token(path: str, data: dict[str, str]) -> None:
    response = Client(enforce_csrf_checks=True).post(path, data)
    assert response.status_code == 403
