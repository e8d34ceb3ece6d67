"""Reads for patients looking for a number: department search, doctors and dates with numbers left, slices.

Anyone may read these, signed in or not: they show no personal data. Only released sessions of open
departments are shown; a slice says whether it can be booked now and, if not, why.

Before 07:00 thousands of patients reload these pages, so the rows they are built from (sessions, slices,
numbers left) are cached per department for ``AVAILABILITY_CACHE_SECONDS``. The counts stay right: every
change of a slice's numbers (hold, cancel, release, expiry, waitlist offer, extra numbers, a stopped session,
new sessions) calls :func:`availability_changed` after its commit, which moves the department to a new cache
version, so no read after the commit sees the old counts. Everything that depends on the clock (released
yet, booking closed) is computed from the cached rows at each read, never cached.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, IntegerField, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from pypinyin import Style, lazy_pinyin

from core.prepared import Prepared
from reservations.models import Booking, BookingRule, ClinicType, Department, Doctor, Session, Slot
from reservations.reference import attach_reference_rows
from reservations.schedules import (
    HOSPITAL_TZ,
    booking_rule_for,
    local_datetime,
    local_today,
    released_through,
    session_release_at,
    slot_booking_closes_at,
    waitlist_closes_at,
)

SEARCH_MAX_LENGTH = 40
_NOT_INITIALS = re.compile(r"[^a-z0-9]")


def pinyin_initials(text: str) -> str:
    """The first letters of the pinyin of ``text``, lower case, letters and digits only (at most 40).

    >>> pinyin_initials("神经内科")
    'sjnk'
    >>> pinyin_initials("CT室")
    'cts'
    >>> pinyin_initials("重症医学科")
    'zzyxk'
    """
    letters = "".join(lazy_pinyin(text, style=Style.FIRST_LETTER)).lower()
    return _NOT_INITIALS.sub("", letters)[:40]


@functools.lru_cache(maxsize=4096)
def pinyin_full(text: str) -> str:
    """The full pinyin of ``text`` without tones or spaces, lower case (patients type it as one word).

    >>> pinyin_full("神经内科")
    'shenjingneike'
    """
    return _NOT_INITIALS.sub("", "".join(lazy_pinyin(text)).lower())


def department_pinyin_refresh() -> int:
    """Fill the pinyin initials of departments that have none (a renamed department: clear it first);
    return how many were filled."""
    filled = 0
    for department in Department.objects.filter(pinyin_initials=""):
        # Compare-and-set on the empty value: a concurrent refresh or a staff edit is never overwritten.
        filled += Department.objects.filter(pk=department.pk, pinyin_initials="").update(
            pinyin_initials=pinyin_initials(department.name_zh)
        )
    return filled


def department_search(*, query: str) -> QuerySet[Department]:
    """Departments whose Chinese name, English name (case-insensitive) or description (a symptom such as 头痛)
    contains ``query``, or whose pinyin initials or full pinyin contain it (``sjnk`` and ``shenjingneike``
    find 神经内科, ``nk`` every 内科), in display order, with ``doctor_count``.

    An empty query finds every department. Departments whose initials were never filled are matched on
    initials computed here, so search works before :func:`department_pinyin_refresh` has run.
    """
    query = " ".join(query.split())[:SEARCH_MAX_LENGTH]
    departments = Department.objects.annotate(doctor_count=Count("doctors")).order_by("sort_order", "code")
    if not query:
        return departments
    matches = (
        Q(name_zh__icontains=query)
        | Q(name_en__icontains=query)
        | Q(description_zh__icontains=query)
        | Q(description_en__icontains=query)
    )
    initials = query.lower().replace(" ", "")
    if initials.isascii() and initials.isalnum():
        matches |= Q(pinyin_initials__contains=initials)
        names = Department.objects.values_list("pk", "name_zh", "pinyin_initials")
        # Full pinyin is computed here (memoised per name) rather than stored: a hospital has a few hundred
        # departments at most, and a name change needs no refresh step. Unfilled initials are matched too.
        matches |= Q(
            pk__in=[
                pk
                for pk, name, stored in names
                if (len(initials) > 1 and initials in pinyin_full(name))
                or (not stored and initials in pinyin_initials(name))
            ]
        )
    return departments.filter(matches)


# --- Availability ------------------------------------------------------------------------------------------

_T = TypeVar("_T")
_slot_departments: dict[int, int] = {}  # slot id -> department id: fixed for a slot's life, read once
_SLOT_DEPARTMENTS_MAX = 100_000


def forget_slot_departments() -> None:
    """Drop this process's slot-to-department map (tests: SQLite gives a new slot a deleted one's key)."""
    _slot_departments.clear()


# --- The rows a browsing page starts from -------------------------------------------------------------------
# Read by every reload of the availability pages and API before 07:00: compiled once per process
# (core/prepared.py), and the session alone, its department, clinic type and doctor coming from this process's
# reference rows (reservations/reference.py) as a hold's do. The session's own row is read every time, so a
# stopped session shows as stopped at once.
_department_by_code = Prepared(lambda code: Department.objects.filter(code=code).order_by()[:1])
_session_by_key = Prepared(lambda session_id: Session.objects.filter(pk=session_id).order_by()[:1])


def department_for_code(*, code: str) -> Department | None:
    found = _department_by_code(code)
    return found[0] if found else None


def session_with_reference(*, session_id: int, department_code: str | None = None) -> Session | None:
    """The session with its department, clinic type and doctor in place, as ``select_related`` would give
    them; None when there is no such session (or it is another department's, when ``department_code``)."""
    found = _session_by_key(session_id)
    if not found:
        return None
    session: Session = found[0]
    try:
        attach_reference_rows(session)
    except Session.DoesNotExist:
        return None
    if department_code is not None and session.department.code != department_code:
        return None
    return session


def _version_key(department_id: int) -> str:
    return f"availability-version:{department_id}"


def availability_changed(*, department_id: int | None = None, slot_id: int | None = None) -> None:
    """The numbers or sessions of a department changed: once the current transaction commits, reads see a new
    cache version (a bump before the commit could let a read cache the old rows under the new version)."""
    if department_id is None:
        if slot_id is None:
            raise ValueError("availability_changed needs a department or a slot")
        department_id = _slot_departments.get(slot_id)
        if department_id is None:
            department_id = (
                Slot.objects.filter(pk=slot_id).values_list("session__department_id", flat=True).first()
            )
            if department_id is None:
                return
            if len(_slot_departments) >= _SLOT_DEPARTMENTS_MAX:
                _slot_departments.clear()
            _slot_departments[slot_id] = department_id
    key = _version_key(department_id)
    transaction.on_commit(lambda: cache.set(key, secrets.token_hex(6), timeout=None))


@receiver(post_save, sender=Session, dispatch_uid="availability-session-saved")
@receiver(post_delete, sender=Session, dispatch_uid="availability-session-deleted")
@receiver(post_save, sender=Slot, dispatch_uid="availability-slot-saved")
@receiver(post_delete, sender=Slot, dispatch_uid="availability-slot-deleted")
def availability_saved(sender: type, instance: Session | Slot, **kwargs: object) -> None:
    """Signal receiver: a session or slice saved or deleted one by one (the admin, session generation); the
    services' bulk updates call ``availability_changed`` themselves."""
    if isinstance(instance, Session):
        availability_changed(department_id=instance.department_id)
    else:
        availability_changed(slot_id=instance.pk)


def _cached(department_id: int, name: str, compute: Callable[[], _T]) -> _T:
    """``compute()``, kept under the department's current version for AVAILABILITY_CACHE_SECONDS.

    The version and the rows are read in one round trip: the rows are stored with the version they were
    computed under and count only while that is still the department's version."""
    ttl = int(getattr(settings, "AVAILABILITY_CACHE_SECONDS", 0))
    if ttl <= 0:
        return compute()
    version_key, key = _version_key(department_id), f"availability:{department_id}:{name}"
    found = cache.get_many([version_key, key])
    version = found.get(version_key)
    if version is None:
        cache.add(version_key, secrets.token_hex(6), timeout=None)
        version = cache.get(version_key)
    stored: Any = found.get(key)
    if stored is not None and stored[0] == version:
        return stored[1]
    rows = compute()
    cache.set(key, (version, rows), ttl)
    return rows


@dataclass(frozen=True)
class SessionAvailability:
    """One doctor's (or examination room's) released session on a date, with the numbers left."""

    session: Session
    doctor: Doctor | None
    room: str
    clinic_type: ClinicType
    fee: Decimal
    remaining: int  # sum over the slots of capacity - taken
    bookable_remaining: int  # of which in slots whose booking has not closed yet

    @property
    def title(self) -> str:
        return self.doctor.get_title_display() if self.doctor else ""

    @property
    def name(self) -> str:
        return self.doctor.name if self.doctor else self.room


def _released_sessions(*, department: Department, rule: BookingRule, now: datetime) -> QuerySet[Session]:
    """The department's open sessions whose numbers are released at ``now``: release only depends on the
    date (one rule per department), so it is a date filter."""
    return Session.objects.filter(
        department=department,
        status=Session.Status.OPEN,
        date__lte=released_through(rule=rule, now=now),
    )


def _remaining() -> Coalesce:
    return Coalesce(Sum(F("slots__capacity") - F("slots__taken")), 0, output_field=IntegerField())


def _sessions_with_slices(
    *, department: Department, on: date, through: date
) -> list[tuple[Session, list[tuple[datetime, int]]]]:
    """The department's open sessions on ``on`` (released through ``through``), each with its slices' start
    and numbers left."""
    sessions = list(
        Session.objects.filter(department=department, status=Session.Status.OPEN, date=on, date__lte=through)
        .select_related("doctor", "clinic_type")
        .order_by("half_day", "starts_at", "doctor__code", "room")
    )
    slices: dict[int, list[tuple[datetime, int]]] = {session.pk: [] for session in sessions}
    rows = Slot.objects.filter(session__in=sessions).values_list(
        "session_id", "starts_at", "capacity", "taken"
    )
    for session_id, starts_at, capacity, taken in rows:
        slices[session_id].append((starts_at, capacity - taken))
    return [(session, slices[session.pk]) for session in sessions]


def doctors_with_availability(
    *, department: Department, on: date, now: datetime
) -> list[SessionAvailability]:
    """The department's open sessions on local date ``on`` that are released at ``now``, morning first, each
    with its doctor (or room), clinic type, fee and the numbers left.

    Rules: a session not yet released is not shown (not even as "full"); a stopped session is not shown;
    ``bookable_remaining`` leaves out slices closed by the booking cut-off.
    """
    rule = booking_rule_for(department=department)
    bookable_from = now + timedelta(minutes=rule.booking_cutoff_minutes)
    through = released_through(rule=rule, now=now)
    if on > through:
        return []
    rows = _cached(
        department.pk,
        f"sessions:{on.isoformat()}",
        lambda: _sessions_with_slices(department=department, on=on, through=through),
    )
    return [
        SessionAvailability(
            session=session,
            doctor=session.doctor,
            room=session.room,
            clinic_type=session.clinic_type,
            fee=session.fee,
            remaining=sum(left for _, left in slices),
            bookable_remaining=sum(left for starts_at, left in slices if starts_at > bookable_from),
        )
        for session, slices in rows
    ]


def available_dates(*, department: Department, now: datetime, days: int) -> list[tuple[date, int]]:
    """Local dates from today for ``days`` days on which the department has released open sessions, each with
    the numbers that can still be booked that day (0 when every session is full or its slices have closed
    for booking), in date order."""
    rule = booking_rule_for(department=department)
    first = local_today(now=now)
    bookable_from = now + timedelta(minutes=rule.booking_cutoff_minutes)

    def compute() -> list[tuple[date, list[tuple[datetime, int]]]]:
        sessions = _released_sessions(department=department, rule=rule, now=now).filter(
            date__gte=first, date__lt=first + timedelta(days=days)
        )
        by_date: dict[date, list[tuple[datetime, int]]] = {
            day: [] for day in sessions.order_by("date").values_list("date", flat=True).distinct()
        }
        rows = Slot.objects.filter(session__in=sessions).values_list(
            "session__date", "starts_at", "capacity", "taken"
        )
        for day, starts_at, capacity, taken in rows:
            by_date[day].append((starts_at, capacity - taken))
        return list(by_date.items())

    # Which dates are released depends on the clock only through released_through: part of the key. Which
    # slices are still bookable depends on the minute, so it is computed from the cached rows at each read.
    through = released_through(rule=rule, now=now)
    rows = _cached(department.pk, f"date-slices:{first.isoformat()}:{through.isoformat()}:{days}", compute)
    return [
        (day, sum(left for starts_at, left in slices if starts_at > bookable_from)) for day, slices in rows
    ]


@dataclass(frozen=True)
class NextRelease:
    """The next date to be released and when (for "numbers for 12 Dec open at 07:00 tomorrow")."""

    date: date
    release_at: datetime


def department_next_release(*, department: Department, now: datetime) -> NextRelease:
    """The first date not yet released at ``now`` under the department's rule, and its release moment."""
    rule = booking_rule_for(department=department)
    next_date = released_through(rule=rule, now=now) + timedelta(days=1)
    release_at = local_datetime(next_date - timedelta(days=rule.release_days_ahead), rule.release_time)
    return NextRelease(date=next_date, release_at=release_at)


# --- Slices ------------------------------------------------------------------------------------------------


class Unbookable:
    """Why a slice cannot be booked now, as stable codes (the API) with labels (the pages)."""

    STOPPED = "stopped"
    NOT_RELEASED = "not_released"
    CLOSED = "closed"
    FULL = "full"

    LABELS: ClassVar[dict[str, Promise]] = {
        STOPPED: _("Session stopped"),
        NOT_RELEASED: _("Not released yet"),
        CLOSED: _("Booking closed"),
        FULL: _("Full"),
    }


@dataclass(frozen=True)
class SlotAvailability:
    """One time slice of a session as a patient sees it."""

    slot: Slot
    starts_at_local: time
    ends_at_local: time
    remaining: int
    booking_closes_at: datetime
    unbookable_reason: str | None  # one of the Unbookable codes, None when bookable now

    @property
    def bookable(self) -> bool:
        return self.unbookable_reason is None

    @property
    def unbookable_label(self) -> str:
        return str(Unbookable.LABELS[self.unbookable_reason]) if self.unbookable_reason else ""


def session_slots(*, session: Session, now: datetime) -> list[SlotAvailability]:
    """The session's slices in time order, each with its local times, numbers left and whether it can be
    booked at ``now``.

    Rules, the first that applies: a stopped session books nothing; before the release moment nothing is
    bookable; a slice closes ``booking_cutoff_minutes`` before it starts; a slice with no number left is full.
    """
    rule = booking_rule_for(department=session.department)
    stopped = session.status == Session.Status.STOPPED
    released = now >= session_release_at(session=session, rule=rule)
    rows = []
    slots = _cached(
        session.department_id, f"slots:{session.pk}", lambda: list(session.slots.order_by("starts_at"))
    )
    for slot in slots:
        closes_at = slot_booking_closes_at(slot=slot, rule=rule)
        reason = None
        if stopped:
            reason = Unbookable.STOPPED
        elif not released:
            reason = Unbookable.NOT_RELEASED
        elif now >= closes_at:
            reason = Unbookable.CLOSED
        elif slot.remaining <= 0:
            reason = Unbookable.FULL
        rows.append(
            SlotAvailability(
                slot=slot,
                starts_at_local=slot.starts_at.astimezone(HOSPITAL_TZ).time(),
                ends_at_local=slot.ends_at.astimezone(HOSPITAL_TZ).time(),
                remaining=slot.remaining,
                booking_closes_at=closes_at,
                unbookable_reason=reason,
            )
        )
    return rows


def session_waitlist_open(*, session: Session, slots: list[SlotAvailability], now: datetime) -> bool:
    """Whether a patient can join the session's waitlist now: the session is open and released, before the
    waitlist's cut-off, and every slice is full (the waitlist is for a full session: a number anywhere in the
    session is booked directly)."""
    if session.status != Session.Status.OPEN or not slots:
        return False
    rule = booking_rule_for(department=session.department)
    if now < session_release_at(session=session, rule=rule) or now >= waitlist_closes_at(
        session=session, rule=rule
    ):
        return False
    return all(row.remaining <= 0 for row in slots)


def reschedule_slots(*, booking: Booking, now: datetime) -> list[Slot]:
    """Slices a booking could move to at ``now``: the same department and doctor (or room), the same fee (the
    payment moves with the number), released, open, not closed for booking and with a number left; soonest
    first, at most 40. :func:`reservations.services.booking_reschedule` checks all of it again."""
    session = booking.session
    rule = booking_rule_for(department=session.department)
    same = Q(session__doctor=session.doctor) if session.doctor_id else Q(session__room=session.room)
    return list(
        Slot.objects.filter(
            same,
            session__department_id=session.department_id,
            session__fee=session.fee,
            session__status=Session.Status.OPEN,
            session__date__gte=local_today(now=now),
            session__date__lte=released_through(rule=rule, now=now),
            starts_at__gt=now + timedelta(minutes=rule.booking_cutoff_minutes),
            capacity__gt=F("taken"),
        )
        .exclude(pk=booking.slot_id)
        .select_related("session__clinic_type")
        .order_by("starts_at")[:40]
    )
