"""The no-show policy: by default three missed appointments within 90 days suspend online booking for 90
days from the last of them; the patient is told why and until when; staff may forgive one with a reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from core.errors import AppError
from medcard.models import AuditEvent, User
from reservations import selectors, services
from reservations.models import Booking, NoShowWaiver
from tests import factories


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _missed(account: User, *, days_ago: int) -> Booking:
    """A no-show ``days_ago`` days before today (made directly: the sweep is tested elsewhere)."""
    session = factories.clinic_session(fee="0.00", days_ahead=-days_ago)
    patient = factories.verified_patient_of(account)
    return Booking.objects.create(
        patient=patient, account=account, session=session, slot=session.slots.get(),
        department=session.department, visit_date=session.date, fee=0, status=Booking.Status.NO_SHOW,
    )  # fmt: skip


def _hold(account: User) -> Booking:
    slot = factories.clinic_session(fee="0.00", days_ahead=1).slots.get()
    return services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )


@pytest.mark.django_db
def test_two_no_shows_do_not_suspend_but_a_third_within_90_days_does(patient: User) -> None:
    _missed(patient, days_ago=80)
    _missed(patient, days_ago=40)
    assert _hold(patient).status == "booked"
    last = _missed(patient, days_ago=1)
    with pytest.raises(AppError) as refused:
        _hold(patient)
    until = last.visit_date + timedelta(days=90)
    assert refused.value.code == "booking_suspended" and until.isoformat() in refused.value.message


@pytest.mark.django_db
def test_three_no_shows_spread_over_more_than_90_days_do_not_suspend(patient: User) -> None:
    for days_ago in (95, 50, 5):  # the first and the last are 90 days apart: not "within 90 days"
        _missed(patient, days_ago=days_ago)
    assert (
        selectors.no_show_suspension(
            patient=factories.verified_patient_of(patient), today=timezone.localdate()
        )
        is None
    )
    assert _hold(patient).status == "booked"  # the hold reads its no-shows with its other rules' rows


@pytest.mark.django_db
def test_a_hold_counts_no_shows_but_not_active_bookings_or_cancellations(patient: User) -> None:
    _missed(patient, days_ago=2)
    _missed(patient, days_ago=1)
    # A cancelled number and a booked one are read with the no-shows: neither counts as one.
    Booking.objects.filter(pk=_hold(patient).pk).update(status=Booking.Status.CANCELLED)
    assert _hold(patient).status == "booked"
    _missed(patient, days_ago=3)
    with pytest.raises(AppError) as refused:
        _hold(patient)
    assert refused.value.code == "booking_suspended"


@pytest.mark.django_db
def test_the_suspension_ends_90_days_after_the_last_no_show(patient: User) -> None:
    for days_ago in (30, 20, 10):
        _missed(patient, days_ago=days_ago)
    holder = factories.verified_patient_of(patient)
    today = timezone.localdate()
    assert selectors.no_show_suspension(patient=holder, today=today + timedelta(days=79)) is not None
    assert selectors.no_show_suspension(patient=holder, today=today + timedelta(days=80)) is None
    with time_machine.travel(timezone.now() + timedelta(days=80, hours=1)):
        assert _hold(patient).status == "booked"


@pytest.mark.django_db
def test_the_patient_sees_why_and_until_when(patient: User) -> None:
    for days_ago in (3, 2, 1):
        _missed(patient, days_ago=days_ago)
    page = _as(patient).get("/booking/appointments/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    until = (timezone.localdate() - timedelta(days=1) + timedelta(days=90)).isoformat()
    assert f"suspended until {until}: 3 missed appointments within 90 days" in page


@pytest.mark.django_db
def test_a_forgiven_no_show_does_not_count_and_the_reason_is_recorded(patient: User, desk: User) -> None:
    missed = [_missed(patient, days_ago=d) for d in (3, 2, 1)]
    client = _as(desk)
    client.post(f"/booking/desk/no-shows/{missed[0].pk}/waive/", {"reason": ""})
    assert not AuditEvent.objects.filter(action="no_show_waived").exists()
    client.post(f"/booking/desk/no-shows/{missed[0].pk}/waive/", {"reason": "暴雨停运，已核实"})
    assert _hold(patient).status == "booked"
    event = AuditEvent.objects.get(action="no_show_waived")
    assert (event.actor, event.reason, event.target) == (desk, "暴雨停运，已核实", f"booking {missed[0].pk}")
    with pytest.raises(AppError) as again:
        services.no_show_waive(staff=desk, booking_id=missed[0].pk, reason="再次豁免")
    assert again.value.code == "already_waived"


@pytest.mark.django_db
def test_the_limit_is_configurable(patient: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.NO_SHOW_LIMIT = 1
    _missed(patient, days_ago=1)
    with pytest.raises(AppError):
        _hold(patient)


@pytest.mark.django_db
def test_only_the_desk_forgives(patient: User, pharmacist: User) -> None:
    missed = _missed(patient, days_ago=1)
    for user in (patient, pharmacist):
        assert (
            _as(user).post(f"/booking/desk/no-shows/{missed.pk}/waive/", {"reason": "我自己豁免"}).status_code
            == 404
        )
    assert not NoShowWaiver.objects.exists()
    assert not AuditEvent.objects.filter(action="no_show_waived").exists()
