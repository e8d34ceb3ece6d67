"""Staff actions on sessions: stop a session (停诊), add extra numbers (加号), check patients in."""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from core.clock import local_today
from medcard.models import AuditEvent, User
from medcard.services.audit import audit_record
from reservations import live, notifications
from reservations.discovery import availability_changed
from reservations.models import ACTIVE_BOOKING_STATES, Booking, Session, Slot, WaitlistEntry
from reservations.services import queue
from reservations.services.booking import AppError, _full_hint_key
from reservations.services.payments import payments_settle_cancelled
from reservations.services.waitlist import waitlist_offer_task

REASON_MIN_LENGTH = 2
REVEAL_REASON_MIN_LENGTH = 4  # as for any reveal at the desk


def session_stop(*, staff: User, session_id: int, reason: str, now: datetime | None = None) -> int:
    """Stop a session with a reason: every active booking is cancelled, paid fees are refunded, the waitlist
    is closed and every patient is told. Returns the number of bookings cancelled."""
    now = now or timezone.now()
    reason = " ".join((reason or "").split())
    if len(reason) < REASON_MIN_LENGTH:
        raise AppError("reason_missing", _("Give the reason for stopping the session."))
    with transaction.atomic():
        changed = Session.objects.filter(pk=session_id, status=Session.Status.OPEN).update(
            status=Session.Status.STOPPED, stopped_reason=reason[:200]
        )
        if changed != 1:
            raise AppError("session_stopped", _("This session is already stopped."))
        audit_record(
            actor=staff,
            patient=None,
            action=AuditEvent.Action.SESSION_STOPPED,
            reason=reason,
            target=f"session {session_id}",
            changes={"status": [Session.Status.OPEN, Session.Status.STOPPED]},
        )
        cancelled = 0
        for booking in Booking.objects.select_for_update().filter(
            session_id=session_id, status__in=ACTIVE_BOOKING_STATES
        ):
            Booking.objects.filter(pk=booking.pk).update(
                status=Booking.Status.CANCELLED,
                cancel_reason=f"session stopped: {reason}"[:200],
                updated_at=now,
            )
            payments_settle_cancelled(booking=booking, reason="session stopped")
            notifications.booking_notify(booking_id=booking.pk, kind="session_stopped")
            cancelled += 1
        Slot.objects.filter(session_id=session_id).update(taken=0, desk_taken=0)
        department_id = Session.objects.values_list("department_id", flat=True).get(pk=session_id)
        availability_changed(department_id=department_id)
        WaitlistEntry.objects.filter(session_id=session_id, status=WaitlistEntry.Status.WAITING).update(
            status=WaitlistEntry.Status.CLOSED
        )
    return cancelled


def slot_extra_add(*, staff: User, slot_id: int, count: int = 1, now: datetime | None = None) -> Slot:
    """Add extra numbers online to a slice that has not ended, in an open session; they go to the waitlist
    first, then to anyone. (An extra number for the patient at the desk is sold by ``walk_in_sell``.)"""
    now = now or timezone.now()
    if not 1 <= count <= 20:
        raise AppError("count")
    with transaction.atomic():
        updated = Slot.objects.filter(
            pk=slot_id, session__status=Session.Status.OPEN, ends_at__gt=now
        ).update(capacity=F("capacity") + count, extra=F("extra") + count)
        if updated != 1:
            if Slot.objects.filter(pk=slot_id, ends_at__lte=now).exists():
                raise AppError("slice_ended")
            raise AppError("session_stopped", _("Extra numbers can only be added to an open session."))
        slot = Slot.objects.get(pk=slot_id)
        availability_changed(slot_id=slot_id)
        audit_record(
            actor=staff,
            patient=None,
            action=AuditEvent.Action.EXTRA_NUMBERS_ADDED,
            target=f"slot {slot_id}",
            changes={
                "capacity": [slot.capacity - count, slot.capacity],
                "extra": [slot.extra - count, slot.extra],
            },
        )
        transaction.on_commit(lambda: cache.delete(_full_hint_key(slot_id)))
        transaction.on_commit(lambda: waitlist_offer_task(session_id=slot.session_id))
    return slot


def session_names_reveal(*, staff: User, session_id: int, reason: str) -> int:
    """Let the desk see the full names of a session's patients, with a reason: one audit row per patient
    shown, all in one transaction. Returns how many names were revealed."""
    reason = " ".join((reason or "").split())
    if len(reason) < REVEAL_REASON_MIN_LENGTH:
        raise AppError("reason_missing")
    with transaction.atomic():
        bookings = Booking.objects.filter(
            session_id=session_id, status__in=ACTIVE_BOOKING_STATES
        ).select_related("patient")
        for booking in bookings:
            audit_record(
                actor=staff,
                patient=booking.patient,
                action=AuditEvent.Action.FIELD_REVEALED,
                fields="name",
                reason=reason,
                target=f"session {session_id}",
            )
    return len(bookings)


def booking_check_in(*, staff: User | None, booking_id: int, now: datetime | None = None) -> Booking:
    """Check a booked patient in on the day of the visit and give the next queue number of the session.
    Checking in twice is harmless: the second time returns the number already given."""
    now = now or timezone.now()
    with transaction.atomic():
        # Lock the session row: queue numbers are handed out one at a time per session.
        Session.objects.select_for_update().filter(bookings__pk=booking_id).first()
        booking = (
            Booking.objects.select_for_update()
            .select_related("patient", "slot__session", "department")
            .get(pk=booking_id)
        )
        if booking.status == Booking.Status.CHECKED_IN:
            return booking
        if booking.status != Booking.Status.BOOKED:
            raise AppError("not_checkable")
        if booking.visit_date != local_today(now=now):
            raise AppError("check_in_wrong_day", day=booking.visit_date.isoformat())
        queue.check_in_window_check(booking=booking, now=now)
        last = (
            Booking.objects.filter(session_id=booking.session_id).aggregate(n=Max("queue_number"))["n"] or 0
        )
        booking.status, booking.queue_number = Booking.Status.CHECKED_IN, last + 1
        booking.save(update_fields=["status", "queue_number", "updated_at"])
        entry = queue.queue_entry_create(booking=booking, number=last + 1, now=now, actor=staff)
        audit_record(
            actor=staff,
            patient=booking.patient,
            action=AuditEvent.Action.CHECKED_IN,
            target=f"booking {booking.pk}",
            changes={
                "status": [Booking.Status.BOOKED, Booking.Status.CHECKED_IN],
                "queue_number": [None, last + 1],
            },
        )
        transaction.on_commit(lambda: live.queue_publish(session_id=entry.session_id))
    return booking
