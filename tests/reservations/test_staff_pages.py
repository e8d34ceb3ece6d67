from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from medcard.models import User
from reservations import services
from reservations.models import Booking
from tests import factories


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.usefixtures("before_late_sessions")  # books today's 23:00 session
def test_the_desk_sees_the_day_and_checks_a_patient_in(patient: User, desk: User) -> None:
    session = factories.clinic_session(fee="0.00", days_ahead=0, hour=23)
    booking = services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=session.slots.get().pk
    )
    client = _as(desk)
    page = client.get(
        "/booking/staff/sessions/", {"date": session.date.isoformat()}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert page.status_code == 200 and booking.patient.masked_name in page.content.decode()
    with time_machine.travel(session.starts_at - timedelta(minutes=10), tick=True):
        client.post(f"/booking/staff/appointments/{booking.pk}/check-in/", {"date": session.date.isoformat()})
    booking.refresh_from_db()
    assert booking.status == "checked_in" and booking.queue_number == 1


@pytest.mark.django_db
def test_stopping_a_session_from_the_page_needs_a_reason(patient: User, desk: User) -> None:
    session = factories.clinic_session(fee="0.00")
    booking = services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=session.slots.get().pk
    )
    client = _as(desk)
    client.post(f"/booking/staff/sessions/{session.pk}/stop/", {"reason": "", "confirm": "yes"})
    session.refresh_from_db()
    assert session.status == "open"
    client.post(f"/booking/staff/sessions/{session.pk}/stop/", {"reason": "医生外出会诊", "confirm": "yes"})
    session.refresh_from_db()
    assert session.status == "stopped"
    assert Booking.objects.get(pk=booking.pk).status == "cancelled"


@pytest.mark.django_db
def test_an_extra_number_from_the_page(desk: User) -> None:
    slot = factories.clinic_session(capacity=2).slots.get()
    _as(desk).post(f"/booking/staff/slots/{slot.pk}/extra/", {"count": "1"})
    slot.refresh_from_db()
    assert (slot.capacity, slot.extra) == (3, 1)


@pytest.mark.django_db
def test_staff_pages_are_hidden_from_patients_and_pharmacists(patient: User, pharmacist: User) -> None:
    assert _as(patient).get("/booking/staff/sessions/").status_code == 404
    assert _as(pharmacist).get("/booking/staff/sessions/").status_code == 404
