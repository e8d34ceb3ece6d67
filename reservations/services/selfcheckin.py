"""Self check-in on the patient's phone: the clinic's poster carries a signed code naming the department and
the day (so yesterday's photo of it does not work); scanning it checks in the account's numbers of today in
that department. Checking in twice is harmless; the wrong day or clinic is told where and when to go."""

from __future__ import annotations

from datetime import date, datetime

from django.core import signing
from django.utils import timezone

from core.clock import local_today
from core.errors import AppError
from medcard.models import User
from reservations.models import Booking, Department
from reservations.services.staff import booking_check_in

POSTER_SALT = "reservations.clinic-poster"


def poster_token(*, department: Department, day: date) -> str:
    """The code printed on a department's check-in poster for one day."""
    return signing.Signer(salt=POSTER_SALT).sign(f"{department.code}|{day.isoformat()}")


def poster_read(*, token: str) -> tuple[str, date]:
    """The department code and day a poster's code names; refused when it was not signed by us."""
    try:
        code, day = signing.Signer(salt=POSTER_SALT).unsign(token).split("|", 1)
        return code, date.fromisoformat(day)
    except (signing.BadSignature, ValueError):
        raise AppError("poster_invalid") from None


def self_check_in(*, account: User, token: str, now: datetime | None = None) -> list[Booking]:
    """Check in every booked number of the account's patients today in the poster's department."""
    now = now or timezone.now()
    code, day = poster_read(token=token)
    today = local_today(now=now)
    department = Department.objects.filter(code=code).first()
    if department is None:
        raise AppError("poster_invalid")
    if day != today:
        raise AppError("poster_expired", day=day.isoformat())
    mine = Booking.objects.filter(
        account=account, status__in=[Booking.Status.BOOKED, Booking.Status.CHECKED_IN]
    ).select_related("department", "session", "slot")
    here = [b for b in mine if b.visit_date == today and b.department_id == department.pk]
    if not here:
        elsewhere = next((b for b in mine.order_by("slot__starts_at") if b.visit_date == today), None)
        if elsewhere is not None:
            raise AppError(
                "wrong_clinic", department=elsewhere.department.name, room=elsewhere.session.room or "-"
            )
        later = next((b for b in mine.order_by("slot__starts_at") if b.department_id == department.pk), None)
        if later is not None:
            raise AppError("wrong_day", day=later.visit_date.isoformat())
        raise AppError("no_number_today")
    return [booking_check_in(staff=None, booking_id=b.pk, now=now) for b in here]
