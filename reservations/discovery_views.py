"""Pages for finding a number, open to everyone and working without JavaScript: departments with a search
box, a department's dates and doctors, a session's slices with a hold button on each bookable one."""

from __future__ import annotations

from datetime import date

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.clock import local_today
from reservations import discovery
from reservations.schedules import booking_rule_for, session_is_released, session_release_at


@require_GET
def department_list(request: HttpRequest) -> HttpResponse:
    """Departments, filtered by ``?q=`` (Chinese, English or pinyin initials)."""
    query = request.GET.get("q", "")[: discovery.SEARCH_MAX_LENGTH]
    departments = discovery.department_search(query=query)
    return render(request, "reservations/departments.html", {"departments": departments, "query": query})


def _chosen_date(raw: str, dates: list[tuple[date, int]], today: date) -> date:
    """The ``?date=`` asked for when it is an ISO date, else the first date with numbers left (or today)."""
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return next((day for day, remaining in dates if remaining > 0), dates[0][0] if dates else today)


@require_GET
def department_detail(request: HttpRequest, code: str) -> HttpResponse:
    """One department: the released dates with the numbers left, and the doctors on the chosen date."""
    department = discovery.department_for_code(code=code)
    if department is None:
        raise Http404
    now = timezone.now()
    days = booking_rule_for(department=department).release_days_ahead + 1
    dates = discovery.available_dates(department=department, now=now, days=days)
    on = _chosen_date(request.GET.get("date", ""), dates, local_today(now=now))
    context = {
        "department": department,
        "dates": dates,
        "on": on,
        "sessions": discovery.doctors_with_availability(department=department, on=on, now=now),
        "next_release": discovery.department_next_release(department=department, now=now),
    }
    return render(request, "reservations/department_detail.html", context)


@require_GET
def session_detail(request: HttpRequest, code: str, session_id: int) -> HttpResponse:
    """One session's slices with the numbers left; each bookable slice has a form that holds it."""
    session = discovery.session_with_reference(session_id=session_id, department_code=code)
    if session is None:
        raise Http404
    now = timezone.now()
    slots = discovery.session_slots(session=session, now=now)
    context = {
        "session": session,
        "slots": slots,
        "waitlist_open": discovery.session_waitlist_open(session=session, slots=slots, now=now),
        "release_at": session_release_at(session=session),
        "released": session_is_released(session=session, now=now),
    }
    return render(request, "reservations/session_detail.html", context)
