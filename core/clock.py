"""The hospital's time zone and calendar: datetimes are stored in UTC and shown in hospital time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

# settings.TIME_ZONE is the hospital's zone (Asia/Shanghai): declared there once, read here, used everywhere.
HOSPITAL_TZ = ZoneInfo(settings.TIME_ZONE)


def local_datetime(day: date, at: time) -> datetime:
    """The aware moment of hospital-local time ``at`` on local date ``day``, in UTC.

    >>> local_datetime(date(2026, 12, 12), time(7, 0)).isoformat()
    '2026-12-11T23:00:00+00:00'
    """
    return datetime.combine(day, at, tzinfo=HOSPITAL_TZ).astimezone(UTC)


def local_today(*, now: datetime | None = None) -> date:
    """The hospital's calendar date at ``now`` (default: the current moment).

    >>> local_today(now=datetime(2026, 11, 27, 16, 30, tzinfo=UTC))
    datetime.date(2026, 11, 28)
    """
    return (now or timezone.now()).astimezone(HOSPITAL_TZ).date()
