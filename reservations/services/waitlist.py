"""The waitlist (候补): a full session's released numbers go to waiting patients in the order they joined.

An offered number is a hold with its own payment window; when it lapses, the next patient is offered it.
The waitlist closes at the rule's cut-off before the session.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from medcard.models import Patient, User
from reservations import notifications, schedules
from reservations.models import ACTIVE_BOOKING_STATES, Booking, Session, Slot, WaitlistEntry
from reservations.services.booking import BookingRefused, _verified_patient, screening_hold_deadline
from reservations.services.money import money

logger = logging.getLogger(__name__)


def waitlist_join(
    *, account: User, patient_id: int, session_id: int, now: datetime | None = None
) -> WaitlistEntry:
    """Join a full, open, released session's waitlist before its cut-off; once per patient per session."""
    now = now or timezone.now()
    patient = _verified_patient(account=account, patient_id=patient_id)
    session = Session.objects.select_related("department").filter(pk=session_id).first()
    if session is None or session.status != Session.Status.OPEN:
        raise BookingRefused("session_stopped", _("This session is not open."))
    if not schedules.session_is_released(session=session, now=now):
        raise BookingRefused("not_released", _("This session's numbers are not released yet."))
    rule = schedules.booking_rule_for(department=session.department)
    if now >= schedules.waitlist_closes_at(session=session, rule=rule):
        raise BookingRefused("waitlist_closed", _("The waitlist for this session has closed."))
    remaining = session.slots.aggregate(n=Sum(F("capacity") - F("taken")))["n"] or 0
    if remaining > 0:
        raise BookingRefused("not_full", _("This session still has numbers: book one directly."))
    if Booking.objects.filter(patient=patient, session=session, status__in=ACTIVE_BOOKING_STATES).exists():
        raise BookingRefused("already_booked", _("This patient already has a number in this session."))
    try:
        return WaitlistEntry.objects.create(session=session, patient=patient, account=account)
    except IntegrityError:
        raise BookingRefused("already_waiting", _("This patient is already on the waitlist.")) from None


def waitlist_leave(*, account: User, entry_id: int) -> None:
    WaitlistEntry.objects.filter(pk=entry_id, account=account, status=WaitlistEntry.Status.WAITING).update(
        status=WaitlistEntry.Status.CANCELLED
    )


def waitlist_offer_next(*, session_id: int, now: datetime | None = None) -> int:
    """Offer every free number of the session to the waiting patients, first come first served.

    Each offer takes the number by the same conditional update as a hold, in a transaction with the entry
    row locked, so two sweeps never offer one number twice. Returns how many offers were made.
    """
    from screening import services as screening_services

    now = now or timezone.now()
    session = Session.objects.select_related("department", "clinic_type").get(pk=session_id)
    rule = schedules.booking_rule_for(department=session.department)
    if session.status != Session.Status.OPEN or now >= schedules.waitlist_closes_at(
        session=session, rule=rule
    ):
        return 0
    offers = 0
    while True:
        with transaction.atomic():
            entry = (
                WaitlistEntry.objects.select_for_update(skip_locked=True)
                .filter(session=session, status=WaitlistEntry.Status.WAITING)
                .order_by("created_at", "id")
                .first()
            )
            if entry is None:
                return offers
            slot = (
                Slot.objects.select_for_update()
                .filter(session=session, taken__lt=F("capacity"), starts_at__gt=now)
                .order_by("starts_at")
                .first()
            )
            if slot is None:
                return offers
            Patient.objects.select_for_update().filter(pk=entry.patient_id).first()
            if Booking.objects.filter(
                patient_id=entry.patient_id, session=session, status__in=ACTIVE_BOOKING_STATES
            ).exists():
                entry.status = WaitlistEntry.Status.CANCELLED  # booked another way meanwhile
                entry.save(update_fields=["status"])
                continue
            Slot.objects.filter(pk=slot.pk, taken__lt=F("capacity")).update(taken=F("taken") + 1)
            # A screened exam's offer is held for its screening like any hold (no questionnaire was asked
            # when joining: the case goes to staff, who ask), never booked or paid without it.
            plan = screening_services.case_plan_unanswered(exam_code=session.clinic_type.screening_exam)
            free = session.fee == 0 and plan is None
            expires_at: datetime | None
            if plan is not None:
                expires_at = screening_hold_deadline(slot=slot, rule=rule, now=now)
            else:
                expires_at = None if free else now + rule.payment_window()
            booking = Booking.objects.create(
                patient_id=entry.patient_id,
                account_id=entry.account_id,
                session=session,
                slot=slot,
                department=session.department,
                visit_date=session.date,
                fee=money(session.fee),
                status=Booking.Status.BOOKED if free else Booking.Status.HELD,
                hold_expires_at=expires_at,
                from_waitlist=True,
            )
            if plan is not None:
                screening_services.case_open(booking=booking, plan=plan, now=now)
            entry.status = WaitlistEntry.Status.CONVERTED if free else WaitlistEntry.Status.OFFERED
            entry.booking = booking
            entry.save(update_fields=["status", "booking"])
            notifications.booking_notify(booking_id=booking.pk, kind="waitlist_offer")
            offers += 1
            logger.info("waitlist offer", extra={"booking": booking.pk, "entry": entry.pk})


def waitlist_offer_task(*, session_id: int) -> None:
    """Enqueue an offer round for the session (called after commit by whoever freed a number)."""
    from medcard.services.outbox import task_send
    from reservations.tasks import waitlist_offer

    task_send(waitlist_offer.si(session_id))


def waitlists_close_due(*, now: datetime | None = None) -> int:
    """Close the waitlists whose cut-off has passed: waiting entries end as 'closed'."""
    now = now or timezone.now()
    closed = 0
    sessions = (
        Session.objects.filter(waitlist__status=WaitlistEntry.Status.WAITING)
        .distinct()
        .select_related("department")
    )
    for session in sessions:
        rule = schedules.booking_rule_for(department=session.department)
        if now >= schedules.waitlist_closes_at(session=session, rule=rule):
            closed += WaitlistEntry.objects.filter(
                session=session, status=WaitlistEntry.Status.WAITING
            ).update(status=WaitlistEntry.Status.CLOSED)
    return closed
