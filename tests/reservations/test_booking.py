from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from core.errors import AppError
from medcard.models import User
from reservations import services
from reservations.models import Booking, Payment, Slot
from tests import factories


def _hold(account: User, slot: Slot, **kwargs):  # type: ignore[no-untyped-def]
    return services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk, **kwargs
    )


@pytest.mark.django_db
def test_a_hold_takes_one_number_and_waits_for_payment(patient: User) -> None:
    session = factories.clinic_session(capacity=2)
    slot = session.slots.get()
    booking = _hold(patient, slot)
    slot.refresh_from_db()
    assert booking.status == "held" and slot.taken == 1
    assert timedelta(minutes=14) < booking.hold_expires_at - timezone.now() <= timedelta(minutes=15)


@pytest.mark.django_db
def test_a_free_session_is_booked_at_once(patient: User) -> None:
    slot = factories.clinic_session(fee="0.00").slots.get()
    booking = _hold(patient, slot)
    assert booking.status == "booked"
    assert Payment.objects.get(booking=booking).channel == "free"


@pytest.mark.django_db
def test_a_full_slice_is_refused_and_offers_the_waitlist(patient: User, outsider: User) -> None:
    slot = factories.clinic_session(capacity=1).slots.get()
    _hold(patient, slot)
    with pytest.raises(AppError) as refused:
        _hold(outsider, slot)
    assert refused.value.code == "full" and refused.value.waitlist
    slot.refresh_from_db()
    assert slot.taken == 1


@pytest.mark.django_db
def test_a_second_hold_while_one_is_pending_is_refused(patient: User) -> None:
    first = factories.clinic_session(capacity=3, department_code="neurology").slots.get()
    other = factories.clinic_session(capacity=3, department_code="cardiology").slots.get()
    _hold(patient, first)
    with pytest.raises(AppError) as refused:
        _hold(patient, other)
    assert refused.value.code == "hold_pending"
    assert Booking.objects.count() == 1


@pytest.mark.django_db
def test_one_number_per_department_per_day_is_the_default_rule(patient: User) -> None:
    first = factories.clinic_session(fee="0.00", capacity=3).slots.get()
    second = factories.clinic_session(fee="0.00", capacity=3, hour=14).slots.get()
    _hold(patient, first)
    with pytest.raises(AppError) as refused:
        _hold(patient, second)
    assert refused.value.code == "department_daily_limit"
    assert "per department per day" in refused.value.message or "每" in refused.value.message


@pytest.mark.django_db
def test_at_most_three_departments_a_day(patient: User) -> None:
    for n, code in enumerate(["d1", "d2", "d3"]):
        _hold(patient, factories.clinic_session(fee="0.00", department_code=code, hour=8 + n).slots.get())
    fourth = factories.clinic_session(fee="0.00", department_code="d4", hour=15).slots.get()
    with pytest.raises(AppError) as refused:
        _hold(patient, fourth)
    assert refused.value.code == "departments_daily_limit"


@pytest.mark.django_db
def test_an_unreleased_session_is_refused_with_its_release_time(patient: User) -> None:
    slot = factories.clinic_session(days_ahead=20).slots.get()
    with pytest.raises(AppError) as refused:
        _hold(patient, slot)
    assert refused.value.code == "not_released"


@pytest.mark.django_db
def test_release_is_at_seven_in_the_morning_shanghai_time(patient: User) -> None:
    slot = factories.clinic_session(days_ahead=14).slots.get()
    release = timezone.localtime(slot.starts_at).replace(hour=7, minute=0, second=0) - timedelta(days=14)
    with (
        time_machine.travel(release - timedelta(seconds=1), tick=False),
        pytest.raises(AppError) as refused,
    ):
        _hold(patient, slot)
    assert refused.value.code == "not_released"
    with time_machine.travel(release, tick=False):
        assert _hold(patient, slot).status == "held"
    assert release.utcoffset() == timedelta(hours=8)


@pytest.mark.django_db
def test_booking_closes_before_the_slice_starts(patient: User) -> None:
    slot = factories.clinic_session().slots.get()
    closing = slot.starts_at - timedelta(minutes=29)
    with time_machine.travel(closing, tick=False), pytest.raises(AppError) as refused:
        _hold(patient, slot)
    assert refused.value.code == "closed"


@pytest.mark.django_db
def test_a_stopped_session_is_refused(patient: User, desk: User) -> None:
    session = factories.clinic_session()
    services.session_stop(staff=desk, session_id=session.pk, reason="医生临时出诊")
    with pytest.raises(AppError) as refused:
        _hold(patient, session.slots.get())
    assert refused.value.code == "session_stopped"


@pytest.mark.django_db
def test_someone_elses_patient_is_404(patient: User, outsider: User) -> None:
    from django.http import Http404

    slot = factories.clinic_session().slots.get()
    with pytest.raises(Http404):
        services.hold_create(
            account=outsider, patient_id=factories.verified_patient_of(patient).pk, slot_id=slot.pk
        )
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_cancelling_gives_the_number_back(patient: User) -> None:
    slot = factories.clinic_session(capacity=1).slots.get()
    booking = _hold(patient, slot)
    services.booking_cancel(account=patient, booking_id=booking.pk)
    slot.refresh_from_db()
    booking.refresh_from_db()
    assert booking.status == "cancelled" and slot.taken == 0


@pytest.mark.django_db
def test_a_booked_number_cannot_be_cancelled_after_the_deadline(patient: User) -> None:
    slot = factories.clinic_session(fee="0.00").slots.get()
    booking = _hold(patient, slot)
    local_day = timezone.localtime(slot.starts_at).date()
    on_the_day = timezone.localtime(slot.starts_at).replace(hour=6)
    assert on_the_day.date() == local_day
    with time_machine.travel(on_the_day, tick=False), pytest.raises(AppError) as refused:
        services.booking_cancel(account=patient, booking_id=booking.pk)
    assert refused.value.code == "cancel_deadline"


@pytest.mark.django_db
def test_an_expired_hold_gives_the_number_back(patient: User) -> None:
    slot = factories.clinic_session(capacity=1).slots.get()
    booking = _hold(patient, slot)
    assert services.holds_expire_due(now=booking.hold_expires_at - timedelta(seconds=1)) == 0
    assert services.holds_expire_due(now=booking.hold_expires_at + timedelta(seconds=1)) == 1
    booking.refresh_from_db()
    slot.refresh_from_db()
    assert booking.status == "expired" and slot.taken == 0
    assert services.holds_expire_due(now=booking.hold_expires_at + timedelta(minutes=5)) == 0  # idempotent


@pytest.mark.django_db
def test_rescheduling_moves_the_number_in_one_step(patient: User) -> None:
    session = factories.clinic_session(fee="0.00", capacity=1, slices=2)
    first, second = session.slots.order_by("starts_at")
    booking = _hold(patient, first)
    moved = services.booking_reschedule(account=patient, booking_id=booking.pk, new_slot_id=second.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    booking.refresh_from_db()
    assert (booking.status, moved.status) == ("cancelled", "booked")
    assert (first.taken, second.taken) == (0, 1)
    assert Payment.objects.get(channel="free").booking == moved


@pytest.mark.django_db
def test_rescheduling_to_a_full_time_changes_nothing(patient: User, outsider: User) -> None:
    session = factories.clinic_session(fee="0.00", capacity=1, slices=2)
    first, second = session.slots.order_by("starts_at")
    booking = _hold(patient, first)
    _hold(outsider, second)
    with pytest.raises(AppError) as refused:
        services.booking_reschedule(account=patient, booking_id=booking.pk, new_slot_id=second.pk)
    assert refused.value.code == "full"
    booking.refresh_from_db()
    first.refresh_from_db()
    assert booking.status == "booked" and first.taken == 1


@pytest.mark.django_db
def test_stopping_a_session_cancels_every_booking_and_refunds_paid_ones(
    patient: User, outsider: User, desk: User
) -> None:
    session = factories.clinic_session(capacity=3)
    slot = session.slots.get()
    paid = _hold(patient, slot)
    services.desk_payment_record(staff=desk, booking_id=paid.pk)
    held = _hold(outsider, slot)
    cancelled = services.session_stop(staff=desk, session_id=session.pk, reason="专家外出会诊")
    assert cancelled == 2
    paid.refresh_from_db()
    held.refresh_from_db()
    assert paid.status == held.status == "cancelled"
    assert "专家外出会诊" in paid.cancel_reason
    assert Payment.objects.get(booking=paid).status == "refunded"


@pytest.mark.django_db
@pytest.mark.usefixtures("before_late_sessions")  # books today's 23:00 session
def test_check_in_gives_queue_numbers_in_order(patient: User, outsider: User, desk: User) -> None:
    slot = factories.clinic_session(fee="0.00", capacity=3, days_ahead=0, hour=23).slots.get()
    first, second = _hold(patient, slot), _hold(outsider, slot)
    with time_machine.travel(slot.starts_at - timedelta(minutes=10), tick=True):
        assert services.booking_check_in(staff=desk, booking_id=second.pk).queue_number == 1
        assert services.booking_check_in(staff=desk, booking_id=first.pk).queue_number == 2
    Booking.objects.filter(pk=first.pk).update(status="cancelled")  # a cancelled number is not checked in
    with pytest.raises(AppError):
        services.booking_check_in(staff=desk, booking_id=first.pk)


@pytest.mark.django_db
def test_hold_api_with_an_idempotency_key_answers_a_retry_with_the_first_answer(patient: User) -> None:
    slot = factories.clinic_session(capacity=3).slots.get()
    client = Client()
    client.force_login(patient)
    body = {"patient_id": factories.verified_patient_of(patient).pk, "slot_id": slot.pk}
    first = client.post(
        "/api/v1/bookings/holds/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    again = client.post(
        "/api/v1/bookings/holds/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Booking.objects.count() == 1
    other = client.post("/api/v1/bookings/holds/", {**body, "slot_id": slot.pk + 999},
                        content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")  # fmt: skip
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.django_db
def test_hold_api_full_answer_offers_the_waitlist(patient: User, outsider: User) -> None:
    slot = factories.clinic_session(capacity=1).slots.get()
    _hold(patient, slot)
    client = Client()
    client.force_login(outsider)
    body = {"patient_id": factories.verified_patient_of(outsider).pk, "slot_id": slot.pk}
    response = client.post("/api/v1/bookings/holds/", body, content_type="application/json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "full" and response.json()["error"]["waitlist"] is True


@pytest.mark.django_db
def test_a_changed_rule_applies_at_once_despite_the_rule_cache(patient: User) -> None:
    from reservations import schedules
    from reservations.models import BookingRule

    session = factories.clinic_session(fee="0.00", capacity=3)
    first = session.slots.get()
    assert schedules.booking_rule_for(department=session.department).max_per_department_per_day == 1
    BookingRule.objects.create(department=session.department, max_per_department_per_day=2)
    other = factories.clinic_session(fee="0.00", capacity=3, hour=14, department_code=session.department.code)
    _hold(patient, first)
    assert _hold(patient, other.slots.get()).status == "booked"  # the department's own rule (2 a day) applies
