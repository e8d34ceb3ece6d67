"""Holding, booking, cancelling and rescheduling numbers.

Capacity is taken by a conditional update (``taken < capacity``) inside the booking's transaction, and the
database refuses ``taken > capacity`` and two active bookings of one patient in one session. Python checks
the configurable rules first and turns the database's answers into clear messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from hospital.api import error_body as api_error_body
from medcard import selectors as medcard_selectors
from medcard.models import Patient, User
from reservations import notifications, schedules
from reservations.discovery import availability_changed
from reservations.models import ACTIVE_BOOKING_STATES, Booking, BookingRule, Payment, Session, Slot
from reservations.services.money import money

logger = logging.getLogger(__name__)


class BookingRefused(Exception):
    """A booking request that a rule or the state of the session refuses; nothing was changed.

    ``code`` is stable (the API's error code); ``message`` names the rule for the patient; ``waitlist`` is
    true when the session is full and the patient may join its waitlist instead.
    """

    def __init__(self, code: str, message: str, *, waitlist: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.waitlist = code, message, waitlist

    @classmethod
    def full(cls) -> BookingRefused:
        """The slice has no number left: join the waitlist instead."""
        return cls("full", _("This time is fully booked. You can join the waitlist."), waitlist=True)

    def error_body(self) -> dict[str, Any]:
        """The API's error envelope, with ``waitlist`` when the patient may join it."""
        body = api_error_body(self.code, self.message)
        if self.waitlist:
            body["error"]["waitlist"] = True
        return body


def _local(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i")


def booking_for_account(*, account: User, booking_id: int) -> Booking:
    """The account's booking, or Http404 (also for bookings that exist but belong to another account)."""
    booking = (
        Booking.objects.select_related("session__department", "session__doctor", "slot", "patient")
        .filter(pk=booking_id, account=account)
        .first()
    )
    if booking is None:
        raise Http404("No such booking on this account.")
    return booking


def _bookable_slot(*, slot_id: int, now: datetime) -> tuple[Slot, BookingRule]:
    slot = (
        Slot.objects.select_related("session__department", "session__clinic_type", "session__doctor")
        .filter(pk=slot_id)
        .first()
    )
    if slot is None:
        raise Http404("No such time slice.")
    session = slot.session
    if session.status != Session.Status.OPEN:
        raise BookingRefused("session_stopped", _("This session has been stopped: %(reason)s") % {
            "reason": session.stopped_reason})  # fmt: skip
    rule = schedules.booking_rule_for(department=session.department)
    if not schedules.session_is_released(session=session, now=now, rule=rule):
        release_at = schedules.session_release_at(session=session, rule=rule)
        raise BookingRefused(
            "not_released",
            _("Numbers for this session are released at %(time)s.") % {"time": _local(release_at)},
        )
    if now >= schedules.slot_booking_closes_at(slot=slot, rule=rule):
        raise BookingRefused(
            "closed",
            _("Booking for this time closes %(minutes)d minutes before it starts.")
            % {"minutes": rule.booking_cutoff_minutes},
        )
    return slot, rule


def _check_patient_rules(
    *, patient: Patient, session: Session, rule: BookingRule, exclude_booking: Booking | None = None
) -> None:
    """One active booking per session, no second pending hold, and the department's per-day limits.
    Call with the patient's row locked."""
    active = Booking.objects.filter(patient=patient, status__in=ACTIVE_BOOKING_STATES)
    if exclude_booking is not None:
        active = active.exclude(pk=exclude_booking.pk)
    # One query for all the rules: a patient has a handful of active bookings at most.
    rows = list(
        active.values_list("session_id", "status", "visit_date", "department_id", "screening_case__status")
    )
    if any(row[0] == session.pk for row in rows):
        raise BookingRefused("already_booked", _("This patient already has a number in this session."))
    # A number held for its screening (hours, maybe a staff review) cannot be paid yet: it does not stop the
    # patient from holding another; once approved it awaits payment like any hold.
    if any(row[1] == Booking.Status.HELD and row[4] in (None, "approved") for row in rows):
        raise BookingRefused(
            "hold_pending", _("This patient has a number awaiting payment: pay for it or cancel it first.")
        )
    same_day = [row for row in rows if row[2] == session.date]
    if sum(1 for row in same_day if row[3] == session.department_id) >= rule.max_per_department_per_day:
        raise BookingRefused(
            "department_daily_limit",
            _("Rule: at most %(n)d number(s) per department per day for one patient.")
            % {"n": rule.max_per_department_per_day},
        )
    departments = {row[3] for row in same_day}
    if session.department_id not in departments and len(departments) >= rule.max_departments_per_day:
        raise BookingRefused(
            "departments_daily_limit",
            _("Rule: at most %(n)d departments per day for one patient.")
            % {"n": rule.max_departments_per_day},
        )


FULL_HINT_TTL_S = 2


def _full_hint_key(slot_id: int) -> str:
    return f"slot-full:{slot_id}"


def slot_known_full(*, slot_id: int) -> bool:
    """A hint, not the truth: the slice was found full less than FULL_HINT_TTL_S seconds ago.

    Under a flash crowd it lets the API refuse the losing majority without touching the database; it expires
    by itself, and freeing a number clears it at once, so a released number is never hidden for long. Holds
    are only ever granted by the database's conditional update.
    """
    return bool(cache.get(_full_hint_key(slot_id)))


def _mark_full(slot_id: int) -> None:
    cache.set(_full_hint_key(slot_id), 1, timeout=FULL_HINT_TTL_S)


def _take_capacity(slot_id: int) -> bool:
    # The race for the last numbers: a compare-and-set in the database, so two requests can never both take
    # the last one (and the check constraint taken <= capacity backs it up).
    if Slot.objects.filter(pk=slot_id, taken__lt=F("capacity")).update(taken=F("taken") + 1) != 1:
        return False
    availability_changed(slot_id=slot_id)  # the availability pages' cached counts
    return True


def _release_capacity(slot_id: int) -> None:
    Slot.objects.filter(pk=slot_id, taken__gt=0).update(taken=F("taken") - 1)
    availability_changed(slot_id=slot_id)
    transaction.on_commit(lambda: cache.delete(_full_hint_key(slot_id)))


def _verified_patient(*, account: User, patient_id: int, lock: bool = False) -> Patient:
    """The account's verified patient (locked for the transaction when ``lock``), Http404 for anyone else's,
    BookingRefused when not verified."""
    patient = medcard_selectors.verified_patient_for_account(
        account=account, patient_id=patient_id, lock=lock
    )
    if patient is not None:
        return patient
    row = medcard_selectors.patient_for_account(account=account, patient_id=patient_id)  # 404 if not theirs
    if row.patient.verification != Patient.Verification.MATCH or row.card is None:
        raise BookingRefused(
            "patient_not_verified", _("This patient needs a verified medical card before booking.")
        )
    return row.patient


def _free_payment_record(*, booking: Booking, now: datetime) -> Payment:
    """The paid zero-fee payment of a free number, so every booked number has its payment row."""
    return Payment.objects.create(
        booking=booking,
        channel=Payment.Channel.FREE,
        order_no=f"FREE{booking.pk:012d}",
        amount=money(0),
        status=Payment.Status.PAID,
        paid_at=now,
    )


def hold_create(
    *,
    account: User,
    patient_id: int,
    slot_id: int,
    answers: Mapping[str, object] | None = None,
    now: datetime | None = None,
) -> Booking:
    """Hold a number for one of the account's verified patients.

    Rules: the session is open and released, the slice's booking cut-off has not passed, the patient has no
    number in this session and no other hold awaiting payment, and the department's per-day limits hold. A
    paid session's number is held for the payment window; a free session's number is booked at once. A full
    slice is refused with ``waitlist`` set.

    A screened session (its clinic type names a screening exam that is not switched off) needs ``answers``
    to the exam's questionnaire (refused with code ``screening_answers`` otherwise). Its number, free or
    paid, is held for the screening instead (``screening_hold_deadline``) and opens a screening case; the
    payment window starts only when the case is approved.
    """
    from screening import services as screening_services

    now = now or timezone.now()
    slot, rule = _bookable_slot(slot_id=slot_id, now=now)
    session = slot.session
    try:
        plan = screening_services.case_plan(exam_code=session.clinic_type.screening_exam, answers=answers)
    except screening_services.ScreeningRefused as exc:
        raise BookingRefused(exc.code, exc.message) from None
    if slot.taken >= slot.capacity:
        _mark_full(slot.pk)
        # Cheap pre-check on the row just read: under a flash crowd most requests lose, and they are told so
        # without a transaction. The conditional update below stays the only authority.
        raise BookingRefused.full()
    try:
        with transaction.atomic():
            # Find the patient and lock their row in one query: the same patient on two phones cannot pass
            # the rules twice.
            patient = _verified_patient(account=account, patient_id=patient_id, lock=True)
            _check_patient_rules(patient=patient, session=session, rule=rule)
            if not _take_capacity(slot.pk):
                _mark_full(slot.pk)
                raise BookingRefused.full()
            free = session.fee == 0 and plan is None
            expires_at: datetime | None
            if plan is not None:
                expires_at = screening_hold_deadline(slot=slot, rule=rule, now=now)
            else:
                expires_at = None if free else now + rule.payment_window()
            booking = Booking.objects.create(
                patient=patient,
                account=account,
                session=session,
                slot=slot,
                department=session.department,
                visit_date=session.date,
                fee=money(session.fee),
                status=Booking.Status.BOOKED if free else Booking.Status.HELD,
                hold_expires_at=expires_at,
            )
            if plan is not None:
                screening_services.case_open(booking=booking, plan=plan, now=now)
            if free:
                _free_payment_record(booking=booking, now=now)
                notifications.booking_notify(booking_id=booking.pk, kind="booked")
    except IntegrityError:
        # The partial unique index caught a second active booking that slipped past the rules.
        raise BookingRefused(
            "already_booked", _("This patient already has a number in this session.")
        ) from None
    logger.info("hold created", extra={"booking": booking.pk, "slot": slot.pk, "status": booking.status})
    return booking


def _cancel_and_release(
    *, booking: Booking, from_status: str, reason: str, now: datetime, settle_reason: str = ""
) -> bool:
    """Inside a transaction: cancel the booking if it is still ``from_status``, give its number back, settle
    its payments and offer the number to the waitlist after commit. False when the booking changed meanwhile.
    """
    from reservations.services import payments, waitlist

    # Compare-and-set: a payment, the expiry sweep or a second cancel racing this one settle on one outcome.
    changed = Booking.objects.filter(pk=booking.pk, status=from_status).update(
        status=Booking.Status.CANCELLED, cancel_reason=reason[:200], updated_at=now
    )
    if changed != 1:
        return False
    _release_capacity(booking.slot_id)
    payments.payments_settle_cancelled(booking=booking, reason=settle_reason or reason or "cancelled")
    transaction.on_commit(lambda: waitlist.waitlist_offer_task(session_id=booking.session_id))
    return True


# --- Holds waiting for a screening decision ----------------------------------------------------------------
# A screened booking is held while its screening case is open: until the first report is due, then until the
# slice's booking cut-off, never longer. The expiry sweep (holds_expire_due) lapses it like any hold.


def screening_hold_deadline(*, slot: Slot, rule: BookingRule, now: datetime) -> datetime:
    """How long a screened hold waits for a first report: ``SCREENING_UPLOAD_HOURS``, but never past the
    slice's booking cut-off."""
    hours = int(getattr(settings, "SCREENING_UPLOAD_HOURS", 24))
    return min(now + timedelta(hours=hours), schedules.slot_booking_closes_at(slot=slot, rule=rule))


def screening_hold_extend(*, booking_id: int, now: datetime) -> datetime | None:
    """A report arrived or staff are reviewing: keep the held number until the slice's booking cut-off.
    Returns the new expiry, or None when the booking is no longer held."""
    booking = Booking.objects.select_related("slot", "department").filter(pk=booking_id).first()
    if booking is None or booking.status != Booking.Status.HELD:
        return None
    rule = schedules.booking_rule_for(department=booking.department)
    until = max(schedules.slot_booking_closes_at(slot=booking.slot, rule=rule), now)
    changed = Booking.objects.filter(pk=booking_id, status=Booking.Status.HELD).update(
        hold_expires_at=until, updated_at=now
    )
    return until if changed else None


def screening_hold_approved(*, booking_id: int, now: datetime) -> bool:
    """Inside the approving transaction: the held number may now be paid for. A paid session's payment
    window starts now; a free session's number is booked at once (as an unscreened one would have been).
    False when the booking is no longer held (it lapsed or was cancelled meanwhile)."""
    booking = Booking.objects.select_for_update().select_related("department", "session").get(pk=booking_id)
    if booking.status != Booking.Status.HELD:
        return False
    if booking.fee == 0:
        Booking.objects.filter(pk=booking.pk).update(
            status=Booking.Status.BOOKED, hold_expires_at=None, updated_at=now
        )
        _free_payment_record(booking=booking, now=now)
        notifications.booking_notify(booking_id=booking.pk, kind="booked")
        return True
    rule = schedules.booking_rule_for(department=booking.department)
    Booking.objects.filter(pk=booking.pk).update(hold_expires_at=now + rule.payment_window(), updated_at=now)
    return True


def screening_hold_release(*, booking_id: int, reason: str, now: datetime) -> bool:
    """Inside the declining transaction: cancel the held number with ``reason`` and give it back (the
    waitlist is offered it). False when the booking is no longer held."""
    booking = Booking.objects.select_for_update().get(pk=booking_id)
    if booking.status != Booking.Status.HELD:
        return False
    return _cancel_and_release(booking=booking, from_status=Booking.Status.HELD, reason=reason, now=now)


def screening_hold_reopen(*, booking_id: int, now: datetime) -> Booking:
    """Inside a transaction: hold again a number the screening released, for a manual review.

    Rules: the booking was cancelled by the screening, its slice is still bookable, the patient has no other
    number in the session and the per-day rules hold, and the slice has a free number (else ``full``: the
    number went to someone else; the patient may join the waitlist or book another time).
    """
    booking = Booking.objects.select_related("slot", "session", "department").get(pk=booking_id)
    if booking.status != Booking.Status.CANCELLED or not booking.cancel_reason.startswith("screening"):
        raise BookingRefused("not_reopenable", _("Only a number released by the screening can be reopened."))
    rule = schedules.booking_rule_for(department=booking.department)
    closes_at = schedules.slot_booking_closes_at(slot=booking.slot, rule=rule)
    if now >= closes_at or booking.session.status != Session.Status.OPEN:
        raise BookingRefused("closed", _("Booking for this time has closed; please book another time."))
    Patient.objects.select_for_update().filter(pk=booking.patient_id).first()
    _check_patient_rules(patient=booking.patient, session=booking.session, rule=rule, exclude_booking=booking)
    if not _take_capacity(booking.slot_id):
        raise BookingRefused.full()
    try:
        with transaction.atomic():
            Booking.objects.filter(pk=booking.pk, status=Booking.Status.CANCELLED).update(
                status=Booking.Status.HELD, hold_expires_at=closes_at, cancel_reason="", updated_at=now
            )
    except IntegrityError:
        raise BookingRefused(
            "already_booked", _("This patient already has a number in this session.")
        ) from None
    booking.refresh_from_db()
    return booking


def screening_hold_lapsed(*, booking_id: int) -> bool:
    """Inside the expiring transaction: tell the patient why a number held for its screening lapsed (no
    report in time, or no decision before the cut-off). False when the booking had no open screening (it
    lapsed for want of payment: the usual message)."""
    from screening import services as screening_services

    return screening_services.case_hold_lapsed(booking_id=booking_id)


def booking_payment_check(*, booking: Booking) -> None:
    """Refuse to take money for a number whose screening has not approved it (BookingRefused
    ``screening_pending``, with what the patient has to do)."""
    from screening import selectors as screening_selectors

    message = screening_selectors.case_payment_block(booking=booking)
    if message:
        raise BookingRefused("screening_pending", message)


def booking_cancel(
    *, account: User, booking_id: int, reason: str = "", now: datetime | None = None
) -> Booking:
    """Cancel a held or booked number before the cancellation deadline; a paid fee is refunded to its channel.

    The number goes back to the slice and is offered to the waitlist.
    """
    now = now or timezone.now()
    booking = booking_for_account(account=account, booking_id=booking_id)
    rule = schedules.booking_rule_for(department=booking.department)
    if booking.status not in (Booking.Status.HELD, Booking.Status.BOOKED):
        raise BookingRefused("not_cancellable", _("Only a held or booked number can be cancelled."))
    deadline = schedules.cancel_deadline(session=booking.session, rule=rule)
    if booking.status == Booking.Status.BOOKED and now > deadline:
        raise BookingRefused(
            "cancel_deadline",
            _("Rule: cancellation closed at %(time)s; please contact the clinic.")
            % {"time": _local(deadline)},
        )
    with transaction.atomic():
        if not _cancel_and_release(
            booking=booking,
            from_status=booking.status,
            reason=reason[:200] or "patient",
            now=now,
            settle_reason="patient cancelled",
        ):
            raise BookingRefused("changed", _("This booking changed meanwhile. Please reload."))
        notifications.booking_notify(booking_id=booking.pk, kind="cancelled")
    booking.refresh_from_db()
    return booking


def booking_reschedule(
    *, account: User, booking_id: int, new_slot_id: int, now: datetime | None = None
) -> Booking:
    """Move a held or booked number to another slice in one transaction: the patient never has neither.

    Rules: the new slice is bookable now, has the same fee (the payment moves with the booking), and the
    patient's rules hold counting the old booking as gone. The old number goes back to its slice.
    """
    from reservations.services import waitlist

    now = now or timezone.now()
    old = booking_for_account(account=account, booking_id=booking_id)
    if old.status not in (Booking.Status.HELD, Booking.Status.BOOKED):
        raise BookingRefused("not_reschedulable", _("Only a held or booked number can be moved."))
    if old.session.clinic_type.screening_exam and hasattr(old, "screening_case"):
        # The case, its uploads and its decision belong to this booking (the visit date is one of the
        # decision's inputs): a screened number is cancelled and booked again, not moved.
        raise BookingRefused(
            "screened_not_movable",
            _("An examination that needed a screening cannot be moved: cancel it and book the new time."),
        )
    rule = schedules.booking_rule_for(department=old.department)
    if old.status == Booking.Status.BOOKED and now > schedules.cancel_deadline(
        session=old.session, rule=rule
    ):
        raise BookingRefused("cancel_deadline", _("Rule: this number can no longer be changed."))
    slot, new_rule = _bookable_slot(slot_id=new_slot_id, now=now)
    if slot.pk == old.slot_id:
        raise BookingRefused("same_slot", _("This is already the booked time."))
    if money(slot.session.fee) != old.fee:
        raise BookingRefused(
            "different_fee",
            _("The new session has a different fee: cancel this number and book the new one."),
        )
    try:
        with transaction.atomic():
            Patient.objects.select_for_update().filter(pk=old.patient_id).first()
            changed = Booking.objects.filter(pk=old.pk, status=old.status).update(
                status=Booking.Status.CANCELLED, cancel_reason="rescheduled", updated_at=now
            )
            if changed != 1:
                raise BookingRefused("changed", _("This booking changed meanwhile. Please reload."))
            _check_patient_rules(
                patient=old.patient, session=slot.session, rule=new_rule, exclude_booking=old
            )
            if not _take_capacity(slot.pk):
                raise BookingRefused("full", _("The new time is fully booked."), waitlist=True)
            new = Booking.objects.create(
                patient=old.patient,
                account=account,
                session=slot.session,
                slot=slot,
                department=slot.session.department,
                visit_date=slot.session.date,
                fee=old.fee,
                status=old.status,
                hold_expires_at=old.hold_expires_at,
            )
            Payment.objects.filter(booking=old).update(booking=new)
            _release_capacity(old.slot_id)
            transaction.on_commit(lambda: waitlist.waitlist_offer_task(session_id=old.session_id))
    except IntegrityError:
        raise BookingRefused(
            "already_booked", _("This patient already has a number in that session.")
        ) from None
    return new
