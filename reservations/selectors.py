"""Reads for departments and doctors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, QuerySet
from django.http import Http404

from medcard.models import User
from reservations import gates
from reservations.models import Booking, Department, Payment, Refund, Session, WaitlistEntry


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
        Booking.objects.select_related("session__department", "session__doctor", "slot", "patient")
        .filter(pk=booking_id, account=account)
        .first()
    )
    if booking is None:
        raise Http404("No such booking on this account.")
    return booking
