"""Self check-in by the poster at the clinic: a signed code naming the department, valid on its day only;
checking in twice is harmless; the wrong day or clinic is told the right one."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from core.errors import AppError
from medcard import tokens
from medcard.models import Card, User
from reservations import services
from reservations.models import Booking, Department, QueueEntry, Session
from tests import factories


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _booked(account: User, *, days_ahead: int = 0, department: str = "neurology") -> Booking:
    session = factories.clinic_session(fee="0.00", days_ahead=days_ahead, hour=22, department_code=department)
    Session.objects.filter(pk=session.pk).update(room="7诊室")
    slot = session.slots.get()
    # Booked two hours before the 22:00 session: at the real time of day its booking may have closed.
    return services.hold_create(
        account=account,
        patient_id=factories.verified_patient_of(account).pk,
        slot_id=slot.pk,
        now=slot.starts_at - timedelta(hours=2),
    )


def _poster(code: str = "neurology", day_offset: int = 0) -> str:
    department = Department.objects.get(code=code)
    return services.poster_token(department=department, day=timezone.localdate() + timedelta(days=day_offset))


@pytest.mark.django_db
def test_scanning_todays_poster_checks_the_patient_in_once(patient: User) -> None:
    booking = _booked(patient)
    client = _as(patient)
    url = f"/booking/check-in/{_poster()}/"
    assert 'data-testid="self-check-in"' in client.get(url).content.decode()  # a GET changes nothing
    assert not QueueEntry.objects.exists()
    with time_machine.travel(booking.slot.starts_at - timedelta(minutes=30), tick=True):
        client = _as(patient)  # signed in at the clinic: a session from the small hours has expired by 21:30
        page = client.post(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        again = client.post(url, HTTP_ACCEPT_LANGUAGE="en")
    assert "Number 1" in page and "Room 7诊室" in page
    assert again.status_code == 200 and QueueEntry.objects.get().number == 1


@pytest.mark.django_db
def test_yesterdays_poster_and_a_forged_code_are_refused(patient: User) -> None:
    _booked(patient)
    client = _as(patient)
    old = client.post(f"/booking/check-in/{_poster(day_offset=-1)}/", HTTP_ACCEPT_LANGUAGE="en")
    assert old.status_code == 409 and "scan today" in old.content.decode()
    forged = client.post("/booking/check-in/neurology|2026-12-07:fake/", HTTP_ACCEPT_LANGUAGE="en")
    assert forged.status_code == 422
    assert not QueueEntry.objects.exists()


@pytest.mark.django_db
def test_the_wrong_clinic_is_told_where_to_go(patient: User) -> None:
    _booked(patient, department="cardiology")
    Department.objects.filter(code="cardiology").update(name_en="Cardiology")
    factories.clinic_session(department_code="neurology")
    with pytest.raises(AppError) as refused:
        services.self_check_in(account=patient, token=_poster("neurology"))
    assert refused.value.code == "wrong_clinic" and "7诊室" in refused.value.message


@pytest.mark.django_db
def test_the_wrong_day_is_told_the_right_one(patient: User) -> None:
    later = _booked(patient, days_ahead=3)
    with pytest.raises(AppError) as refused:
        services.self_check_in(account=patient, token=_poster("neurology"))
    assert refused.value.code == "wrong_day" and later.visit_date.isoformat() in refused.value.message


@pytest.mark.django_db
def test_posters_are_printed_by_the_desk_only(patient: User, desk: User) -> None:
    _booked(patient)
    assert 'data-testid="poster-neurology"' in _as(desk).get("/booking/staff/posters/").content.decode()
    assert _as(patient).get("/booking/staff/posters/").status_code == 404
    assert Client().post(f"/booking/check-in/{_poster()}/").status_code == 302  # sign in first


@pytest.mark.django_db
def test_the_kiosk_checks_in_todays_numbers_from_a_scanned_card(patient: User, desk: User) -> None:
    booking = _booked(patient)
    card = Card.objects.get(patient=booking.patient, status="active")
    with time_machine.travel(booking.slot.starts_at - timedelta(minutes=30), tick=True):
        client = _as(desk)  # signed in for the evening: a session from the small hours has expired by 21:30
        token = tokens.token_sign(
            card_number=card.number,
            now=timezone.now(),
            lifetime_s=60,
            private_key=tokens.private_key_from_settings(),
        )
        page = client.post("/booking/kiosk/", {"code": token}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="kiosk-ticket"' in page and "Room 7诊室" in page
    assert QueueEntry.objects.get().booking == booking
    refused = client.post("/booking/kiosk/", {"code": "MC1:forged"}, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code >= 400 and QueueEntry.objects.count() == 1
