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
from medcard.services.outbox import task_send
from reservations import schedules, tasks
from reservations.models import ACTIVE_BOOKING_STATES, Booking, Session, Slot, WaitlistEntry
from reservations.services import noshow
from reservations.services.booking import (
    AppError,
    _take_capacity,
    _verified_patient,
    hold_place,
    hold_plan_unanswered,
)

logger = logging.getLogger(__name__)


def waitlist_join(
    *, account: User, patient_id: int, session_id: int, now: datetime | None = None
) -> WaitlistEntry:
    """Join a full, open, released session's waitlist before its cut-off; once per patient per session."""
    now = now or timezone.now()
    patient = _verified_patient(account=account, patient_id=patient_id)
    noshow.no_show_check(patient=patient, now=now)
    session = Session.objects.select_related("department").filter(pk=session_id).first()
    if session is None or session.status != Session.Status.OPEN:
        raise AppError("session_stopped")
    if not schedules.session_is_released(session=session, now=now):
        raise AppError("not_released", _("This session's numbers are not released yet."))
    rule = schedules.booking_rule_for(department=session.department)
    if now >= schedules.waitlist_closes_at(session=session, rule=rule):
        raise AppError("waitlist_closed")
    remaining = session.slots.aggregate(n=Sum(F("capacity") - F("taken")))["n"] or 0
    if remaining > 0:
        raise AppError("not_full")
    if Booking.objects.filter(patient=patient, session=session, status__in=ACTIVE_BOOKING_STATES).exists():
        raise AppError("already_booked")
    try:
        return WaitlistEntry.objects.create(session=session, patient=patient, account=account)
    except IntegrityError:
        raise AppError("already_waiting") from None


def waitlist_leave(*, account: User, entry_id: int) -> None:
    WaitlistEntry.objects.filter(pk=entry_id, account=account, status=WaitlistEntry.Status.WAITING).update(
        status=WaitlistEntry.Status.CANCELLED
    )


def waitlist_offer_next(*, session_id: int, now: datetime | None = None) -> int:
    """Offer every free number of the session to the waiting patients, first come first served.

    Each offer takes the number by the same conditional update as a hold, in a transaction with the entry
    row locked, so two sweeps never offer one number twice. Returns how many offers were made.
    """
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
            if not _take_capacity(slot.pk):
                return offers  # taken by a hold since the row was locked: nothing left to offer
            # Through the same door as any hold: a gated session's offer (a screened exam) is held for its
            # gate, with no questions asked when joining (the gate's staff ask); a free one is booked with its
            # zero-fee payment row.
            slot.session = session
            booking = hold_place(
                patient_id=entry.patient_id,
                account_id=entry.account_id,
                slot=slot,
                rule=rule,
                plan=hold_plan_unanswered(session=session),
                now=now,
                from_waitlist=True,
            )
            free = booking.status == Booking.Status.BOOKED
            entry.status = WaitlistEntry.Status.CONVERTED if free else WaitlistEntry.Status.OFFERED
            entry.booking = booking
            entry.save(update_fields=["status", "booking"])
            offers += 1
            logger.info("waitlist offer", extra={"booking": booking.pk, "entry": entry.pk})


def waitlist_offer_task(*, session_id: int) -> None:
    """Enqueue an offer round for the session (called after commit by whoever freed a number)."""
    task_send(tasks.waitlist_offer.si(session_id))


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
