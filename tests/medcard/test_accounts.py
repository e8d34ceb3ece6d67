from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection
from django.test import Client
from django.utils import timezone, translation

from medcard import roles, services
from medcard.models import Patient, PatientLink, User
from tests.factories import PASSWORD


@pytest.mark.django_db
def test_role_groups_exist_after_migrating() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ALL)


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["13900000001", "+86 139 0000 0001", "139-0000-0001"])
def test_patient_signs_in_with_mobile_number_however_it_is_typed(client: Client, typed: str) -> None:
    services.patient_account_create(mobile="13900000001", password=PASSWORD)
    response = client.post("/accounts/login/password/", {"mobile": typed, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/api/v1/me/").json()["kind"] == "patient"


@pytest.mark.django_db
def test_staff_signs_in_with_username(client: Client, desk: User) -> None:
    response = client.post("/accounts/staff-login/", {"username": "desk1", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/api/v1/me/").json()["roles"] == ["front_desk"]


@pytest.mark.django_db
def test_patient_cannot_use_the_staff_sign_in(client: Client, patient: User) -> None:
    response = client.post("/accounts/staff-login/", {"username": patient.mobile, "password": PASSWORD})
    assert response.status_code == 400


@pytest.mark.django_db
def test_wrong_password_gets_a_clear_message(client: Client, desk: User) -> None:
    response = client.post(
        "/accounts/staff-login/", {"username": "desk1", "password": "nope"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    assert "The username or the password is wrong." in response.content.decode()


@pytest.mark.django_db
def test_invalid_mobile_number_is_named_on_the_field(client: Client) -> None:
    response = client.post(
        "/accounts/login/password/", {"mobile": "12345", "password": "x"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    assert "Enter a valid mainland mobile number (11 digits starting with 1)." in response.content.decode()


def _staff_sign_in(client: Client, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/accounts/staff-login/", {"username": username, "password": password}, HTTP_ACCEPT_LANGUAGE="en"
    )


def _patient_sign_in(client: Client, mobile: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/accounts/login/password/", {"mobile": mobile, "password": password}, HTTP_ACCEPT_LANGUAGE="en"
    )


@pytest.mark.django_db
def test_repeated_wrong_passwords_refuse_that_name_from_that_source(desk: User) -> None:
    attacker = Client(REMOTE_ADDR="198.51.100.66")
    for _ in range(5):
        assert _staff_sign_in(attacker, "desk1", "wrong-guess").status_code == 400
    response = _staff_sign_in(attacker, "desk1", PASSWORD)
    assert response.status_code == 400
    assert "Too many failed sign-ins: try again after" in response.content.decode()
    assert "_auth_user_id" not in attacker.session


@pytest.mark.django_db
def test_a_stranger_s_wrong_passwords_do_not_lock_the_staff_member_out(desk: User) -> None:
    attacker = Client(REMOTE_ADDR="198.51.100.66")
    for _ in range(10):
        _staff_sign_in(attacker, "desk1", "wrong-guess")
    at_the_desk = Client(REMOTE_ADDR="10.20.0.15")
    assert _staff_sign_in(at_the_desk, "desk1", PASSWORD).status_code == 302


def _without_token(html: str, mobile: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html).replace(mobile, "NUMBER")


@pytest.mark.django_db
def test_an_unknown_mobile_is_answered_exactly_like_a_registered_one() -> None:
    services.patient_account_create(mobile="13900000001", password=PASSWORD)
    answers = []
    for mobile in ("13900000001", "13900000002"):  # registered, unknown
        client = Client(REMOTE_ADDR="198.51.100.66")
        wrong = [_patient_sign_in(client, mobile, "wrong-guess") for _ in range(6)]
        answers.append([(r.status_code, _without_token(r.content.decode(), mobile)) for r in wrong])
        assert "Too many failed sign-ins" in wrong[-1].content.decode()
        assert "locked" not in wrong[-1].content.decode()
    assert answers[0] == answers[1]


@pytest.mark.django_db
def test_one_source_cannot_walk_through_many_names(settings, desk: User) -> None:  # type: ignore[no-untyped-def]
    settings.LOGIN_MAX_FAILURES_PER_SOURCE = 8
    attacker = Client(REMOTE_ADDR="198.51.100.66")
    for n in range(8):
        _staff_sign_in(attacker, f"guess{n}", "wrong-guess")
    assert "Too many failed sign-ins" in _staff_sign_in(attacker, "desk1", PASSWORD).content.decode()
    assert _staff_sign_in(Client(REMOTE_ADDR="10.20.0.15"), "desk1", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_the_refusal_also_closes_the_admin_site(client: Client, administrator: User) -> None:
    for _ in range(5):
        client.post("/accounts/staff-login/", {"username": "admin1", "password": "wrong-guess"})
    response = client.post("/admin/login/", {"username": "admin1", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 200  # the form again, not a redirect into the admin
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_refusal_lifts_after_the_lockout_period(client: Client, desk: User) -> None:
    for _ in range(5):
        client.post("/accounts/staff-login/", {"username": "desk1", "password": "wrong-guess"})
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = client.post("/accounts/staff-login/", {"username": "desk1", "password": PASSWORD})
        assert response.status_code == 302


@pytest.mark.django_db
def test_a_correct_password_resets_the_failure_count(client: Client, desk: User) -> None:
    for _ in range(4):
        client.post("/accounts/staff-login/", {"username": "desk1", "password": "wrong-guess"})
    assert (
        client.post("/accounts/staff-login/", {"username": "desk1", "password": PASSWORD}).status_code == 302
    )
    for _ in range(4):
        client.post("/accounts/staff-login/", {"username": "desk1", "password": "wrong-guess"})
    assert _staff_sign_in(Client(), "desk1", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_mobile_number_is_not_stored_in_clear(patient: User) -> None:
    clear = patient.mobile
    with connection.cursor() as cursor:
        cursor.execute("SELECT mobile_ciphertext, mobile_index FROM medcard_user WHERE id = %s", [patient.pk])
        ciphertext, index = cursor.fetchone()
    assert clear not in ciphertext and clear not in index
    assert User.objects.get_by_mobile(clear) == patient


@pytest.mark.django_db
def test_a_second_account_for_the_same_mobile_is_refused(patient: User) -> None:
    with translation.override("en"), pytest.raises(ValidationError, match="already exists"):
        services.patient_account_create(mobile=patient.mobile, password=PASSWORD)
    assert User.objects.filter(kind="patient").count() == 1


@pytest.mark.django_db
def test_an_account_has_at_most_one_self_in_the_database(patient: User) -> None:
    other = Patient.objects.exclude(links__account=patient).first() or Patient.objects.create(
        name="王二", id_type="passport", id_number_ciphertext="x", id_number_index="y", sex="M",
        birth_date=timezone.localdate(),
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        PatientLink.objects.create(account=patient, patient=other, relationship="self")


@pytest.mark.django_db
def test_seed_demo_is_idempotent() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    counts = (User.objects.count(), Patient.objects.count(), Group.objects.count())
    call_command("seed_demo", stdout=io.StringIO())
    assert (User.objects.count(), Patient.objects.count(), Group.objects.count()) == counts
    holder = User.objects.get_by_mobile(services.DEMO_PATIENT_MOBILE)
    assert sorted(holder.patient_links.values_list("relationship", flat=True)) == ["child", "self"]
    assert all(link.patient.cards.filter(status="active").count() == 1 for link in holder.patient_links.all())
    for username, password, _name, role in services.DEMO_STAFF:
        user = User.objects.get(username=username)
        assert user.check_password(password)
        assert user.groups.filter(name=role).exists()


@pytest.mark.django_db
def test_seed_demo_registers_the_screening_models_in_shadow_and_screens_contrast_ct_live() -> None:
    from reservations.models import ClinicType
    from screening.models import ScreeningExamSetting, ScreeningModelVersion

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    tasks = set(ScreeningModelVersion.objects.values_list("task", "status"))
    assert tasks == {("doctype", "shadow"), ("fieldconf", "shadow")}
    assert ScreeningExamSetting.objects.get(exam_code="ct_contrast").mode == "live"
    assert ClinicType.objects.get(code="ct_contrast").screening_exam == "ct_contrast"


@pytest.mark.django_db
def test_seed_demo_is_refused_where_demo_data_is_not_allowed(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEMO_DATA_ALLOWED = False
    with pytest.raises(CommandError, match="refused"):
        call_command("seed_demo")
    assert not User.objects.exists()
