"""The day of each department in figures, for administrators: booked, checked in, waiting, seen, missed, and
the average wait from check-in to the first call. Reads only (a selector module); the CSV is built here too.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Min, Q

from reservations.models import Booking, Department, QueueEntry

# A number someone holds for the day: paid, whatever happened at the clinic since.
BOOKED_STATES = (
    Booking.Status.BOOKED,
    Booking.Status.CHECKED_IN,
    Booking.Status.COMPLETED,
    Booking.Status.NO_SHOW,
)


@dataclass(frozen=True)
class DepartmentDay:
    department: Department
    booked: int
    checked_in: int
    waiting: int
    seen: int
    no_shows: int
    average_wait_minutes: float | None  # check-in to first call, over the patients called so far


def day_dashboard(*, day: date, department_code: str = "") -> list[DepartmentDay]:
    """One row per department with sessions or bookings on ``day`` (local date), in the departments' order.

    Rules: "booked" counts paid numbers of the day (booked, checked in, seen, missed); "checked in" every
    queue entry of the day; "waiting" those still waiting (called patients are not); "seen" those completed;
    "no-shows" bookings marked missed; the average wait runs from check-in to the first call.
    """
    departments = Department.objects.filter(Q(sessions__date=day) | Q(booking__visit_date=day)).distinct()
    if department_code:
        departments = departments.filter(code=department_code)
    bookings = {
        row["department"]: row
        for row in Booking.objects.filter(visit_date=day, status__in=BOOKED_STATES)
        .values("department")
        .annotate(booked=Count("id"), no_shows=Count("id", filter=Q(status=Booking.Status.NO_SHOW)))
    }
    queues = {
        row["session__department"]: row
        for row in QueueEntry.objects.filter(session__date=day)
        .values("session__department")
        .annotate(
            checked_in=Count("id"),
            waiting=Count("id", filter=Q(state=QueueEntry.State.WAITING)),
            seen=Count("id", filter=Q(state=QueueEntry.State.COMPLETED)),
        )
    }
    waits: dict[int, list[float]] = {}
    first_calls = (
        QueueEntry.objects.filter(session__date=day)
        .annotate(first_call=Min("events__at", filter=Q(events__action="call")))
        .filter(first_call__isnull=False)
        .values_list("session__department", "checked_in_at", "first_call")
    )
    for department_id, checked_in_at, first_call in first_calls:
        waits.setdefault(department_id, []).append(
            max(0.0, (first_call - checked_in_at).total_seconds() / 60)
        )
    rows = []
    for department in departments.order_by("sort_order", "code"):
        booked, queue = bookings.get(department.pk, {}), queues.get(department.pk, {})
        minutes = waits.get(department.pk)
        rows.append(
            DepartmentDay(
                department=department,
                booked=booked.get("booked", 0),
                checked_in=queue.get("checked_in", 0),
                waiting=queue.get("waiting", 0),
                seen=queue.get("seen", 0),
                no_shows=booked.get("no_shows", 0),
                average_wait_minutes=round(sum(minutes) / len(minutes), 1) if minutes else None,
            )
        )
    return rows


def day_dashboard_csv(*, day: date, rows: list[DepartmentDay], headers: list[str]) -> bytes:
    """The dashboard as CSV in UTF-8 with a byte-order mark, so Excel opens the Chinese names as Chinese."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(
            [
                day.isoformat(),
                row.department.code,
                row.department.name_zh,
                row.department.name_en,
                row.booked,
                row.checked_in,
                row.waiting,
                row.seen,
                row.no_shows,
                "" if row.average_wait_minutes is None else f"{row.average_wait_minutes:.1f}",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
