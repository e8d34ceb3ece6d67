from __future__ import annotations

import pytest
from django.test import Client

from medcard.models import User
from reservations.models import ClinicType


@pytest.fixture
def admin_client(db: None) -> Client:
    user = User.objects.create_superuser(username="root-admin", password="x-very-long-pass-1")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _post(client: Client, exam: str) -> int:
    return client.post(
        "/admin/reservations/clinictype/add/",
        {
            "code": "ct-plus",
            "name_zh": "增强CT",
            "name_en": "Contrast CT",
            "fee": "50.00",
            "screening_exam": exam,
        },
    ).status_code


def test_an_exam_with_a_rules_file_can_be_chosen_for_a_clinic_type(admin_client: Client) -> None:
    assert _post(admin_client, "ct_contrast") == 302
    assert ClinicType.objects.get(code="ct-plus").screening_exam == "ct_contrast"


def test_an_exam_without_a_rules_file_is_refused_and_nothing_is_saved(admin_client: Client) -> None:
    assert _post(admin_client, "no_such_exam") == 200
    assert not ClinicType.objects.filter(code="ct-plus").exists()
