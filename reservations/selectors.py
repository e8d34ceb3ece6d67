"""Reads for departments and doctors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.http import Http404

from medcard.models import Patient, User
from reservations import gates
from reservations.models import (
    ACTIVE_BOOKING_STATES,
    Booking,
    Department,
    Payment,
    QueueEntry,
    QueueEvent,
    QueueRule,
    Refund,
    Session,
    SessionQueue,
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


def booking_refund_kind(*, booking: Booking) -> str:
    """Why the booking's latest refund was made, in the words its page uses: ``duplicate`` (a second
    payment of a number that stays booked), ``late`` (paid after the number was released) or ``cancelled``."""
    refunds = Refund.objects.filter(payment__booking=booking).order_by("-id")
    reason = refunds.values_list("reason", flat=True).first() or ""
    return {Refund.DUPLICATE_PAYMENT_REASON: "duplicate", Refund.LATE_PAYMENT_REASON: "late"}.get(
        reason, "cancelled"
    )


def booking_payment(*, booking: Booking) -> Payment | None:
    return Payment.objects.filter(booking=booking).order_by("-id").first()


def booking_receipt_payment(*, booking: Booking) -> Payment | None:
    """The payment a booking's electronic receipt is for: the one that stands (paid), else the latest paid
    and then refunded; None for a number never paid (or free: nothing was charged)."""
    payments = Payment.objects.filter(
        booking=booking,
        status__in=[Payment.Status.PAID, Payment.Status.REFUNDED],
        paid_at__isnull=False,
        amount__gt=0,
    ).exclude(channel=Payment.Channel.FREE)
    return payments.filter(status=Payment.Status.PAID).first() or payments.order_by("-paid_at", "-id").first()


def booking_for_receipt(*, booking_id: int) -> Booking:
    """Any booking with what its receipt shows, for staff (the caller checks the role and audits); Http404
    when there is none."""
    booking = (
        Booking.objects.select_related(
            "session__department", "session__doctor", "session__clinic_type", "slot", "patient"
        )
        .filter(pk=booking_id)
        .first()
    )
    if booking is None:
        raise Http404("No such booking.")
    return booking


def waitlist_position(*, entry: WaitlistEntry) -> int:
    """1 for the first waiting patient of the session."""
    return (
        WaitlistEntry.objects.filter(
            session_id=entry.session_id, status=WaitlistEntry.Status.WAITING, created_at__lte=entry.created_at
        )
        .exclude(pk__gt=entry.pk, created_at=entry.created_at)
        .count()
    )


def waitlist_entries_for_account(*, account: User) -> list[tuple[WaitlistEntry, int]]:
    """The account's entries still waiting (or offered a number), soonest session first, each with its
    position (0 for an offered entry: its number is held for the patient)."""
    entries = (
        WaitlistEntry.objects.filter(
            account=account, status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED]
        )
        .select_related("session__department", "session__doctor", "patient")
        .order_by("session__starts_at", "id")
    )
    return [
        (entry, waitlist_position(entry=entry) if entry.status == WaitlistEntry.Status.WAITING else 0)
        for entry in entries
    ]


def waitlist_entry_for_account(*, account: User, entry_id: int) -> WaitlistEntry:
    """The account's waitlist entry, or Http404 (also for entries of another account)."""
    entry = (
        WaitlistEntry.objects.select_related("session__department", "session__doctor", "patient")
        .filter(pk=entry_id, account=account)
        .first()
    )
    if entry is None:
        raise Http404("No such waitlist entry on this account.")
    return entry


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
        Booking.objects.select_related(
            "session__department", "session__doctor", "session__clinic_type", "slot", "patient"
        )
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


def queue_counts(*, session_id: int) -> dict[str, int]:
    """How many of the session's queue are in each state."""
    counts = {state: 0 for state in QueueEntry.State.values}
    for state, n in (
        QueueEntry.objects.filter(session_id=session_id).values_list("state").annotate(n=Count("id"))
    ):
        counts[state] = n
    return counts


# --- The waiting-room board and the patient's place ---------------------------------------------------------

BOARD_RECENT = 6


def board_snapshot(*, department: Department, day: date) -> dict[str, Any]:
    """What the waiting-room board of a department shows: the number and masked name last called into each
    room, and the last few calls."""
    session_ids = list(Session.objects.filter(department=department, date=day).values_list("id", flat=True))
    called = (
        QueueEntry.objects.filter(session_id__in=session_ids, state=QueueEntry.State.CALLED)
        .select_related("booking__patient")
        .order_by("-called_at")
    )
    rooms: dict[str, dict[str, Any]] = {}
    for entry in called:
        rooms.setdefault(
            entry.room,
            {"room": entry.room, "number": entry.number, "name": entry.booking.patient.masked_name},
        )
    recent = (
        QueueEvent.objects.filter(session_id__in=session_ids, action__in=["call", "recall"])
        .select_related("entry__booking__patient")
        .order_by("-at", "-id")[:BOARD_RECENT]
    )
    return {
        "department": department.name_zh,
        "rooms": sorted(rooms.values(), key=lambda r: r["room"]),
        "recent": [
            {
                "id": event.pk,
                "number": event.entry.number,
                "name": event.entry.booking.patient.masked_name,
                "room": event.room,
                "action": event.action,
                "at": event.at.isoformat(),
            }
            for event in recent
        ],
    }


def session_pace_minutes(*, session: Session) -> float:
    """Minutes between calls so far in the session (its last ten calls), or the planned pace before that:
    a slice's length over its numbers."""
    times = list(
        QueueEvent.objects.filter(session=session, action="call")
        .order_by("-at")
        .values_list("at", flat=True)[:10]
    )
    if len(times) >= 2:
        return max(0.5, (times[0] - times[-1]).total_seconds() / 60 / (len(times) - 1))
    slot = session.slots.order_by("starts_at").first()
    if slot is None or not slot.capacity:
        return 5.0
    return (slot.ends_at - slot.starts_at).total_seconds() / 60 / max(1, slot.capacity + slot.desk_capacity)


def my_place(*, booking: Booking, order: list[QueueEntry] | None = None) -> dict[str, Any]:
    """The patient's place: number, state, room when called, how many ahead and the estimated wait."""
    entry = QueueEntry.objects.filter(booking=booking).first()
    if entry is None:
        return {"checked_in": False}
    data: dict[str, Any] = {
        "checked_in": True,
        "number": entry.number,
        "state": entry.state,
        "room": entry.room,
    }
    if entry.state == QueueEntry.State.WAITING:
        waiting = order if order is not None else queue_order(session_id=entry.session_id)
        ahead = next((i for i, e in enumerate(waiting) if e.pk == entry.pk), len(waiting))
        pace = session_pace_minutes(session=entry.session)
        data.update(ahead=ahead, wait_minutes=round(ahead * pace), two_ahead=ahead == 2)
    return data


# --- Queue order (read by the console, the board, the phone; applied by services.queue) ---

State = QueueEntry.State


def queue_rule_for(*, department: Department) -> QueueRule:
    """The department's queue rules, else the hospital default, else the built-in defaults."""
    return (
        QueueRule.objects.filter(department=department).first()
        or QueueRule.objects.filter(department__isnull=True).first()
        or QueueRule()
    )


def _sort_key(entry: QueueEntry) -> tuple[int, datetime, datetime, int]:
    # On time: by slice, then arrival. Late: after every on-time patient, by arrival.
    first = entry.slot_starts_at if entry.on_time else entry.checked_in_at
    return (0 if entry.on_time else 1, first, entry.checked_in_at, entry.number)


def queue_pick(*, waiting: list[QueueEntry], state: SessionQueue, rule: QueueRule) -> QueueEntry | None:
    if not waiting:
        return None
    ordered = sorted(waiting, key=_sort_key)
    eligible = [e for e in ordered if e.not_before_call <= state.calls] or ordered
    priority = [e for e in eligible if e.priority]
    results = [e for e in eligible if e.with_results and not e.priority]
    normal = [e for e in eligible if not e.priority and not e.with_results]
    if priority and (state.since_priority + 1 >= rule.priority_every or not (normal or results)):
        return priority[0]
    if results and (state.since_results + 1 >= rule.results_every or not normal):
        return results[0]
    return normal[0] if normal else (results or priority)[0]


def queue_order(*, session_id: int) -> list[QueueEntry]:
    """The waiting patients in the order they will be called, as far as it is known now (the interleaving
    counters included)."""
    session = Session.objects.select_related("department").get(pk=session_id)
    rule = queue_rule_for(department=session.department)
    state = SessionQueue.objects.filter(session_id=session_id).first() or SessionQueue(session_id=session_id)
    simulated = SessionQueue(
        session_id=session_id,
        calls=state.calls,
        since_priority=state.since_priority,
        since_results=state.since_results,
    )
    waiting = list(QueueEntry.objects.filter(session_id=session_id, state=State.WAITING))
    order: list[QueueEntry] = []
    while waiting:
        nxt = queue_pick(waiting=waiting, state=simulated, rule=rule)
        assert nxt is not None  # noqa: S101 (waiting is not empty)
        order.append(nxt)
        waiting.remove(nxt)
        queue_count(state=simulated, picked=nxt)
    return order


def queue_count(*, state: SessionQueue, picked: QueueEntry) -> None:
    state.calls += 1
    state.since_priority = 0 if picked.priority else state.since_priority + 1
    state.since_results = 0 if (picked.with_results and not picked.priority) else state.since_results + 1


# --- The no-show policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suspension:
    until: date  # online booking is possible again on this day
    no_shows: int
    window_days: int


def no_show_suspension(*, patient: Patient, today: date) -> Suspension | None:
    """The patient's online-booking suspension in force on ``today``, if any: ``NO_SHOW_LIMIT`` no-shows
    (waived ones not counted) within ``NO_SHOW_WINDOW_DAYS`` suspend it for ``NO_SHOW_SUSPENSION_DAYS`` from
    the day of the last of them."""
    days = Booking.objects.filter(
        patient=patient, status=Booking.Status.NO_SHOW, visit_date__gte=no_show_horizon(today=today)
    ).exclude(no_show_waiver__isnull=False)
    return no_show_suspension_from(days=days.values_list("visit_date", flat=True), today=today)


def no_show_horizon(*, today: date) -> date:
    """The earliest visit day whose no-show can still suspend online booking on ``today``."""
    return today - timedelta(days=settings.NO_SHOW_WINDOW_DAYS + settings.NO_SHOW_SUSPENSION_DAYS)


def no_show_suspension_from(*, days: Iterable[date], today: date) -> Suspension | None:
    """The suspension in force on ``today`` given the visit days of the patient's unwaived no-shows since
    ``no_show_horizon`` (the hold reads them with its other rules' rows, in one query)."""
    limit, window = settings.NO_SHOW_LIMIT, settings.NO_SHOW_WINDOW_DAYS
    ordered = sorted(days)
    if len(ordered) < limit:
        return None
    until: date | None = None
    for i in range(limit - 1, len(ordered)):
        if (ordered[i] - ordered[i - limit + 1]).days < window:
            end = ordered[i] + timedelta(days=settings.NO_SHOW_SUSPENSION_DAYS)
            until = end if until is None or end > until else until
    if until is None or until <= today:
        return None
    return Suspension(until=until, no_shows=limit, window_days=window)


def no_shows_recent(*, patient: Patient, today: date) -> list[Booking]:
    """The patient's missed appointments the policy can still count, with any waiver, newest first."""
    horizon = today - timedelta(days=settings.NO_SHOW_WINDOW_DAYS + settings.NO_SHOW_SUSPENSION_DAYS)
    return list(
        Booking.objects.filter(patient=patient, status=Booking.Status.NO_SHOW, visit_date__gte=horizon)
        .select_related("department", "no_show_waiver")
        .order_by("-visit_date", "-id")
    )


def suspensions_for_account(*, account: User, today: date) -> list[tuple[Patient, Suspension]]:
    """The account's patients whose online booking is suspended, with why and until when."""
    patients = Patient.objects.filter(links__account=account).distinct().order_by("id")
    found = [(p, no_show_suspension(patient=p, today=today)) for p in patients]
    return [(p, s) for p, s in found if s is not None]
