"""Family members edited and removed, implausible birth dates, a password set or changed, the add form's
relationship choices, and what deactivation really does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from core.qr import qr_svg
from medcard import services, sms
from medcard.models import AttemptCounter, AuditEvent, Patient, PatientLink, User
from tests import factories


@pytest.fixture(autouse=True)
def _clean_outbox() -> Iterator[None]:
    sms.outbox.clear()
    yield


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _family_member(account: User, name: str = "王小宝") -> Patient:
    return factories.add_patient(account, name=name, birth=date(2018, 4, 1), relationship="child")


@pytest.mark.django_db
def test_the_add_form_offers_self_first_to_a_new_account_and_never_again(patient: User) -> None:
    new = services.patient_account_create(mobile="13911130001", password=None)
    first = _client(new).get("/accounts/patients/add/")
    assert first.context["form"]["relationship"].value() == "self"
    later = _client(patient).get("/accounts/patients/add/")  # this account has its holder
    choices = [value for value, _label in later.context["form"].fields["relationship"].choices]
    assert "self" not in choices and choices[0] == ""


@pytest.mark.django_db
def test_a_birth_date_in_1890_is_refused_with_a_clear_message(patient: User) -> None:
    details = services.PatientDetails("王老", "passport", "E12345678", "M", date(1890, 1, 1), patient.mobile,
                                      "parent")  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        services.patient_add(account=patient, details=details)
    assert "120" in refused.value.message_dict["birth_date"][0]
    assert not Patient.objects.filter(name="王老").exists()


@pytest.mark.django_db
def test_a_family_member_is_edited_with_an_audit_row(patient: User) -> None:
    child = _family_member(patient)
    services.patient_link_update(account=patient, patient=child, relationship="other", mobile="13911130002")
    child.refresh_from_db()
    assert child.mobile == "13911130002"
    assert PatientLink.objects.get(patient=child).relationship == "other"
    row = AuditEvent.objects.get(patient=child, action=AuditEvent.Action.PATIENT_UPDATED)
    assert row.actor == patient and row.changes["relationship"] == ["child", "other"]
    assert row.changes["mobile"][1] == "139****0002"  # masked in the trail


@pytest.mark.django_db
def test_an_edit_cannot_give_a_child_the_holders_place_or_a_second_self(patient: User) -> None:
    child = _family_member(patient)
    with pytest.raises(ValidationError) as refused:
        services.patient_link_update(account=patient, patient=child, relationship="self", mobile=child.mobile)
    assert "relationship" in refused.value.message_dict
    assert PatientLink.objects.get(patient=child).relationship == "child"


@pytest.mark.django_db
def test_a_shared_persons_mobile_is_changed_only_at_the_desk(patient: User, outsider: User) -> None:
    child = _family_member(patient)
    PatientLink.objects.create(account=outsider, patient=child, relationship="other")
    with pytest.raises(ValidationError) as refused:
        services.patient_link_update(
            account=patient, patient=child, relationship="child", mobile="13911130003"
        )
    assert "mobile" in refused.value.message_dict
    child.refresh_from_db()
    assert child.mobile != "13911130003"


@pytest.mark.django_db
def test_removing_a_family_member_keeps_the_person_and_is_audited(patient: User) -> None:
    child = _family_member(patient)
    page = _client(patient).get(f"/accounts/patients/{child.pk}/remove/")
    assert page.status_code == 200 and PatientLink.objects.filter(patient=child).exists()  # asks first
    response = _client(patient).post(f"/accounts/patients/{child.pk}/remove/", {"confirm": "yes"})
    assert response.status_code == 302
    assert not PatientLink.objects.filter(patient=child).exists()
    assert Patient.objects.filter(pk=child.pk).exists()
    assert AuditEvent.objects.filter(patient=child, action=AuditEvent.Action.PATIENT_UNLINKED).exists()


@pytest.mark.django_db
def test_the_holder_cannot_be_removed(patient: User) -> None:
    holder = factories.verified_patient_of(patient)
    with pytest.raises(ValidationError):
        services.patient_link_remove(account=patient, patient=holder)
    assert PatientLink.objects.filter(patient=holder, account=patient).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["edit", "remove"])
def test_an_outsider_cannot_edit_or_remove_another_accounts_family_member(
    patient: User, outsider: User, action: str
) -> None:
    child = _family_member(patient)
    url = f"/accounts/patients/{child.pk}/{action}/"
    assert _client(outsider).get(url).status_code == 404
    post = {"confirm": "yes", "relationship": "other", "mobile": "13911130004"}
    assert _client(outsider).post(url, post).status_code == 404
    assert PatientLink.objects.get(patient=child).relationship == "child"


@pytest.mark.django_db
def test_an_sms_only_account_sets_a_password_with_an_sms_code() -> None:
    account = services.patient_account_create(mobile="13911130005", password=None)
    client = _client(account)
    client.post("/accounts/password/", {"send_code": "1"})
    code = re.search(r"\d{6}", sms.sandbox_last_text("13911130005") or "")
    assert code is not None
    form = {
        "sms_code": code.group(0),
        "new_password": "lantern-harbour-42",
        "new_password_again": "lantern-harbour-42",
    }
    assert client.post("/accounts/password/", form).status_code == 302
    account.refresh_from_db()
    assert account.check_password("lantern-harbour-42")
    assert AuditEvent.objects.filter(actor=account, action=AuditEvent.Action.PASSWORD_CHANGED).exists()


@pytest.mark.django_db
def test_a_wrong_current_password_changes_nothing_and_counts_as_a_failure(patient: User) -> None:
    with pytest.raises(ValidationError) as refused:
        services.account_password_set(
            account=patient,
            new_password="meadow-lighthouse-7",
            current_password="not-it-at-all",
            source="203.0.113.9",
        )
    assert "current_password" in refused.value.message_dict
    patient.refresh_from_db()
    assert patient.check_password(factories.PASSWORD)
    # Counted like a wrong password at the sign-in page: by the number at this source, and by the source.
    counts = sorted(AttemptCounter.objects.values_list("key", "count"))
    assert {(key.split(":")[0], key.split(":")[-1], n) for key, n in counts} == {
        ("login", "203.0.113.9", 1),
        ("login-source", "203.0.113.9", 1),
    }


@pytest.mark.django_db
def test_a_weak_new_password_is_refused(patient: User) -> None:
    with pytest.raises(ValidationError) as refused:
        services.account_password_set(
            account=patient, new_password="12345", current_password=factories.PASSWORD
        )
    assert "new_password" in refused.value.message_dict


@pytest.mark.django_db
def test_after_deactivation_the_same_number_opens_a_new_empty_account(patient: User) -> None:
    mobile = patient.mobile
    page = _client(patient).get("/accounts/deactivate/", HTTP_ACCEPT_LANGUAGE="en")
    assert "new, empty account" in page.content.decode()
    services.account_deactivate(account=patient)
    services.sms_code_request(mobile=mobile, ip=None)
    code = re.search(r"\d{6}", sms.sandbox_last_text(mobile) or "")
    assert code is not None
    again = services.sms_sign_in(mobile=mobile, code=code.group(0))
    assert again.pk != patient.pk and not again.patient_links.exists()


def test_every_code_is_a_full_qr_code_with_a_view_box() -> None:
    svg = qr_svg("912345678909", label="card")
    assert 'viewBox="0 0 29 29"' in svg  # version 1 (21 modules) plus a 4-module quiet zone each side
    assert "width=" not in svg.split(">", 1)[0]  # sized by CSS, never cut off by a fixed size
