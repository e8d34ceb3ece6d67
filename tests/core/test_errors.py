"""The one error model: every refusal code in the catalogue, worded in Chinese and English, one status."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from core.errors import CATALOGUE, AppError
from medcard.models import User
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "medcard", "reservations", "screening", "dosing", "hospital")


def _codes_raised() -> set[str]:
    """Every literal code passed to ``AppError(...)`` in the project's source."""
    codes = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", "")) == "AppError"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    codes.add(node.args[0].value)
    return codes


def test_every_code_raised_is_in_the_catalogue() -> None:
    raised = _codes_raised()
    assert len(raised) > 40
    assert raised - set(CATALOGUE) == set()


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_refusal_has_chinese_and_english_wording(code: str) -> None:
    wording = CATALOGUE[code].wording
    with translation.override("en"):
        english = str(wording)
    with translation.override("zh-hans"):
        chinese = str(wording)
    assert english and chinese
    assert re.search(r"[\u4e00-\u9fff]", chinese), f"{code} has no Chinese wording: {chinese!r}"
    assert re.findall(r"%\(\w+\)\w", english) == re.findall(r"%\(\w+\)\w", chinese)  # same placeholders


def test_a_refusal_takes_its_status_and_wording_from_the_catalogue() -> None:
    with translation.override("en"):
        error = AppError("full")
    assert (error.status, error.waitlist) == (409, True)
    assert error.body() == {
        "error": {
            "code": "full",
            "message": "This time is fully booked. You can join the waitlist.",
            "fields": {},
            "waitlist": True,
        }
    }
    with pytest.raises(KeyError):
        AppError("no_such_code")


@pytest.mark.django_db
def test_the_same_refusal_has_the_same_status_in_every_api(patient: User, desk: User) -> None:
    """'reason_missing' was 409 in the booking API and 422 at the desk: now 422 in both."""
    session = factories.clinic_session()
    desk_client = Client()
    desk_client.force_login(desk)
    stop = desk_client.post(
        f"/api/v1/staff/sessions/{session.pk}/stop/", {"reason": "x"}, content_type="application/json"
    )
    reveal = desk_client.post(
        f"/api/v1/desk/patients/{factories.verified_patient_of(patient).pk}/reveal/",
        {"field": "name", "reason": "ab"},
        content_type="application/json",
    )
    statuses = {stop.status_code, reveal.status_code}
    assert statuses == {422}
    assert stop.json()["error"]["code"] == reveal.json()["error"]["code"] == "reason_missing"
