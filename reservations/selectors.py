"""Reads for departments and doctors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Count, QuerySet
from django.http import Http404

from medcard.models import Patient, User
from reservations import gates
from reservations.models import (
    ACTIVE_BOOKING_STATES,
    Booking,
    Department,
    Payment,
    Refund,
    Session,
    Slot,
    WaitlistEntry,
)


def department_list(*, kind: str | None = None) -> QuerySet[Department]:
    """Departments in display order, with how many doctors each has."""
    qs = Department.objects.annotate(doctor_count=Count("doctors"))
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("sort_order", "code")


def bookings_for_account(*, account: User) -> QuerySet[Booking]:
    """The account's bookings, upcoming first by time, with what the list pages show."""
    return (
        Booking.objects.filter(account=account)
        .select_related("patient", "department", "session__doctor", "slot")
        .order_by("-slot__starts_at", "-id")
    )


def booking_refund_status(*, booking: Booking) -> str | None:
    """The state of the booking's refund, if its fee is being or was refunded."""
    refund = Refund.objects.filter(payment__booking=booking).order_by("-id").first()
    return refund.status if refund is not None else None


def booking_payment(*, booking: Booking) -> Payment | None:
    return Payment.objects.filter(booking=booking).order_by("-id").first()


def waitlist_position(*, entry: WaitlistEntry) -> int:
    """1 for the first waiting patient of the session."""
    return (
        WaitlistEntry.objects.filter(
            session_id=entry.session_id, status=WaitlistEntry.Status.WAITING, created_at__lte=entry.created_at
        )
        .exclude(pk__gt=entry.pk, created_at=entry.created_at)
        .count()
    )


def hold_questions(*, session: Session, data: Mapping[str, Any] | None) -> gates.GateForm | None:
    """The questions a gated session asks with a hold (bound to ``data`` when given), or ``None``."""
    for gate in gates.gates_all():
        form = gate.form(session=session, data=data)
        if form is not None:
            return form
    return None


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


# --- The front desk ----------------------------------------------------------------------------------------


def desk_appointments(*, patient: Patient, today: date) -> list[Booking]:
    """A patient's active numbers from today on, soonest first, as the desk shows them."""
    return list(
        Booking.objects.filter(patient=patient, visit_date__gte=today, status__in=ACTIVE_BOOKING_STATES)
        .select_related("session__department", "session__doctor", "slot", "department")
        .order_by("slot__starts_at", "id")
    )


@dataclass(frozen=True)
class QueueTicket:
    """What the printed queue ticket says."""

    booking: Booking
    number: int
    room: str
    ahead: int


def queue_ticket(*, booking_id: int) -> QueueTicket:
    """The ticket of a checked-in number: its queue number, the room and how many checked-in patients of the
    same session are still ahead of it; Http404 for a number not checked in."""
    booking = (
        Booking.objects.select_related("session__department", "session__doctor", "slot", "patient")
        .filter(pk=booking_id, status=Booking.Status.CHECKED_IN, queue_number__isnull=False)
        .first()
    )
    if booking is None or booking.queue_number is None:
        raise Http404("No checked-in number here.")
    ahead = Booking.objects.filter(
        session_id=booking.session_id, status=Booking.Status.CHECKED_IN, queue_number__lt=booking.queue_number
    ).count()
    return QueueTicket(booking=booking, number=booking.queue_number, room=booking.session.room, ahead=ahead)


@dataclass(frozen=True)
class DaySessionsFilter:
    day: date
    department: str = ""
    doctor: str = ""
    half_day: str = ""


def sessions_of_day(*, filters: DaySessionsFilter) -> QuerySet[Session]:
    """A day's sessions, narrowed by department code, doctor code and half-day, in the desk's order."""
    qs = Session.objects.filter(date=filters.day)
    if filters.department:
        qs = qs.filter(department__code=filters.department)
    if filters.doctor:
        qs = qs.filter(doctor__code=filters.doctor)
    if filters.half_day:
        qs = qs.filter(half_day=filters.half_day)
    return (
        qs.select_related("department", "doctor", "clinic_type")
        .prefetch_related("slots")
        .order_by("half_day", "department__sort_order", "department__code", "starts_at", "id")
    )


def bookings_of_sessions(*, session_ids: list[int]) -> dict[int, list[Booking]]:
    """The active numbers of the given sessions, by session, in slice then queue order."""
    by_session: dict[int, list[Booking]] = {}
    bookings = (
        Booking.objects.filter(session_id__in=session_ids, status__in=ACTIVE_BOOKING_STATES)
        .select_related("patient", "slot")
        .order_by("slot__starts_at", "queue_number", "id")
    )
    for booking in bookings:
        by_session.setdefault(booking.session_id, []).append(booking)
    return by_session


def walk_in_sessions(*, day: date, department: str, now: datetime) -> list[tuple[Session, list[Slot]]]:
    """The day's open sessions (of one department, if given) with the slices the desk can still sell: those
    that have not ended."""
    sessions = Session.objects.filter(date=day, status=Session.Status.OPEN)
    if department:
        sessions = sessions.filter(department__code=department)
    sessions = (
        sessions.select_related("department", "doctor")
        .prefetch_related("slots")
        .order_by("starts_at", "department__code", "id")
    )
    rows = [(session, [slot for slot in session.slots.all() if slot.ends_at > now]) for session in sessions]
    return [(session, slots) for session, slots in rows if slots]
