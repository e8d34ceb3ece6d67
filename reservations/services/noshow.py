"""The no-show policy: too many missed appointments suspend online booking for a while; staff may forgive
one missed appointment with a reason (recorded)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.clock import local_today
from core.errors import AppError
from medcard.models import AuditEvent, Patient, User
from medcard.services.audit import audit_record
from reservations.models import Booking, NoShowWaiver
from reservations.selectors import Suspension, no_show_suspension, no_show_suspension_from

WAIVE_REASON_MIN_LENGTH = 4


def no_show_check(*, patient: Patient, now: datetime | None = None) -> None:
    """Refuse online booking while the patient's suspension is in force, saying why and until when."""
    _refuse_suspended(no_show_suspension(patient=patient, today=local_today(now=now or timezone.now())))


def no_show_check_days(*, days: Iterable[date], now: datetime) -> None:
    """``no_show_check`` on the visit days of the patient's unwaived no-shows since ``no_show_horizon``,
    already read (the hold reads them with its other rules' rows, in one query)."""
    _refuse_suspended(no_show_suspension_from(days=days, today=local_today(now=now)))


def _refuse_suspended(suspension: Suspension | None) -> None:
    if suspension is not None:
        raise AppError(
            "booking_suspended",
            until=suspension.until.isoformat(),
            n=suspension.no_shows,
            days=suspension.window_days,
        )


def no_show_waive(*, staff: User, booking_id: int, reason: str, now: datetime | None = None) -> NoShowWaiver:
    """Forgive one missed appointment with a reason; audited in the same transaction. Once per booking."""
    reason = " ".join((reason or "").split())
    if len(reason) < WAIVE_REASON_MIN_LENGTH:
        raise AppError("reason_missing")
    booking = (
        Booking.objects.select_related("patient").filter(pk=booking_id, status=Booking.Status.NO_SHOW).first()
    )
    if booking is None:
        raise AppError("not_a_no_show")
    try:
        with transaction.atomic():
            waiver = NoShowWaiver.objects.create(
                booking=booking, staff=staff, reason=reason[:300], at=now or timezone.now()
            )
            audit_record(
                actor=staff,
                patient=booking.patient,
                action=AuditEvent.Action.NO_SHOW_WAIVED,
                reason=reason,
                target=f"booking {booking.pk}",
                changes={"waived": [False, True]},
            )
    except IntegrityError:
        raise AppError("already_waived") from None
    return waiver
