"""Every staff action writes an audit row with the acting staff member, the object and the values before
and after, in the same transaction as the change, and shows in the administrators' audit search."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from medcard.models import AuditEvent, User
from reservations import services
from reservations.models import Booking
from tests import factories


def _hold(account: User, slot_id: int) -> Booking:
    return services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot_id
    )


@pytest.mark.django_db
def test_stopping_a_session_records_who_stopped_it_and_why(desk: User) -> None:
    session = factories.clinic_session()
    services.session_stop(staff=desk, session_id=session.pk, reason="医生临时停诊")
    event = AuditEvent.objects.get(action="session_stopped")
    assert (event.actor, event.actor_is_staff, event.target) == (desk, True, f"session {session.pk}")
    assert event.changes == {"status": ["open", "stopped"]} and event.reason == "医生临时停诊"


@pytest.mark.django_db
def test_extra_numbers_record_the_capacity_before_and_after(desk: User) -> None:
    slot = factories.clinic_session(capacity=4).slots.get()
    services.slot_extra_add(staff=desk, slot_id=slot.pk, count=2)
    event = AuditEvent.objects.get(action="extra_numbers_added")
    assert (event.actor, event.target) == (desk, f"slot {slot.pk}")
    assert event.changes == {"capacity": [4, 6], "extra": [0, 2]}


@pytest.mark.django_db
@pytest.mark.usefixtures("before_late_sessions")  # books today's 23:00 session
def test_desk_payment_and_check_in_are_recorded_for_the_patient(patient: User, desk: User) -> None:
    session = factories.clinic_session(fee="50.00", days_ahead=0, hour=23)
    booking = _hold(patient, session.slots.get().pk)
    services.desk_payment_record(staff=desk, booking_id=booking.pk)
    with time_machine.travel(session.starts_at - timedelta(minutes=10), tick=True):
        services.booking_check_in(staff=desk, booking_id=booking.pk)
    paid, checked = (AuditEvent.objects.get(action=action) for action in ("desk_payment", "checked_in"))
    for event in (paid, checked):
        assert (event.actor, event.patient, event.target) == (desk, booking.patient, f"booking {booking.pk}")
    assert paid.changes["status"] == ["held", "booked"] and paid.changes["paid"] == [None, "50.00"]
    assert checked.changes == {"status": ["booked", "checked_in"], "queue_number": [None, 1]}


@pytest.mark.django_db
def test_a_refused_action_records_nothing(desk: User) -> None:
    session = factories.clinic_session()
    services.session_stop(staff=desk, session_id=session.pk, reason="停诊")
    with pytest.raises(Exception):  # noqa: B017 - any refusal: the point is what it leaves behind
        services.session_stop(staff=desk, session_id=session.pk, reason="again")
    assert AuditEvent.objects.filter(action="session_stopped").count() == 1


@pytest.mark.django_db
def test_administrators_find_staff_actions_in_the_audit_search(desk: User, administrator: User) -> None:
    session = factories.clinic_session()
    services.session_stop(staff=desk, session_id=session.pk, reason="医生临时停诊")
    client = Client()
    client.force_login(administrator)
    page = client.get("/accounts/audit/", {"staff": desk.username}).content.decode()
    assert f"session {session.pk}" in page and "医生临时停诊" in page and "stopped" in page
