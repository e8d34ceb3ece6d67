"""Front-desk pages for a day's sessions: filter and page them, reveal names (audited), check patients in,
stop a session and take fees, the last two only after a confirmation step that works without JavaScript."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import AppError
from medcard import roles
from medcard.models import User
from medcard.views import role_required
from reservations import selectors, services
from reservations.desk_views import _amount
from reservations.models import (
    ACTIVE_BOOKING_STATES,
    Booking,
    Department,
    DeskMethod,
    Doctor,
    HalfDay,
    Payment,
    Session,
)

SESSIONS_PER_PAGE = 8
# How long names revealed for a session stay shown on this desk's page (the reveal itself is audited).
REVEAL_SECONDS = 15 * 60
_REVEALED_KEY = "desk_revealed_sessions"


def _day(request: HttpRequest) -> date:
    return parse_date(request.GET.get("date") or request.POST.get("date") or "") or timezone.localdate()


def _back(request: HttpRequest, *, anchor: str = "") -> HttpResponse:
    """Back to the page (filters and page number kept) the form was posted from, at the session acted on."""
    target = request.POST.get("next", "")
    if not (
        target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    ):
        target = f"/booking/staff/sessions/?date={_day(request).isoformat()}"
    return redirect(f"{target}#{anchor}" if anchor else target)


def _revealed(request: HttpRequest) -> set[int]:
    now = time.time()
    shown: dict[str, float] = request.session.get(_REVEALED_KEY, {})
    return {int(pk) for pk, until in shown.items() if until > now}


@role_required(roles.FRONT_DESK)
@never_cache
@require_GET
def sessions_of_day(request: HttpRequest) -> HttpResponse:
    """The day's sessions, filtered by department, doctor and half-day, a few per page."""
    day = _day(request)
    filters = selectors.DaySessionsFilter(
        day=day,
        department=request.GET.get("department", ""),
        doctor=request.GET.get("doctor", ""),
        half_day=request.GET.get("half_day", "") if request.GET.get("half_day") in HalfDay.values else "",
    )
    page = Paginator(selectors.sessions_of_day(filters=filters), SESSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    sessions = list(page.object_list)
    by_session = selectors.bookings_of_sessions(session_ids=[s.pk for s in sessions])
    revealed = _revealed(request)
    rows: list[dict[str, Any]] = [
        {"session": s, "bookings": by_session.get(s.pk, []), "revealed": s.pk in revealed} for s in sessions
    ]
    query = {k: v for k, v in {"date": day.isoformat(), **filters.__dict__}.items() if k != "day" and v}
    context = {
        "day": day,
        "rows": rows,
        "page": page,
        "filters": filters,
        "query": urlencode(query),
        "here": request.get_full_path(),
        "departments": Department.objects.order_by("sort_order", "code"),
        "doctors": Doctor.objects.filter(
            **({"department__code": filters.department} if filters.department else {})
        ).order_by("department__code", "code"),
        "half_days": HalfDay.choices,
        "now": timezone.now(),
    }
    return render(request, "reservations/staff_sessions.html", context)


@role_required(roles.FRONT_DESK)
@require_POST
def session_reveal_names(request: HttpRequest, session_id: int) -> HttpResponse:
    """Show the full names of a session's patients on this desk's page for a while, with a reason; one audit
    row per patient shown, in one transaction."""
    reason = request.POST.get("reason", "")
    try:
        services.session_names_reveal(staff=request.user, session_id=session_id, reason=reason)  # type: ignore[arg-type]
    except AppError as exc:
        messages.error(request, exc.message)
        return _back(request, anchor=f"session-{session_id}")
    shown: dict[str, float] = request.session.get(_REVEALED_KEY, {})
    shown[str(session_id)] = time.time() + REVEAL_SECONDS
    request.session[_REVEALED_KEY] = shown
    return _back(request, anchor=f"session-{session_id}")


@role_required(roles.FRONT_DESK)
@never_cache
@require_http_methods(["GET", "POST"])
def session_stop(request: HttpRequest, session_id: int) -> HttpResponse:
    """Stop a session: the first step shows what will happen (how many numbers cancelled and refunded); only
    the confirmed second step stops it."""
    session = Session.objects.select_related("department", "doctor").filter(pk=session_id).first()
    if session is None:
        raise Http404
    reason = request.POST.get("reason", "") if request.method == "POST" else request.GET.get("reason", "")
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            cancelled = services.session_stop(staff=request.user, session_id=session_id, reason=reason)  # type: ignore[arg-type]
        except AppError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                _("Session stopped: %(n)d patients are refunded and told.") % {"n": cancelled},
            )
        return _back(request, anchor=f"session-{session_id}")
    active = Booking.objects.filter(session_id=session_id, status__in=ACTIVE_BOOKING_STATES)
    paid = Payment.objects.filter(booking__in=active, status=Payment.Status.PAID)
    context = {
        "session": session,
        "reason": reason,
        "next": request.POST.get("next") or request.GET.get("next") or "",
        "count": active.count(),
        "paid_count": paid.count(),
        "refund_total": sum((p.amount for p in paid), Decimal("0.00")),
    }
    return render(request, "reservations/confirm_stop.html", context)


@role_required(roles.FRONT_DESK)
@require_POST
def slot_extra(request: HttpRequest, slot_id: int) -> HttpResponse:
    staff = request.user
    try:
        count = int(request.POST.get("count") or 1)
    except ValueError:
        count = 0
    try:
        services.slot_extra_add(staff=staff, slot_id=slot_id, count=count)  # type: ignore[arg-type]
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Extra numbers added; waiting patients are offered them first."))
    return _back(request)


@role_required(roles.FRONT_DESK)
@require_POST
def check_in(request: HttpRequest, booking_id: int) -> HttpResponse:
    """Check a patient in and come back to the same place of the page, saying who and which number."""
    try:
        booking = services.booking_check_in(staff=request.user, booking_id=booking_id)  # type: ignore[arg-type]
    except AppError as exc:
        messages.error(request, exc.message)
        session_id = Booking.objects.filter(pk=booking_id).values_list("session_id", flat=True).first()
        return _back(request, anchor=f"session-{session_id}" if session_id else "")
    messages.success(
        request,
        _("%(name)s checked in: queue number %(number)d.")
        % {"name": booking.patient.name, "number": booking.queue_number},
    )
    return _back(request, anchor=f"session-{booking.session_id}")


@role_required(roles.FRONT_DESK)
@never_cache
@require_http_methods(["GET", "POST"])
def desk_payment(request: HttpRequest, booking_id: int) -> HttpResponse:
    """Take a held number's fee at the desk: the first step shows the amount and asks how it was paid; the
    confirmed second step records the payment and opens the receipt."""
    booking = (
        Booking.objects.select_related("patient", "session__department", "session__doctor", "slot")
        .filter(pk=booking_id)
        .first()
    )
    if booking is None:
        raise Http404
    context: dict[str, Any] = {
        "booking": booking,
        "methods": [(DeskMethod.CASH, DeskMethod.CASH.label), (DeskMethod.CARD, DeskMethod.CARD.label)],
        "method": request.POST.get("method", ""),
        "next": request.POST.get("next") or request.GET.get("next") or "",
    }
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            payment = services.desk_payment_record(
                staff=request.user,  # type: ignore[arg-type]
                booking_id=booking_id,
                method=request.POST.get("method", ""),
                amount=_amount(request.POST.get("amount", "")),
            )
        except AppError as exc:
            context["refusal"] = exc
            return render(request, "reservations/confirm_payment.html", context, status=exc.status)
        return redirect("reservations:staff-receipt", payment_id=payment.pk)
    return render(request, "reservations/confirm_payment.html", context)


@role_required(roles.FRONT_DESK)
@never_cache
@require_GET
def receipt(request: HttpRequest, payment_id: int) -> HttpResponse:
    """The printable receipt of a fee taken at the desk."""
    payment = (
        Payment.objects.select_related(
            "booking__patient", "booking__session__department", "booking__slot", "recorded_by"
        )
        .filter(
            pk=payment_id,
            channel=Payment.Channel.DESK,
            status__in=[Payment.Status.PAID, Payment.Status.REFUNDED],
        )
        .first()
    )
    if payment is None:
        raise Http404
    staff: User | None = payment.recorded_by
    return render(request, "reservations/receipt.html", {"payment": payment, "staff": staff})
