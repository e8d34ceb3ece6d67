"""Front-desk pages for a day's sessions: stop a session, add extra numbers, check patients in, take fees."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.errors import AppError
from medcard import roles
from medcard.views import role_required
from reservations import services
from reservations.models import ACTIVE_BOOKING_STATES, Booking, Session


def _day(request: HttpRequest) -> date:
    return parse_date(request.GET.get("date") or request.POST.get("date") or "") or timezone.localdate()


def _back(day: date) -> HttpResponse:
    return redirect(f"/booking/staff/sessions/?date={day.isoformat()}")


@role_required(roles.FRONT_DESK)
@require_GET
def sessions_of_day(request: HttpRequest) -> HttpResponse:
    day = _day(request)
    sessions = (
        Session.objects.filter(date=day)
        .select_related("department", "doctor", "clinic_type")
        .prefetch_related("slots")
        .order_by("half_day", "department__sort_order", "department__code")
    )
    bookings = (
        Booking.objects.filter(session__date=day, status__in=[*ACTIVE_BOOKING_STATES])
        .select_related("patient", "slot")
        .order_by("slot__starts_at", "id")
    )
    by_session: dict[int, list[Booking]] = {}
    for booking in bookings:
        by_session.setdefault(booking.session_id, []).append(booking)
    rows: list[dict[str, Any]] = [{"session": s, "bookings": by_session.get(s.pk, [])} for s in sessions]
    return render(request, "reservations/staff_sessions.html", {"day": day, "rows": rows})


def _run(request: HttpRequest, action: Any, done: str) -> HttpResponse:
    try:
        action()
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back(_day(request))


@role_required(roles.FRONT_DESK)
@require_POST
def session_stop(request: HttpRequest, session_id: int) -> HttpResponse:
    staff = request.user
    reason = request.POST.get("reason", "")
    return _run(
        request,
        lambda: services.session_stop(staff=staff, session_id=session_id, reason=reason),  # type: ignore[arg-type]
        _("Session stopped: its patients are refunded and told."),
    )


@role_required(roles.FRONT_DESK)
@require_POST
def slot_extra(request: HttpRequest, slot_id: int) -> HttpResponse:
    staff = request.user
    try:
        count = int(request.POST.get("count") or 1)
    except ValueError:
        count = 0
    return _run(
        request,
        lambda: services.slot_extra_add(staff=staff, slot_id=slot_id, count=count),  # type: ignore[arg-type]
        _("Extra numbers added; waiting patients are offered them first."),
    )


@role_required(roles.FRONT_DESK)
@require_POST
def check_in(request: HttpRequest, booking_id: int) -> HttpResponse:
    staff = request.user
    return _run(
        request,
        lambda: services.booking_check_in(staff=staff, booking_id=booking_id),  # type: ignore[arg-type]
        _("Checked in."),
    )


@role_required(roles.FRONT_DESK)
@require_POST
def desk_payment(request: HttpRequest, booking_id: int) -> HttpResponse:
    staff = request.user
    return _run(
        request,
        lambda: services.desk_payment_record(staff=staff, booking_id=booking_id),  # type: ignore[arg-type]
        _("Fee recorded as paid at the desk."),
    )
