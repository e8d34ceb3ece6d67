"""A slice chosen while signed out survives the sign-in, and sign-in only ever returns to a local page."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db


def test_choosing_a_slice_signed_out_sends_to_sign_in_with_the_slice_kept() -> None:
    session = factories.clinic_session(capacity=2)
    slot = session.slots.first()
    response = Client().get(f"/booking/hold/?slot_id={slot.pk}")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=%2Fbooking%2Fhold%2F%3Fslot_id%3D{slot.pk}"


def test_password_sign_in_returns_to_the_hold_form_of_the_slice() -> None:
    factories.patient_account(mobile="13911110001")
    session = factories.clinic_session(capacity=2)
    slot = session.slots.first()
    client = Client()
    login_page = client.get(f"/accounts/login/?next=/booking/hold/%3Fslot_id%3D{slot.pk}")
    assert (
        f"/accounts/login/password/?next=/booking/hold/%3Fslot_id%3D{slot.pk}" in login_page.content.decode()
    )
    response = client.post(
        "/accounts/login/password/",
        {
            "mobile": "13911110001",
            "password": factories.PASSWORD,
            "next": f"/booking/hold/?slot_id={slot.pk}",
        },
    )
    assert response["Location"] == f"/booking/hold/?slot_id={slot.pk}"
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_sign_in_never_returns_to_another_site(target: str) -> None:
    factories.patient_account(mobile="13911110002")
    response = Client().post(
        "/accounts/login/password/",
        {"mobile": "13911110002", "password": factories.PASSWORD, "next": target},
    )
    assert response["Location"] == "/"


def test_the_hold_page_without_a_slice_leads_back_to_the_departments() -> None:
    client = Client()
    client.force_login(factories.patient_account(mobile="13911110003"))
    response = client.get("/booking/hold/")
    assert response.status_code == 302
    assert response["Location"] == "/booking/departments/"
