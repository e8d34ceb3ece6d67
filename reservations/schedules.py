"""Schedules: sessions and slots generated from weekly templates, and the clock of a session.

Every moment a rule speaks of (release at 07:00, cancel until 23:59 the day before) is a local time in the
hospital's zone; it is turned into an aware datetime here, once, and compared with ``timezone.now()`` (UTC)
everywhere else. China has no daylight saving time, but the conversion still goes through zoneinfo so that no
naive datetime is ever made.

Boundaries, the same way round everywhere: a session is released *from* its release moment on
(``now >= release_at``); booking, cancelling and joining the waitlist are possible *until* their closing
moment, exclusive (``now < closes_at``).
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core.clock import HOSPITAL_TZ, local_datetime, local_today
from reservations.models import BookingRule, Department, Session, Slot, WeeklyTemplate

logger = logging.getLogger(__name__)

# Rules and templates are written in the hospital's local time (core.clock); storage is UTC.


# --- Generation --------------------------------------------------------------------------------------------


def _slices(day: date, template: WeeklyTemplate) -> list[tuple[datetime, datetime]]:
    """The template's time slices on ``day``; a last slice that does not fit whole ends at the end time."""
    start, end = local_datetime(day, template.start_time), local_datetime(day, template.end_time)
    step = timedelta(minutes=template.slice_minutes)
    slices = []
    while start < end:
        slices.append((start, min(start + step, end)))
        start += step
    return slices


def _session_create(*, template: WeeklyTemplate, day: date) -> bool:
    """Create the template's session on ``day`` with its slots, unless one exists; True when created.

    The unique constraints (one session per doctor, or per department room, and half-day) are the keys of the
    get-or-create, so two generators running at once cannot make a session twice: the loser's insert fails and
    it finds the winner's row. An existing session is never changed, whatever the template says now.
    """
    if template.doctor_id is not None:
        keys = {"doctor_id": template.doctor_id, "date": day, "half_day": template.half_day}
    else:
        keys = {
            "doctor": None,
            "department_id": template.department_id,
            "room": template.room,
            "date": day,
            "half_day": template.half_day,
        }
    if Session.objects.filter(**keys).exists():
        return False
    try:
        with transaction.atomic():
            session = Session.objects.create(
                **{
                    "department_id": template.department_id,
                    "room": template.room,
                    "clinic_type": template.clinic_type,
                    "fee": template.clinic_type.fee,
                    "starts_at": local_datetime(day, template.start_time),
                    "ends_at": local_datetime(day, template.end_time),
                    "template": template,
                    **keys,
                }
            )
            Slot.objects.bulk_create(
                Slot(
                    session=session,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    capacity=template.quota_per_slice,
                    desk_capacity=template.desk_quota_per_slice,
                )
                for starts_at, ends_at in _slices(day, template)
            )
    except IntegrityError:
        # Another generator (or a member of staff) created it between our look-up and our insert.
        if Session.objects.filter(**keys).exists():
            return False
        raise
    return True


def sessions_generate(*, days_ahead: int, today: date | None = None) -> int:
    """Create the sessions of every active weekly template from ``today`` to ``today + days_ahead`` (local
    dates, both included), each with one slot per ``slice_minutes``; return how many sessions were created.

    Rules: the fee is copied from the clinic type when the session is created (a later fee change does not
    alter it); a slot holds ``quota_per_slice`` online numbers and ``desk_quota_per_slice`` desk numbers;
    running it again creates nothing new and never alters an existing session (a stopped or edited session
    stays as staff left it). Run it before the earliest release time, so a released date always has sessions.
    """
    if days_ahead < 0:
        raise ValueError("days_ahead cannot be negative.")
    first = today or local_today()
    templates = list(WeeklyTemplate.objects.filter(active=True).select_related("clinic_type"))
    created = 0
    for offset in range(days_ahead + 1):
        day = first + timedelta(days=offset)
        for template in templates:
            if template.weekday == day.weekday() and _session_create(template=template, day=day):
                created += 1
    logger.info("sessions generated", extra={"sessions_created": created, "first_date": first.isoformat()})
    return created


def generation_horizon_days() -> int:
    """How far ahead to generate: the longest release window of all rules (the default rule included)."""
    booking_rule_default()
    return BookingRule.objects.aggregate(days=Max("release_days_ahead"))["days"] or 0


# --- Rules -------------------------------------------------------------------------------------------------


def booking_rule_default() -> BookingRule:
    """The hospital's default rule, created with the model's defaults the first time it is asked for."""
    rule = BookingRule.objects.filter(department__isnull=True).first()
    if rule is not None:
        return rule
    try:
        with transaction.atomic():
            return BookingRule.objects.create(department=None)
    except IntegrityError:  # created concurrently (PostgreSQL enforces one default)
        return BookingRule.objects.get(department__isnull=True)


RULE_CACHE_S = 60


def _rule_cache_key(department_id: int) -> str:
    return f"booking-rule:{department_id}"


# Each process also keeps a rule it read for LOCAL_RULE_S: an availability page asks for its department's rule
# four times, a hold once, and before 07:00 that is thousands of cache round trips a second. A rule saved in
# another process reaches this one at most that much later.
LOCAL_RULE_S = 1.0
_local_rules: dict[int, tuple[float, BookingRule]] = {}


def forget_local_rules() -> None:
    """Drop this process's remembered rules (a rule changed here; tests)."""
    _local_rules.clear()


def booking_rule_for(*, department: Department) -> BookingRule:
    """The department's own booking rule, else the hospital default.

    Read on every booking, changed a few times a year: kept in the cache for a minute (and in the process for
    a second), and dropped at once when any rule is saved or deleted (``booking_rules_changed``).
    """
    now = time.monotonic()
    remembered = _local_rules.get(department.pk)
    if remembered is not None and remembered[0] > now:
        return remembered[1]
    key = _rule_cache_key(department.pk)
    rule: BookingRule | None = cache.get(key)
    if rule is None:
        rule = BookingRule.objects.filter(department=department).first() or booking_rule_default()
        cache.set(key, rule, RULE_CACHE_S)
    if len(_local_rules) > 10_000:
        _local_rules.clear()
    _local_rules[department.pk] = (now + LOCAL_RULE_S, rule)
    return rule


@receiver(post_save, sender=BookingRule, dispatch_uid="booking-rules-saved")
@receiver(post_delete, sender=BookingRule, dispatch_uid="booking-rules-deleted")
def booking_rules_changed(**kwargs: object) -> None:
    """Signal receiver: forget every cached rule (a default's change reaches every department using it)."""
    forget_local_rules()
    cache.delete_many([_rule_cache_key(pk) for pk in Department.objects.values_list("pk", flat=True)])


# --- The clock of a session --------------------------------------------------------------------------------


def released_through(*, rule: BookingRule, now: datetime) -> date:
    """The last local date whose sessions are released at ``now`` under ``rule``.

    A date D is released at ``release_time`` on D minus ``release_days_ahead`` days. With 14 days at 07:00:

    >>> from datetime import UTC, time
    >>> rule = BookingRule(release_days_ahead=14, release_time=time(7, 0))
    >>> released_through(rule=rule, now=datetime(2026, 11, 27, 22, 59, 59, tzinfo=UTC))  # 06:59:59 local
    datetime.date(2026, 12, 11)
    >>> released_through(rule=rule, now=datetime(2026, 11, 27, 23, 0, tzinfo=UTC))  # 07:00 local
    datetime.date(2026, 12, 12)
    """
    local_now = now.astimezone(HOSPITAL_TZ)
    last = local_now.date() + timedelta(days=rule.release_days_ahead)
    if local_now.timetz().replace(tzinfo=None) < rule.release_time:
        last -= timedelta(days=1)
    return last


def session_release_at(*, session: Session, rule: BookingRule | None = None) -> datetime:
    """When the session's numbers are released: ``release_time`` (local) ``release_days_ahead`` days before
    the session's date. ``rule`` defaults to the department's rule (pass it to save a query).

    For a session on 12 December with the default rule (14 days, 07:00), that is 07:00 local on 28 November,
    23:00 UTC on 27 November.
    """
    rule = rule or booking_rule_for(department=session.department)
    return local_datetime(session.date - timedelta(days=rule.release_days_ahead), rule.release_time)


def session_is_released(*, session: Session, now: datetime, rule: BookingRule | None = None) -> bool:
    """Whether the session's numbers are released at ``now`` (from the release moment on, inclusive)."""
    return now >= session_release_at(session=session, rule=rule)


def slot_booking_closes_at(*, slot: Slot, rule: BookingRule) -> datetime:
    """Booking a slot is possible until ``booking_cutoff_minutes`` before it starts (exclusive).

    A 08:00 slot with the default 30 minutes closes at 07:30 local.
    """
    return slot.starts_at - timedelta(minutes=rule.booking_cutoff_minutes)


def cancel_deadline(*, session: Session, rule: BookingRule) -> datetime:
    """Patients may cancel (with a refund) until ``cancel_deadline_time`` (local),
    ``cancel_deadline_days_before`` days before the session's date, exclusive.

    The default (1 day, 23:59) gives 23:59 local on the day before; 0 days at 00:00 gives the midnight that
    starts the visit day.
    """
    return local_datetime(
        session.date - timedelta(days=rule.cancel_deadline_days_before), rule.cancel_deadline_time
    )


def waitlist_closes_at(*, session: Session, rule: BookingRule) -> datetime:
    """The waitlist takes patients and offers numbers until ``waitlist_cutoff_hours`` before the session
    starts (exclusive); then its waiting entries are closed."""
    return session.starts_at - timedelta(hours=rule.waitlist_cutoff_hours)
