"""The clinic day's queues: check-in windows, one queue per session served from one or several rooms, and the
doctor's console moves (call next, recall, skip, complete, absent).

Order of calling: on-time patients by slice then check-in time, then late arrivals by check-in time; priority
patients (``QueueRule.priority_age`` and over, or flagged by staff) take every ``priority_every``-th call
while any wait, returning patients with results every ``results_every``-th; a patient skipped when called
(过号) waits behind ``missed_back_after`` more calls. Every move is a compare-and-set on the entry's state
and writes a ``QueueEvent`` in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.clock import HOSPITAL_TZ
from core.errors import AppError
from medcard.models import User
from reservations import live
from reservations.models import (
    Booking,
    QueueEntry,
    QueueEvent,
    QueueRule,
    Session,
    SessionQueue,
    Slot,
)
from reservations.selectors import queue_count, queue_pick, queue_rule_for

State = QueueEntry.State
# The moves of the state machine: (action, from state) → to state. Anything else is refused.
MOVES: dict[tuple[str, str], str] = {
    ("call", State.WAITING): State.CALLED,
    ("recall", State.CALLED): State.CALLED,
    ("skip", State.CALLED): State.WAITING,  # 过号: back in line behind a few others
    ("complete", State.CALLED): State.COMPLETED,
    ("absent", State.CALLED): State.ABSENT,
    ("requeue", State.ABSENT): State.WAITING,  # staff only: the patient turned up after all
}


@dataclass(frozen=True)
class CheckInWindow:
    opens_at: datetime
    on_time_until: datetime
    closes_at: datetime


def check_in_window(*, slot: Slot, rule: QueueRule) -> CheckInWindow:
    """From ``opens_minutes_before`` the slice; on time until its start plus the grace; closed at the end
    of the session."""
    return CheckInWindow(
        opens_at=slot.starts_at - timedelta(minutes=rule.opens_minutes_before),
        on_time_until=slot.starts_at + timedelta(minutes=rule.grace_minutes),
        closes_at=slot.session.ends_at,
    )


def _age_on(birth: object, day: object) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))  # type: ignore[attr-defined]


def queue_entry_create(*, booking: Booking, number: int, now: datetime, actor: User | None) -> QueueEntry:
    """Inside the check-in transaction: the booking's place in its session's queue."""
    rule = queue_rule_for(department=booking.department)
    window = check_in_window(slot=booking.slot, rule=rule)
    old = _age_on(booking.patient.birth_date, booking.visit_date) >= rule.priority_age
    entry = QueueEntry.objects.create(
        booking=booking,
        session_id=booking.session_id,
        number=number,
        on_time=now <= window.on_time_until,
        priority=old,
        priority_reason=_("%(age)d or older") % {"age": rule.priority_age} if old else "",
        slot_starts_at=booking.slot.starts_at,
        checked_in_at=now,
    )
    _event(entry=entry, action="check_in", from_state="", to_state=State.WAITING, actor=actor, now=now)
    return entry


def check_in_window_check(*, booking: Booking, now: datetime) -> None:
    """Refuse a check-in before the window opens or after the session ended, naming the time."""
    window = check_in_window(slot=booking.slot, rule=queue_rule_for(department=booking.department))
    if now < window.opens_at:
        raise AppError("check_in_too_early", time=f"{window.opens_at.astimezone(HOSPITAL_TZ):%H:%M}")
    if now >= window.closes_at:
        raise AppError("check_in_closed")


def _event(
    *,
    entry: QueueEntry,
    action: str,
    from_state: str,
    to_state: str,
    actor: User | None,
    now: datetime,
    room: str = "",
) -> None:
    QueueEvent.objects.create(
        entry=entry,
        session_id=entry.session_id,
        action=action,
        from_state=from_state,
        to_state=to_state,
        room=room or entry.room,
        actor=actor,
        at=now,
    )


def queue_call_next(*, doctor: User, session_id: int, room: str, now: datetime | None = None) -> QueueEntry:
    """Call the next patient of the session into ``room``. Two rooms calling at the same instant: the
    session's queue row is locked (select_for_update), so the second call waits for the first and picks
    from what is left; nobody is called into two rooms."""
    now = now or timezone.now()
    room = room.strip()
    if not room:
        raise AppError("room_missing")
    with transaction.atomic():
        SessionQueue.objects.get_or_create(session_id=session_id)
        # The race between rooms: one call at a time per session, on this row.
        state = SessionQueue.objects.select_for_update().get(session_id=session_id)
        session = Session.objects.select_related("department").get(pk=session_id)
        rule = queue_rule_for(department=session.department)
        waiting = list(QueueEntry.objects.filter(session_id=session_id, state=State.WAITING))
        entry = queue_pick(waiting=waiting, state=state, rule=rule)
        if entry is None:
            raise AppError("queue_empty")
        changed = QueueEntry.objects.filter(pk=entry.pk, state=State.WAITING).update(
            state=State.CALLED, room=room, called_at=now, calls=F("calls") + 1, updated_at=now
        )
        if changed != 1:  # the lock above makes this unreachable; the compare-and-set backs it up
            raise AppError("changed")
        queue_count(state=state, picked=entry)
        state.save(update_fields=["calls", "since_priority", "since_results"])
        entry.refresh_from_db()
        _event(
            entry=entry, action="call", from_state=State.WAITING, to_state=State.CALLED, actor=doctor, now=now
        )
        transaction.on_commit(lambda: live.queue_publish(session_id=session_id))
    return entry


def queue_move(
    *, actor: User, entry_id: int, action: str, room: str = "", now: datetime | None = None
) -> QueueEntry:
    """Recall, skip, complete, mark absent (the doctor, on a patient called into a room) or put an absent
    patient back in line (staff). Refused for any move the state machine does not have."""
    now = now or timezone.now()
    with transaction.atomic():
        entry = (
            QueueEntry.objects.select_for_update()
            .select_related("booking", "session__department")
            .get(pk=entry_id)
        )
        target = MOVES.get((action, entry.state))
        if target is None:
            raise AppError("queue_move", state=entry.get_state_display())
        if room and action != "requeue" and entry.room and room != entry.room:
            raise AppError("queue_other_room", room=entry.room)
        rule = queue_rule_for(department=entry.session.department)
        fields: dict[str, object] = {"state": target, "updated_at": now}
        if action == "recall":
            fields.update(calls=F("calls") + 1, called_at=now)
        if target == State.WAITING:
            calls = (
                SessionQueue.objects.filter(session_id=entry.session_id)
                .values_list("calls", flat=True)
                .first()
            )
            fields.update(not_before_call=(calls or 0) + rule.missed_back_after, room="", called_at=None)
        changed = QueueEntry.objects.filter(pk=entry.pk, state=entry.state).update(**fields)
        if changed != 1:
            raise AppError("changed")
        if target == State.COMPLETED:
            Booking.objects.filter(pk=entry.booking_id, status=Booking.Status.CHECKED_IN).update(
                status=Booking.Status.COMPLETED, updated_at=now
            )
        _event(
            entry=entry,
            action=action,
            from_state=entry.state,
            to_state=target,
            actor=actor,
            now=now,
            room=room,
        )
        entry.refresh_from_db()
        transaction.on_commit(lambda: live.queue_publish(session_id=entry.session_id))
    return entry


def queue_flag(
    *,
    staff: User,
    entry_id: int,
    priority: bool | None = None,
    with_results: bool | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> QueueEntry:
    """Staff set or clear a waiting patient's priority flag (with a reason) or the returning-with-results
    flag; recorded as a queue event."""
    now = now or timezone.now()
    reason = " ".join((reason or "").split())
    if priority and len(reason) < 2:
        raise AppError("reason_missing")
    with transaction.atomic():
        entry = QueueEntry.objects.select_for_update().get(pk=entry_id)
        if entry.state != State.WAITING:
            raise AppError("queue_move", state=entry.get_state_display())
        if priority is not None:
            entry.priority, entry.priority_reason = priority, reason[:200] if priority else ""
        if with_results is not None:
            entry.with_results = with_results
        entry.save(update_fields=["priority", "priority_reason", "with_results", "updated_at"])
        action = "priority" if priority is not None else "results"
        _event(entry=entry, action=action, from_state=entry.state, to_state=entry.state, actor=staff, now=now)
        transaction.on_commit(lambda: live.queue_publish(session_id=entry.session_id))
    return entry
