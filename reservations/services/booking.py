"""Holding, booking, cancelling and rescheduling numbers.

Capacity is taken by a conditional update (``taken < capacity``) inside the booking's transaction, and the
database refuses ``taken > capacity`` and two active bookings of one patient in one session. Python checks
the configurable rules first and turns the database's answers into clear messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from core.clock import local_today
from core.errors import AppError
from core.prepared import Prepared
from medcard import selectors as medcard_selectors
from medcard.models import Patient, User
from reservations import gates, notifications, reference, schedules, selectors
from reservations.discovery import availability_changed
from reservations.gates import GatePlan
from reservations.models import (
    ACTIVE_BOOKING_STATES,
    Booking,
    BookingRule,
    BookingSource,
    GateStatus,
    Payment,
    Session,
    Slot,
)
from reservations.selectors import booking_for_account
from reservations.services import noshow, payments, waitlist
from reservations.services.hold_insert import insert_taking_capacity
from reservations.services.money import money

logger = logging.getLogger(__name__)


def _local(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i")


# Read by every hold of a flash crowd: compiled once per process (core/prepared.py). The session's department,
# clinic type and doctor come from this process's reference rows (reservations/reference.py): joined here they
# made PostgreSQL plan a five-table join for every hold.
_slot_with_session = Prepared(
    lambda slot_id: Slot.objects.select_related("session").filter(pk=slot_id).order_by()[:1]
)  # by key: no ORDER BY needed


def _bookable_slot(*, slot_id: int, now: datetime) -> tuple[Slot, BookingRule]:
    found = _slot_with_session(slot_id)
    slot = found[0] if found else None
    if slot is None:
        raise AppError("not_found", _("There is no such time slice."))
    session = slot.session
    reference.attach_reference_rows(session)
    if session.status != Session.Status.OPEN:
        raise AppError("session_stopped", _("This session has been stopped: %(reason)s") % {
            "reason": session.stopped_reason})  # fmt: skip
    rule = schedules.booking_rule_for(department=session.department)
    if not schedules.session_is_released(session=session, now=now, rule=rule):
        release_at = schedules.session_release_at(session=session, rule=rule)
        raise AppError("not_released", time=_local(release_at))
    if now >= schedules.slot_booking_closes_at(slot=slot, rule=rule):
        raise AppError(
            "closed",
            _("Booking for this time closes %(minutes)d minutes before it starts.")
            % {"minutes": rule.booking_cutoff_minutes},
        )
    return slot, rule


RuleRow = tuple[int, str, date, int, str]  # session_id, status, visit_date, department_id, gate_status
_RULE_FIELDS = ("session_id", "status", "visit_date", "department_id", "gate_status")


def _check_patient_rules(
    *,
    patient: Patient,
    session: Session,
    rule: BookingRule,
    exclude_booking: Booking | None = None,
    rows: list[RuleRow] | None = None,
) -> None:
    """One active booking per session, no second pending hold, and the department's per-day limits.
    Call with the patient's row locked; ``rows``: the patient's active bookings when already read."""
    if rows is None:
        active = Booking.objects.filter(patient=patient, status__in=ACTIVE_BOOKING_STATES)
        if exclude_booking is not None:
            active = active.exclude(pk=exclude_booking.pk)
        # One query for all the rules: a patient has a handful of active bookings at most.
        rows = list(active.order_by().values_list(*_RULE_FIELDS))
    if any(row[0] == session.pk for row in rows):
        raise AppError("already_booked")
    # A number held for its gate (a screening: hours, maybe a staff review) cannot be paid yet: it does not
    # stop the patient from holding another; once cleared it awaits payment like any hold.
    if any(row[1] == Booking.Status.HELD and row[4] != GateStatus.PENDING for row in rows):
        raise AppError("hold_pending")
    same_day = [row for row in rows if row[2] == session.date]
    if sum(1 for row in same_day if row[3] == session.department_id) >= rule.max_per_department_per_day:
        raise AppError("department_daily_limit", n=rule.max_per_department_per_day)
    departments = {row[3] for row in same_day}
    if session.department_id not in departments and len(departments) >= rule.max_departments_per_day:
        raise AppError("departments_daily_limit", n=rule.max_departments_per_day)


# The active bookings and the no-shows the policy can still count, read by every hold: compiled once. The
# waiver is a selected column, not a condition: inside the OR it made PostgreSQL's planner take ten times as
# long (0.65 ms against 0.07 ms a hold, measured with EXPLAIN).
_rule_rows = Prepared(
    lambda patient_id, horizon: (
        Booking.objects.filter(patient_id=patient_id)
        .filter(
            Q(status__in=ACTIVE_BOOKING_STATES) | Q(status=Booking.Status.NO_SHOW, visit_date__gte=horizon)
        )
        .order_by()
        .values_list(*_RULE_FIELDS, "no_show_waiver")
    )
)


def _check_hold_rules(*, patient: Patient, session: Session, rule: BookingRule, now: datetime) -> None:
    """The no-show policy and the patient's rules for a new hold, from one read of the patient's bookings
    (the active ones and the no-shows the policy can still count). Call with the patient's row locked: the
    read is its own statement after the lock, so it sees what a concurrent hold of this patient committed."""
    horizon = selectors.no_show_horizon(today=local_today(now=now))
    rows = _rule_rows(patient.pk, horizon)
    unwaived = [row[2] for row in rows if row[1] == Booking.Status.NO_SHOW and row[5] is None]
    noshow.no_show_check_days(days=unwaived, now=now)
    active: list[RuleRow] = [row[:5] for row in rows if row[1] != Booking.Status.NO_SHOW]
    _check_patient_rules(patient=patient, session=session, rule=rule, rows=active)


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


def _take_capacity(slot_id: int, *, department_id: int | None = None) -> bool:
    # The race for the last numbers: a compare-and-set in the database, so two requests can never both take
    # the last one (and the check constraint taken <= capacity backs it up).
    if Slot.objects.filter(pk=slot_id, taken__lt=F("capacity")).update(taken=F("taken") + 1) != 1:
        return False
    # The availability pages' cached counts (the department, when the caller has it, saves a look-up).
    availability_changed(slot_id=slot_id, department_id=department_id)
    return True


def _release_capacity(slot_id: int, source: str = BookingSource.ONLINE) -> None:
    """Give a number back to the pool it came from: a desk-kept number to the desk, an extra number made for
    a patient at the desk disappears with it, an online number goes back online."""
    if source == BookingSource.DESK:
        Slot.objects.filter(pk=slot_id, desk_taken__gt=0).update(desk_taken=F("desk_taken") - 1)
        return
    if source == BookingSource.EXTRA:
        Slot.objects.filter(pk=slot_id, taken__gt=0, extra__gt=0).update(
            taken=F("taken") - 1, capacity=F("capacity") - 1, extra=F("extra") - 1
        )
        return
    Slot.objects.filter(pk=slot_id, taken__gt=0).update(taken=F("taken") - 1)
    availability_changed(slot_id=slot_id)
    transaction.on_commit(lambda: cache.delete(_full_hint_key(slot_id)))


def _verified_patient(*, account: User, patient_id: int, lock: bool = False) -> Patient:
    """The account's verified patient (locked for the transaction when ``lock``), Http404 for anyone else's,
    AppError when not verified."""
    patient = medcard_selectors.verified_patient_for_account(
        account=account, patient_id=patient_id, lock=lock
    )
    if patient is not None:
        return patient
    row = medcard_selectors.patient_for_account(account=account, patient_id=patient_id)  # 404 if not theirs
    if row.patient.verification != Patient.Verification.MATCH or row.card is None:
        raise AppError("patient_not_verified")
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


def hold_plan(*, session: Session, answers: Mapping[str, object] | None) -> GatePlan | None:
    """The gate that holds this session's numbers, with the patient's answers checked (``None``: no gate).
    Raises the gate's refusal for answers it cannot accept."""
    for gate in gates.gates_all():
        plan = gate.plan(session=session, answers=answers)
        if plan is not None:
            return plan
    return None


def hold_plan_unanswered(*, session: Session) -> GatePlan | None:
    """The gate that holds this session's numbers when no questions were asked (a waitlist offer, a move),
    or ``None``."""
    for gate in gates.gates_all():
        plan = gate.plan_unanswered(session=session)
        if plan is not None:
            return plan
    return None


def hold_place(
    *,
    patient_id: int,
    account_id: int,
    slot: Slot,
    rule: BookingRule,
    plan: GatePlan | None,
    now: datetime,
    from_waitlist: bool = False,
    take_capacity: bool = False,
) -> Booking:
    """Inside the transaction that took the slice's capacity: create the held (or, free and ungated, booked)
    number, open its gate, record a free number's payment and tell the patient after commit. With
    ``take_capacity`` the number is taken here, with the booking's insert (one statement on PostgreSQL), and
    a full slice is refused (AppError ``full``).

    The one door every new number passes (a patient's hold, a waitlist offer): a paid number is held for the
    payment window; a free, ungated number is booked at once with its zero-fee payment row; a gated number,
    free or paid, is held for its gate's first step (``plan.first_wait``), never past the booking cut-off.
    """
    session = slot.session
    free = session.fee == 0 and plan is None
    expires_at: datetime | None
    if plan is not None:
        expires_at = min(now + plan.first_wait, schedules.slot_booking_closes_at(slot=slot, rule=rule))
    else:
        expires_at = None if free else now + rule.payment_window()
    booking = Booking(
        patient_id=patient_id,
        account_id=account_id,
        session=session,
        slot=slot,
        department=session.department,
        visit_date=session.date,
        fee=money(session.fee),
        status=Booking.Status.BOOKED if free else Booking.Status.HELD,
        hold_expires_at=expires_at,
        from_waitlist=from_waitlist,
        gate=plan.gate if plan is not None else "",
        gate_status=GateStatus.PENDING if plan is not None else "",
    )
    if not take_capacity:
        booking.save(force_insert=True)
    elif insert_taking_capacity(booking):
        availability_changed(slot_id=slot.pk, department_id=session.department_id)
    else:
        _mark_full(slot.pk)
        raise AppError("full")
    if plan is not None:
        gates.gate_get(plan.gate).open(booking=booking, plan=plan, now=now)
    if free:
        _free_payment_record(booking=booking, now=now)
    kind = "booked" if free else ("waitlist_offer" if from_waitlist else "")
    if kind:
        notifications.booking_notify(booking_id=booking.pk, kind=kind)
    return booking


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

    A gated session (a registered ``HoldGate`` holds its numbers, e.g. a screened examination) needs the
    ``answers`` the gate asks for (refused with the gate's code otherwise); its number, free or paid, is held
    for the gate (``hold_place``), and the payment window starts only when the gate is cleared.
    """
    now = now or timezone.now()
    slot, rule = _bookable_slot(slot_id=slot_id, now=now)
    session = slot.session
    plan = hold_plan(session=session, answers=answers)
    if slot.taken >= slot.capacity:
        _mark_full(slot.pk)
        # Cheap pre-check on the row just read: under a flash crowd most requests lose, and they are told so
        # without a transaction. The conditional update below stays the only authority.
        raise AppError("full")
    try:
        with transaction.atomic():
            # Find the patient and lock their row in one query: the same patient on two phones cannot pass
            # the rules twice.
            patient = _verified_patient(account=account, patient_id=patient_id, lock=True)
            _check_hold_rules(patient=patient, session=session, rule=rule, now=now)
            # The race for the last numbers: the conditional update takes one, and the booking's row is
            # inserted with it (refused "full" when none is left).
            booking = hold_place(
                patient_id=patient.pk,
                account_id=account.pk,
                slot=slot,
                rule=rule,
                plan=plan,
                now=now,
                take_capacity=True,
            )
            booking.patient = patient  # in hand: the answer shows the patient without another query
    except IntegrityError:
        # The partial unique index caught a second active booking that slipped past the rules.
        raise AppError("already_booked") from None
    logger.info("hold created", extra={"booking": booking.pk, "slot": slot.pk, "status": booking.status})
    return booking


def _cancel_and_release(
    *, booking: Booking, from_status: str, reason: str, now: datetime, settle_reason: str = ""
) -> bool:
    """Inside a transaction: cancel the booking if it is still ``from_status``, give its number back, settle
    its payments and offer the number to the waitlist after commit. False when the booking changed meanwhile.
    """
    # Compare-and-set: a payment, the expiry sweep or a second cancel racing this one settle on one outcome.
    changed = Booking.objects.filter(pk=booking.pk, status=from_status).update(
        status=Booking.Status.CANCELLED, cancel_reason=reason[:200], updated_at=now
    )
    if changed != 1:
        return False
    _release_capacity(booking.slot_id, booking.source)
    payments.payments_settle_cancelled(booking=booking, reason=settle_reason or reason or "cancelled")
    transaction.on_commit(lambda: waitlist.waitlist_offer_task(session_id=booking.session_id))
    return True


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
        raise AppError("not_cancellable")
    deadline = schedules.cancel_deadline(session=booking.session, rule=rule)
    if booking.status == Booking.Status.BOOKED and now > deadline:
        raise AppError("cancel_deadline", time=_local(deadline))
    with transaction.atomic():
        if not _cancel_and_release(
            booking=booking,
            from_status=booking.status,
            reason=reason[:200] or "patient",
            now=now,
            settle_reason="patient cancelled",
        ):
            raise AppError("changed")
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
    now = now or timezone.now()
    old = booking_for_account(account=account, booking_id=booking_id)
    if old.status not in (Booking.Status.HELD, Booking.Status.BOOKED):
        raise AppError("not_reschedulable")
    if old.gate:
        # The gate's records (a screening case, its uploads and decision) belong to this booking, and the
        # visit date may be one of the decision's inputs: a gated number is cancelled and booked again.
        raise AppError("screened_not_movable")
    rule = schedules.booking_rule_for(department=old.department)
    if old.status == Booking.Status.BOOKED and now > schedules.cancel_deadline(
        session=old.session, rule=rule
    ):
        raise AppError("cancel_deadline", _("Rule: this number can no longer be changed."))
    slot, new_rule = _bookable_slot(slot_id=new_slot_id, now=now)
    # The new slice's rules apply exactly as to a new hold: a gated session (a screened examination) asks
    # its questions and opens its gate with a new hold, which a move cannot do.
    if hold_plan_unanswered(session=slot.session) is not None:
        raise AppError("screening_required")
    if slot.pk == old.slot_id:
        raise AppError("same_slot")
    if money(slot.session.fee) != old.fee:
        raise AppError("different_fee")
    try:
        with transaction.atomic():
            Patient.objects.select_for_update().filter(pk=old.patient_id).first()
            changed = Booking.objects.filter(pk=old.pk, status=old.status).update(
                status=Booking.Status.CANCELLED, cancel_reason="rescheduled", updated_at=now
            )
            if changed != 1:
                raise AppError("changed")
            _check_patient_rules(
                patient=old.patient, session=slot.session, rule=new_rule, exclude_booking=old
            )
            if not _take_capacity(slot.pk):
                raise AppError("full", _("The new time is fully booked."))
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
            _release_capacity(old.slot_id, old.source)
            transaction.on_commit(lambda: waitlist.waitlist_offer_task(session_id=old.session_id))
    except IntegrityError:
        raise AppError("already_booked", _("This patient already has a number in that session.")) from None
    return new
