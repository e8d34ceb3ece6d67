"""The doctor's console (call the next patient into my room, recall, skip, complete, absent), the
waiting-room board and the patient's place in the queue on their phone, both live by server-sent events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.clock import local_today
from core.errors import AppError
from medcard import roles
from medcard.models import User
from medcard.views import patient_required, role_required
from reservations import live, selectors, services
from reservations.models import Department, QueueEntry, Session

CONSOLE_ACTIONS = ("recall", "skip", "complete", "absent")


def _console_url(session_id: int, room: str) -> str:
    return (
        reverse("reservations:console", kwargs={"session_id": session_id}) + "?" + urlencode({"room": room})
    )


@role_required(roles.DOCTOR)
@never_cache
@require_GET
def console_home(request: HttpRequest) -> HttpResponse:
    """Today's sessions: open the console of one, naming the room to call into."""
    sessions = (
        Session.objects.filter(date=local_today(), status=Session.Status.OPEN)
        .select_related("department", "doctor")
        .order_by("starts_at", "department__code")
    )
    return render(request, "reservations/console/home.html", {"sessions": sessions})


@role_required(roles.DOCTOR)
@never_cache
@require_GET
def console(request: HttpRequest, session_id: int) -> HttpResponse:
    session = Session.objects.select_related("department", "doctor").filter(pk=session_id).first()
    if session is None:
        raise Http404
    room = request.GET.get("room", "").strip() or session.room
    mine = QueueEntry.objects.filter(
        session=session, state=QueueEntry.State.CALLED, room=room
    ).select_related("booking__patient")
    context: dict[str, Any] = {
        "session": session,
        "room": room,
        "called": list(mine),
        "next_up": selectors.queue_order(session_id=session.pk)[:5],
        "counts": selectors.queue_counts(session_id=session.pk),
    }
    return render(request, "reservations/console/console.html", context)


@role_required(roles.DOCTOR)
@require_POST
def console_call_next(request: HttpRequest, session_id: int) -> HttpResponse:
    room = request.POST.get("room", "")
    try:
        entry = services.queue_call_next(doctor=request.user, session_id=session_id, room=room)  # type: ignore[arg-type]
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{entry.number} → {entry.room}")
    return redirect(_console_url(session_id, room))


@role_required(roles.DOCTOR)
@require_POST
def console_move(request: HttpRequest, entry_id: int, action: str) -> HttpResponse:
    entry = QueueEntry.objects.filter(pk=entry_id).first()
    if entry is None or action not in CONSOLE_ACTIONS:
        raise Http404
    room = request.POST.get("room", "")
    actor: User = request.user  # type: ignore[assignment]
    try:
        services.queue_move(actor=actor, entry_id=entry_id, action=action, room=room)
    except AppError as exc:
        messages.error(request, exc.message)
    return redirect(_console_url(entry.session_id, room))


@role_required(roles.FRONT_DESK)
@require_POST
def queue_requeue(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The desk puts an absent patient back in line (they turned up after all)."""
    try:
        entry = services.queue_move(actor=request.user, entry_id=entry_id, action="requeue")  # type: ignore[arg-type]
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("reservations:staff-sessions")
    return redirect(f"{reverse('reservations:staff-sessions')}#session-{entry.session_id}")


@role_required(roles.FRONT_DESK)
@require_POST
def queue_priority(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The desk flags a waiting patient as priority (with a reason) or as returning with results."""
    try:
        entry = services.queue_flag(
            staff=request.user,  # type: ignore[arg-type]
            entry_id=entry_id,
            priority=True if request.POST.get("flag") == "priority" else None,
            with_results=True if request.POST.get("flag") == "results" else None,
            reason=request.POST.get("reason", ""),
        )
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("reservations:staff-sessions")
    return redirect(f"{reverse('reservations:staff-sessions')}#session-{entry.session_id}")


# --- The waiting-room board and the patient's phone (server-sent events) -----------------------------------

STREAM_SECONDS = 300  # then the browser's EventSource reconnects by itself


def _release_database(frames: Iterator[str]) -> Iterator[str]:
    """A stream lives for minutes and mostly waits: give the database connection back after each frame's
    reads, so that a room full of phones does not hold a connection each (the next read opens a new one)."""
    for frame in frames:
        if not connection.in_atomic_block:
            connection.close()
        yield frame


def _stream(frames: Iterator[str]) -> HttpResponse:
    response = StreamingHttpResponse(
        _release_database(frames), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response  # type: ignore[return-value]  # a streaming response is served like any other


@never_cache
@require_GET
def board(request: HttpRequest, department_code: str) -> HttpResponse:
    """The waiting-room TV of a department: masked names only, so it needs no sign-in."""
    department = Department.objects.filter(code=department_code).first()
    if department is None:
        raise Http404
    snapshot = selectors.board_snapshot(department=department, day=local_today())
    return render(request, "reservations/board.html", {"department": department, "snapshot": snapshot})


@require_GET
def board_stream(request: HttpRequest, department_code: str) -> HttpResponse:
    department = Department.objects.filter(code=department_code).first()
    if department is None:
        raise Http404

    def frames() -> Iterator[str]:
        yield live.sse("board", selectors.board_snapshot(department=department, day=local_today()))
        for change in live.changes(department_id=department.pk, max_seconds=STREAM_SECONDS):
            if change == "change":
                yield live.sse("board", selectors.board_snapshot(department=department, day=local_today()))
            else:
                yield ": tick\n\n"

    return _stream(frames())


@patient_required
@never_cache
@require_GET
def my_place(request: HttpRequest, booking_id: int) -> HttpResponse:
    booking = selectors.booking_for_account(account=request.user, booking_id=booking_id)  # type: ignore[arg-type]
    context = {"booking": booking, "place": selectors.my_place(booking=booking)}
    return render(request, "reservations/my_place.html", context)


@patient_required
@require_GET
def my_place_stream(request: HttpRequest, booking_id: int) -> HttpResponse:
    booking = selectors.booking_for_account(account=request.user, booking_id=booking_id)  # type: ignore[arg-type]

    def frames() -> Iterator[str]:
        yield live.sse("place", selectors.my_place(booking=booking))
        for change in live.changes(department_id=booking.department_id, max_seconds=STREAM_SECONDS):
            tick = change != "change"
            yield ": tick\n\n" if tick else live.sse("place", selectors.my_place(booking=booking))

    return _stream(frames())


# --- Self check-in: the poster at the clinic ---------------------------------------------------------------


@patient_required
@never_cache
@require_http_methods(["GET", "POST"])
def self_check_in(request: HttpRequest, token: str) -> HttpResponse:
    """The page a poster's code opens on the patient's phone: one button checks in today's numbers here."""
    context: dict[str, Any] = {"token": token}
    if request.method == "POST":
        try:
            checked = services.self_check_in(account=request.user, token=token)  # type: ignore[arg-type]
        except AppError as exc:
            context["refusal"] = exc
            return render(request, "reservations/self_check_in.html", context, status=exc.status)
        context["places"] = [(b, selectors.my_place(booking=b)) for b in checked]
    return render(request, "reservations/self_check_in.html", context)


@role_required(roles.FRONT_DESK)
@never_cache
@require_GET
def posters(request: HttpRequest) -> HttpResponse:
    """Today's check-in posters, one per department, to print and put up at each clinic."""
    today = local_today()
    rows = []
    for department in Department.objects.order_by("sort_order", "code"):
        path = reverse(
            "reservations:self-check-in",
            kwargs={"token": services.poster_token(department=department, day=today)},
        )
        url = settings.PUBLIC_BASE_URL + path
        rows.append((department, url, segno.make(url, error="m").svg_inline(scale=5)))
    return render(request, "reservations/posters.html", {"rows": rows, "today": today})
