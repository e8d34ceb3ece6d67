"""Moving a gated hold: the services a gate's app (screening) calls to extend, clear, fail or reopen it.

A gated number is held while its gate is pending: for the gate's first step (``GatePlan.first_wait``), then,
once the gate's app extends it, until the slice's booking cut-off, never longer. The expiry sweep
(``holds_expire_due``) lapses it like any hold and lets the gate tell the patient why.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from medcard.models import Patient
from reservations import gates, notifications, schedules
from reservations.models import Booking, GateStatus, Session
from reservations.services.booking import (
    AppError,
    _cancel_and_release,
    _check_patient_rules,
    _free_payment_record,
    _take_capacity,
)


def hold_gate_extend(*, booking_id: int, now: datetime) -> datetime | None:
    """The gate's condition is being worked on (a report arrived, staff are reviewing): keep the held
    number until the slice's booking cut-off. Returns the new expiry, or None when it is no longer held."""
    booking = Booking.objects.select_related("slot", "department").filter(pk=booking_id).first()
    if booking is None or booking.status != Booking.Status.HELD:
        return None
    rule = schedules.booking_rule_for(department=booking.department)
    until = max(schedules.slot_booking_closes_at(slot=booking.slot, rule=rule), now)
    changed = Booking.objects.filter(pk=booking_id, status=Booking.Status.HELD).update(
        hold_expires_at=until, updated_at=now
    )
    return until if changed else None


def hold_gate_clear(*, booking_id: int, now: datetime, pay_within: timedelta | None = None) -> bool:
    """Inside the clearing transaction: the gate is passed and the held number may now be paid for. A paid
    session's payment window starts now; a free session's number is booked at once (as an ungated one would
    have been). False when the booking is no longer held (it lapsed or was cancelled meanwhile).

    ``pay_within``: a longer window the gate's app gives (a patient told by message hours later must still
    be able to pay), ending no later than the slice's booking cut-off and never shorter than the
    department's own payment window."""
    booking = (
        Booking.objects.select_for_update().select_related("department", "session", "slot").get(pk=booking_id)
    )
    if booking.status != Booking.Status.HELD:
        return False
    if booking.fee == 0:
        Booking.objects.filter(pk=booking.pk).update(
            status=Booking.Status.BOOKED, gate_status=GateStatus.CLEARED, hold_expires_at=None, updated_at=now
        )
        _free_payment_record(booking=booking, now=now)
        notifications.booking_notify(booking_id=booking.pk, kind="booked")
        return True
    rule = schedules.booking_rule_for(department=booking.department)
    until = now + rule.payment_window()
    if pay_within is not None:
        closes_at = schedules.slot_booking_closes_at(slot=booking.slot, rule=rule)
        until = max(until, min(now + pay_within, closes_at))
    Booking.objects.filter(pk=booking.pk).update(
        gate_status=GateStatus.CLEARED, hold_expires_at=until, updated_at=now
    )
    return True


def hold_gate_fail(*, booking_id: int, reason: str, now: datetime) -> bool:
    """Inside the failing transaction: cancel the held number with ``reason`` and give it back (the
    waitlist is offered it). False when the booking is no longer held."""
    booking = Booking.objects.select_for_update().get(pk=booking_id)
    if booking.status != Booking.Status.HELD:
        return False
    Booking.objects.filter(pk=booking.pk).update(gate_status=GateStatus.FAILED)
    return _cancel_and_release(booking=booking, from_status=Booking.Status.HELD, reason=reason, now=now)


def hold_gate_reopen(*, booking_id: int, reason: str, now: datetime) -> Booking:
    """Inside a transaction: hold again a number its gate released with ``reason``, for a manual review.

    Rules: the booking was cancelled by its gate for ``reason``, its slice is still bookable, the patient
    has no other number in the session and the per-day rules hold, and the slice has a free number (else
    ``full``: the number went to someone else; the patient may join the waitlist or book another time).
    """
    booking = Booking.objects.select_related("slot", "session", "department").get(pk=booking_id)
    if booking.status != Booking.Status.CANCELLED or not booking.gate or booking.cancel_reason != reason:
        raise AppError("not_reopenable")
    rule = schedules.booking_rule_for(department=booking.department)
    closes_at = schedules.slot_booking_closes_at(slot=booking.slot, rule=rule)
    if now >= closes_at or booking.session.status != Session.Status.OPEN:
        raise AppError("closed")
    Patient.objects.select_for_update().filter(pk=booking.patient_id).first()
    _check_patient_rules(patient=booking.patient, session=booking.session, rule=rule, exclude_booking=booking)
    if not _take_capacity(booking.slot_id):
        raise AppError("full")
    try:
        with transaction.atomic():
            Booking.objects.filter(pk=booking.pk, status=Booking.Status.CANCELLED).update(
                status=Booking.Status.HELD,
                gate_status=GateStatus.PENDING,
                hold_expires_at=closes_at,
                cancel_reason="",
                updated_at=now,
            )
    except IntegrityError:
        raise AppError("already_booked") from None
    booking.refresh_from_db()
    return booking


def hold_gate_lapsed(*, booking: Booking) -> bool:
    """Inside the expiring transaction: let a pending gate tell the patient why the number lapsed (no report
    in time, no decision before the cut-off). False when the booking's gate was not pending (it lapsed for
    want of payment: the usual message)."""
    if not booking.gate or booking.gate_status != GateStatus.PENDING:
        return False
    gates.gate_get(booking.gate).lapsed(booking=booking)
    return True


def booking_payment_check(*, booking: Booking) -> None:
    """Refuse to take money for a number whose gate is still pending (AppError ``screening_pending``,
    with what the patient has to do)."""
    if booking.gate and booking.gate_status == GateStatus.PENDING:
        raise AppError("screening_pending", gates.gate_get(booking.gate).payment_block(booking=booking))
