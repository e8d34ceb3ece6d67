from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from medcard import services, sms
from medcard.models import AuditEvent, Card, Patient, PatientLink, User
from tests import factories

FORM = {
    "name": "陈静",
    "id_type": "resident_id",
    "sex": "",
    "birth_date": "",
    "relationship": "spouse",
}


@pytest.fixture(autouse=True)
def _clean_outbox() -> Iterator[None]:
    sms.outbox.clear()
    yield


def _post(client: Client, **fields: str):  # type: ignore[no-untyped-def]
    return client.post("/accounts/patients/add/", fields, HTTP_ACCEPT_LANGUAGE="en")


def _form(patient: User, **overrides: str) -> dict[str, str]:
    data = {
        **FORM,
        "mobile": patient.mobile,
        "id_number": factories.resident_id(date(1985, 6, 1), male=False),
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_a_family_member_is_added_verified_and_given_a_card(patient: User, patient_client: Client) -> None:
    data = _form(patient)
    response = _post(patient_client, **data)
    assert response.status_code == 302
    added = Patient.objects.get(name="陈静")
    assert (added.sex, added.birth_date) == ("F", date(1985, 6, 1))  # derived from the ID number
    assert added.verification == "match"
    assert Card.objects.filter(patient=added, status="active").count() == 1
    page = patient_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "陈*" in page and data["id_number"] not in page and "<svg" in page


@pytest.mark.django_db
def test_id_number_is_encrypted_at_rest(patient: User, patient_client: Client) -> None:
    data = _form(patient)
    _post(patient_client, **data)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number_ciphertext, id_number_index, mobile_ciphertext FROM medcard_patient")
        rows = cursor.fetchall()
    raw = repr(rows)
    assert data["id_number"] not in raw and data["id_number"][:-1] not in raw
    assert patient.mobile not in raw


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"id_number": "11010519491231002"}, "id_number", ""),
        ({"id_number": "110105194912310021"}, "id_number", ""),
        ({"id_number": "110105199902300014"}, "id_number", ""),
        ({"name": ""}, "name", "This field is required."),
        ({"name": "陈" * 51}, "name", "at most 50 characters"),
        ({"id_type": "driving_licence"}, "id_type", "Select a valid choice"),
        ({"sex": "M"}, "sex", "The ID number says Female."),
        ({"birth_date": "1985-06-02"}, "birth_date", "The ID number says 1985-06-01."),
        ({"mobile": "12345"}, "mobile", "valid mainland mobile number"),
    ],
)
def test_bad_details_are_refused_on_their_field_and_change_nothing(
    patient: User, patient_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    before = (Patient.objects.count(), PatientLink.objects.count(), AuditEvent.objects.count())
    response = _post(patient_client, **_form(patient, **overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert (Patient.objects.count(), PatientLink.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.django_db
def test_a_passport_holder_gives_sex_and_birth_date_themselves(patient: User, patient_client: Client) -> None:
    response = _post(patient_client, **_form(patient, id_type="passport", id_number="E12345678"))
    assert response.status_code == 400
    assert {"sex", "birth_date"} <= set(response.context["form"].errors)
    response = _post(
        patient_client,
        **_form(patient, id_type="passport", id_number="E12345678", sex="F", birth_date="1990-01-02"),
    )
    assert response.status_code == 302


@pytest.mark.django_db
def test_the_same_family_member_cannot_be_added_twice(patient: User, patient_client: Client) -> None:
    data = _form(patient)
    _post(patient_client, **data)
    response = _post(patient_client, **{**data, "relationship": "other"})
    assert "This person is already on your account." in response.content.decode()
    assert PatientLink.objects.filter(account=patient).count() == 2


@pytest.mark.django_db
def test_at_most_five_family_members(patient: User, patient_client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        factories.add_patient(patient, name=f"家人{n}", birth=date(1990, 1, 1 + n), relationship="other")
    response = _post(patient_client, **_form(patient))
    assert response.status_code == 400
    assert "at most 5 family members" in response.content.decode()
    assert PatientLink.objects.filter(account=patient).count() == 6


@pytest.mark.django_db
def test_a_child_under_14_cannot_hold_an_account(patient_client: Client) -> None:
    account = services.patient_account_create(mobile="13912345001", password=None)
    client = Client()
    client.force_login(account)
    today = timezone.localdate()
    child_id = factories.resident_id(date(today.year - 10, 1, 1))
    response = _post(client, **{**FORM, "name": "小明", "id_number": child_id, "mobile": account.mobile,
                                "relationship": "self"})  # fmt: skip
    assert response.status_code == 400
    assert "Children under 14 can only be added by a guardian" in response.content.decode()
    response = _post(client, **{**FORM, "name": "小明", "id_number": child_id, "mobile": account.mobile,
                                "relationship": "child"})  # fmt: skip
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_second_account_links_to_the_same_person_with_their_consent(patient: User, outsider: User) -> None:
    holder = Patient.objects.get(links__account=patient, links__relationship="self")
    client = Client()
    client.force_login(outsider)
    data = {**FORM, "name": holder.name, "id_number": holder.id_number, "mobile": outsider.mobile,
            "relationship": "parent"}  # fmt: skip
    response = _post(client, **data)
    assert response.status_code == 400
    assert "already registered at the hospital" in response.content.decode()
    text = sms.sandbox_last_text(holder.mobile)
    assert text is not None
    code = re.search(r"\d{6}", text).group(0)  # type: ignore[union-attr]
    response = _post(client, **data, consent_code="000000" if code != "000000" else "111111")
    assert "The code is wrong." in response.content.decode()
    response = _post(client, **data, consent_code=code)
    assert response.status_code == 302
    assert Patient.objects.filter(id_number_index=holder.id_number_index).count() == 1  # no duplicate
    assert set(holder.links.values_list("account_id", flat=True)) == {patient.pk, outsider.pk}


@pytest.mark.django_db
def test_a_mismatch_is_told_plainly_and_can_be_corrected_a_limited_number_of_times(
    patient: User,
    patient_client: Client,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.MEDCARD_MAX_CORRECTIONS = 1
    response = _post(patient_client, **_form(patient, name="陈不符"))
    added = Patient.objects.get(name="陈不符")
    assert added.verification == "mismatch" and not added.cards.exists()
    page = patient_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "do not match the identity register" in page
    url = f"/accounts/patients/{added.pk}/correct/"
    response = patient_client.post(url, {"name": "陈又不符", "id_number": added.id_number})
    added.refresh_from_db()
    assert added.verification == "blocked" and added.corrections_used == 1
    response = patient_client.post(url, {"name": "陈静", "id_number": added.id_number})
    assert response.status_code == 400
    added.refresh_from_db()
    assert added.name == "陈又不符"


@pytest.mark.django_db
def test_a_correction_that_matches_issues_the_card(patient: User, patient_client: Client) -> None:
    _post(patient_client, **_form(patient, name="陈不符"))
    added = Patient.objects.get(name="陈不符")
    patient_client.post(
        f"/accounts/patients/{added.pk}/correct/", {"name": "陈静", "id_number": added.id_number}
    )
    added.refresh_from_db()
    assert added.verification == "match" and added.cards.filter(status="active").exists()
    actions = list(AuditEvent.objects.filter(patient=added).order_by("id").values_list("action", flat=True))
    assert actions == ["patient_created", "verified", "patient_corrected", "verified", "card_issued"]


@pytest.mark.django_db
def test_an_unavailable_identity_service_leaves_the_patient_pending_and_retries(
    patient: User,
    patient_client: Client,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    with mock.patch("medcard.tasks.patient_verify_retry.apply_async") as enqueue, \
            django_capture_on_commit_callbacks(execute=True):  # fmt: skip
        _post(patient_client, **_form(patient, name="陈繁忙"))
    added = Patient.objects.get(name="陈繁忙")
    assert added.verification == "pending" and not added.cards.exists()
    enqueue.assert_called_once_with((added.pk,), {}, countdown=30)
    # The provider is back: the retry task (run here in-process) decides, and a second delivery does nothing.
    Patient.objects.filter(pk=added.pk).update(name="陈静")
    from medcard.tasks import patient_verify_retry

    assert patient_verify_retry(added.pk) == "match"
    assert patient_verify_retry(added.pk) == "match"
    assert added.cards.filter(status="active").count() == 1


@pytest.mark.django_db
def test_report_lost_asks_first_then_revokes_the_old_number_and_issues_a_new_one(
    patient: User, patient_client: Client
) -> None:
    holder = Patient.objects.get(links__account=patient)
    old = holder.cards.get(status="active")
    url = f"/accounts/patients/{holder.pk}/report-lost/"
    page = patient_client.get(url)
    assert page.status_code == 200 and b'name="confirm"' in page.content
    unconfirmed = patient_client.post(url)  # a stray tap or an old form: the question again, nothing changes
    assert unconfirmed.status_code == 200
    assert holder.cards.get(status="active") == old
    response = patient_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.status == "revoked" and old.revoked_at is not None
    new = holder.cards.get(status="active")
    assert new.number != old.number


@pytest.mark.django_db
def test_deactivating_the_account_releases_the_number_and_keeps_the_records(
    patient: User, patient_client: Client
) -> None:
    holder = Patient.objects.get(links__account=patient)
    assert (
        patient_client.post("/accounts/deactivate/", {}).status_code == 400
    )  # not confirmed: nothing changes
    assert User.objects.get(pk=patient.pk).is_active
    response = patient_client.post("/accounts/deactivate/", {"confirm": "yes"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert not patient.is_active and patient.mobile_index is None
    assert Patient.objects.filter(pk=holder.pk).exists()
    assert AuditEvent.objects.filter(patient=holder, action="account_deactivated").exists()
    assert patient_client.get("/accounts/patients/").status_code == 302  # signed out
