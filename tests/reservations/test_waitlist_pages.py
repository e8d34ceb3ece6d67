"""The waitlist on the pages: offered on a full session, listed under my appointments, left after asking."""

from __future__ import annotations

import pytest
from django.test import Client

from medcard.models import User
from reservations import services
from reservations.models import WaitlistEntry
from tests import factories

pytestmark = pytest.mark.django_db


def _client(account: User) -> Client:
    client = Client()
    client.force_login(account)
    return client


def _full_session(holder: User):  # type: ignore[no-untyped-def]
    session = factories.clinic_session(capacity=1, slices=2, days_ahead=2)  # the waitlist is open all day
    del holder
    for slot in session.slots.all():
        other = factories.patient_account(name="占号人")
        services.hold_create(
            account=other, patient_id=factories.verified_patient_of(other).pk, slot_id=slot.pk
        )
    return session


def _session_url(session) -> str:  # type: ignore[no-untyped-def]
    return f"/booking/departments/{session.department.code}/sessions/{session.pk}/"


def test_a_full_session_offers_the_waitlist_on_the_session_and_every_slice(patient: User) -> None:
    session = _full_session(patient)
    page = Client().get(_session_url(session)).content.decode()
    join = f'href="/booking/sessions/{session.pk}/waitlist/"'
    assert page.count(join) == 3  # the session's notice and each of the two full slices


def test_a_session_with_a_number_left_does_not_offer_the_waitlist(patient: User) -> None:
    session = factories.clinic_session(capacity=1, slices=2, days_ahead=2)  # the waitlist is open all day
    page = Client().get(_session_url(session)).content.decode()
    assert f"/booking/sessions/{session.pk}/waitlist/" not in page


def test_joining_from_the_page_lists_the_entry_with_its_position(patient: User, outsider: User) -> None:
    session = _full_session(patient)
    services.waitlist_join(
        account=outsider, patient_id=factories.verified_patient_of(outsider).pk, session_id=session.pk
    )
    client = _client(patient)
    form = client.get(f"/booking/sessions/{session.pk}/waitlist/")
    assert form.status_code == 200 and 'name="patient_id"' in form.content.decode()
    response = client.post(
        f"/booking/sessions/{session.pk}/waitlist/", {"patient_id": factories.verified_patient_of(patient).pk}
    )
    assert response["Location"] == "/booking/appointments/"
    page = client.get("/booking/appointments/").content.decode()
    listed = page[page.index('data-testid="waitlist"') :]
    assert "排在第 2 位" in listed
    entry = WaitlistEntry.objects.get(account=patient)
    assert f'href="/booking/waitlist/{entry.pk}/leave/"' in listed


def test_signed_out_joining_comes_back_to_the_waitlist_form_after_sign_in(patient: User) -> None:
    session = _full_session(patient)
    response = Client().get(f"/booking/sessions/{session.pk}/waitlist/")
    assert response["Location"] == f"/accounts/login/?next=%2Fbooking%2Fsessions%2F{session.pk}%2Fwaitlist%2F"


def test_leaving_asks_first_then_leaves_on_the_confirming_post(patient: User) -> None:
    session = _full_session(patient)
    entry = services.waitlist_join(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, session_id=session.pk
    )
    client = _client(patient)
    confirm = client.get(f"/booking/waitlist/{entry.pk}/leave/")
    assert confirm.status_code == 200 and '<form method="post">' in confirm.content.decode()
    entry.refresh_from_db()
    assert entry.status == "waiting"  # asking is not leaving
    response = client.post(f"/booking/waitlist/{entry.pk}/leave/")
    assert response["Location"] == "/booking/appointments/"
    entry.refresh_from_db()
    assert entry.status == "cancelled"
    assert 'data-testid="waitlist"' not in client.get("/booking/appointments/").content.decode()


def test_an_outsider_cannot_see_or_leave_another_accounts_entry(patient: User, outsider: User) -> None:
    session = _full_session(patient)
    entry = services.waitlist_join(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, session_id=session.pk
    )
    client = _client(outsider)
    assert client.get(f"/booking/waitlist/{entry.pk}/leave/").status_code == 404
    assert client.post(f"/booking/waitlist/{entry.pk}/leave/").status_code == 404
    entry.refresh_from_db()
    assert entry.status == "waiting"
