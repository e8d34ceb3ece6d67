"""Changing an appointment's time on the pages: same doctor and fee offered, refusals shown in words."""

from __future__ import annotations

import pytest
from django.test import Client

from medcard.models import User
from reservations import services
from reservations.models import Booking
from tests import factories

pytestmark = pytest.mark.django_db


def _held(patient: User):  # type: ignore[no-untyped-def]
    session = factories.clinic_session(capacity=2, slices=2, fee="50.00")
    first, second = session.slots.order_by("starts_at")
    booking = services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=first.pk
    )
    return booking, second


def test_the_appointment_page_offers_to_change_the_time_and_the_move_happens(
    patient_client: Client, patient: User
) -> None:
    booking, second = _held(patient)
    detail = patient_client.get(f"/booking/appointments/{booking.pk}/").content.decode()
    assert f'href="/booking/appointments/{booking.pk}/reschedule/"' in detail
    page = patient_client.get(f"/booking/appointments/{booking.pk}/reschedule/").content.decode()
    assert f'value="{second.pk}"' in page and f'value="{booking.slot_id}"' not in page
    response = patient_client.post(f"/booking/appointments/{booking.pk}/reschedule/", {"slot_id": second.pk})
    moved = Booking.objects.get(account=patient, status="held")
    assert moved.slot_id == second.pk
    assert response["Location"] == f"/booking/appointments/{moved.pk}/"
    assert "已改到新的时间" in patient_client.get(response["Location"]).content.decode()


def test_a_slice_with_another_fee_is_not_offered_and_is_refused_in_words(
    patient_client: Client, patient: User
) -> None:
    booking, _ = _held(patient)
    dearer = factories.clinic_session(capacity=2, fee="80.00", days_ahead=2).slots.get()
    page = patient_client.get(f"/booking/appointments/{booking.pk}/reschedule/").content.decode()
    assert f'value="{dearer.pk}"' not in page
    response = patient_client.post(f"/booking/appointments/{booking.pk}/reschedule/", {"slot_id": dearer.pk})
    assert response.status_code == 409
    assert 'data-testid="refusal"' in response.content.decode()
    assert "新出诊费用不同" in response.content.decode()
    assert Booking.objects.get(pk=booking.pk).slot_id == booking.slot_id


def test_an_outsider_cannot_change_another_accounts_appointment(patient: User, outsider: User) -> None:
    booking, second = _held(patient)
    client = Client()
    client.force_login(outsider)
    assert client.get(f"/booking/appointments/{booking.pk}/reschedule/").status_code == 404
    assert (
        client.post(f"/booking/appointments/{booking.pk}/reschedule/", {"slot_id": second.pk}).status_code
        == 404
    )
    assert Booking.objects.get(pk=booking.pk).slot_id == booking.slot_id
