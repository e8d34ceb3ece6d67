from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import AppError
from medcard.models import User
from reservations import services
from reservations.models import Booking, WaitlistEntry
from tests import factories


def _pid(account: User) -> int:
    return factories.verified_patient_of(account).pk


# Two days ahead: the waitlist closes 12 hours before a session, so one tomorrow at 09:00 would be closed
# every evening from 21:00 (Shanghai) and these tests would fail then.
def _full_session(holder: User, *, capacity: int = 1, fee: str = "50.00"):  # type: ignore[no-untyped-def]
    session = factories.clinic_session(capacity=capacity, fee=fee, days_ahead=2)
    services.hold_create(account=holder, patient_id=_pid(holder), slot_id=session.slots.get().pk)
    return session


@pytest.mark.django_db
def test_only_a_full_session_has_a_waitlist(patient: User) -> None:
    session = factories.clinic_session(capacity=2, days_ahead=2)
    with pytest.raises(AppError) as refused:
        services.waitlist_join(account=patient, patient_id=_pid(patient), session_id=session.pk)
    assert refused.value.code == "not_full"


@pytest.mark.django_db
def test_a_released_number_goes_to_the_first_waiting_patient(patient: User) -> None:
    session = _full_session(patient)
    waiting = [factories.patient_account(mobile=str(13500000000 + n), name=f"候补{n}") for n in range(3)]
    for account in waiting:
        services.waitlist_join(account=account, patient_id=_pid(account), session_id=session.pk)
    held = Booking.objects.get(session=session, account=patient)
    services.booking_cancel(account=patient, booking_id=held.pk)
    assert services.waitlist_offer_next(session_id=session.pk) == 1
    offer = Booking.objects.get(session=session, status="held")
    assert offer.account == waiting[0] and offer.from_waitlist
    entry = WaitlistEntry.objects.get(booking=offer)
    assert entry.status == "offered"
    assert services.waitlist_offer_next(session_id=session.pk) == 0  # nothing more to offer


@pytest.mark.django_db
def test_a_lapsed_offer_passes_to_the_next_patient(patient: User) -> None:
    session = _full_session(patient)
    first, second = (
        factories.patient_account(mobile=str(13500000100 + n), name=f"候补{n}") for n in range(2)
    )
    for account in (first, second):
        services.waitlist_join(account=account, patient_id=_pid(account), session_id=session.pk)
    services.booking_cancel(account=patient, booking_id=Booking.objects.get(account=patient).pk)
    services.waitlist_offer_next(session_id=session.pk)
    offer = Booking.objects.get(account=first, status="held")
    assert services.holds_expire_due(now=offer.hold_expires_at + timedelta(seconds=1)) == 1
    assert WaitlistEntry.objects.get(account=first).status == "lapsed"
    services.waitlist_offer_next(session_id=session.pk, now=offer.hold_expires_at + timedelta(seconds=2))
    assert Booking.objects.get(account=second, status="held").from_waitlist


@pytest.mark.django_db
def test_an_extra_number_is_offered_to_the_waitlist(patient: User, outsider: User, desk: User) -> None:
    session = _full_session(patient)
    services.waitlist_join(account=outsider, patient_id=_pid(outsider), session_id=session.pk)
    services.slot_extra_add(staff=desk, slot_id=session.slots.get().pk, count=1)
    services.waitlist_offer_next(session_id=session.pk)
    assert Booking.objects.get(account=outsider).status == "held"


@pytest.mark.django_db
def test_joining_twice_is_refused(patient: User, outsider: User) -> None:
    session = _full_session(patient)
    services.waitlist_join(account=outsider, patient_id=_pid(outsider), session_id=session.pk)
    with pytest.raises(AppError) as refused:
        services.waitlist_join(account=outsider, patient_id=_pid(outsider), session_id=session.pk)
    assert refused.value.code == "already_waiting"


@pytest.mark.django_db
def test_the_waitlist_closes_at_its_cut_off(patient: User, outsider: User) -> None:
    session = _full_session(patient)
    services.waitlist_join(account=outsider, patient_id=_pid(outsider), session_id=session.pk)
    late = session.starts_at - timedelta(hours=1)
    assert services.waitlists_close_due(now=late) == 1
    assert WaitlistEntry.objects.get(account=outsider).status == "closed"
    other = factories.patient_account(mobile="13500000999", name="迟到")
    with pytest.raises(AppError) as refused:
        services.waitlist_join(account=other, patient_id=_pid(other), session_id=session.pk, now=late)
    assert refused.value.code == "waitlist_closed"
    assert timezone.now() < late


@pytest.mark.django_db
def test_a_free_sessions_offer_is_booked_with_its_payment_row_and_never_asks_to_pay(
    patient: User, outsider: User, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """The offer goes through the same door as any hold: a free number is booked with its zero-fee payment
    row, and the patient is told it is booked (not asked to pay 0.00)."""
    from hospital.celery import app as celery_app
    from reservations import notifications

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    notifications.outbox.clear()
    session = _full_session(patient, fee="0.00")
    services.waitlist_join(account=outsider, patient_id=_pid(outsider), session_id=session.pk)
    services.booking_cancel(account=patient, booking_id=Booking.objects.get(account=patient).pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.waitlist_offer_next(session_id=session.pk) == 1
    offer = Booking.objects.get(account=outsider)
    assert (offer.status, offer.from_waitlist, offer.hold_expires_at) == ("booked", True, None)
    (payment,) = offer.payments.all()
    assert (payment.channel, payment.status, payment.amount) == ("free", "paid", 0)
    assert WaitlistEntry.objects.get(account=outsider).status == "converted"
    kinds = [m.kind for m in notifications.sandbox_messages() if m.account_id == outsider.pk]
    assert "booked" in kinds and "waitlist_offer" not in kinds
