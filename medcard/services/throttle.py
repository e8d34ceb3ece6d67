"""Counted tries in a fixed window, kept in the database (``AttemptCounter``).

``attempt_claim`` takes one of ``limit`` tries before the caller checks anything, under a row lock, so
parallel requests cannot all read "4 so far" and all pass; the caller gives a try back (``attempt_release``)
when it turned out right. ``attempt_record`` counts something that already happened (a wrong password).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from medcard.models import AttemptCounter


def _locked_row(key: str, now: datetime, window_s: int) -> AttemptCounter:
    # Row lock: parallel tries on one key queue here instead of reading the same count (issue 14, item 11).
    row, _created = AttemptCounter.objects.select_for_update().get_or_create(
        key=key, defaults={"window_start": now, "count": 0}
    )
    if row.window_start <= now - timedelta(seconds=window_s):
        row.window_start, row.count = now, 0
    return row


def attempt_claim(*, key: str, limit: int, window_s: int, now: datetime | None = None) -> bool:
    """Take one of ``limit`` tries of ``key`` in the current window; False (and nothing taken) when spent."""
    now = now or timezone.now()
    with transaction.atomic():
        row = _locked_row(key, now, window_s)
        if row.count >= limit:
            row.save(update_fields=["window_start", "count"])
            return False
        row.count += 1
        row.save(update_fields=["window_start", "count"])
        return True


def attempt_release(*, key: str) -> None:
    """Give back a try taken by ``attempt_claim`` that turned out right (it was not a failure)."""
    AttemptCounter.objects.filter(key=key, count__gt=0).update(count=F("count") - 1)


def attempt_record(*, key: str, window_s: int, now: datetime | None = None) -> int:
    """Count one more failure of ``key`` in the current window; returns the count."""
    now = now or timezone.now()
    with transaction.atomic():
        row = _locked_row(key, now, window_s)
        row.count += 1
        row.save(update_fields=["window_start", "count"])
        return row.count


def attempt_blocked_until(
    *, key: str, limit: int, window_s: int, now: datetime | None = None
) -> datetime | None:
    """When ``key`` has used up its ``limit`` in the current window: the end of the window, else None."""
    now = now or timezone.now()
    row = AttemptCounter.objects.filter(key=key, window_start__gt=now - timedelta(seconds=window_s)).first()
    if row is None or row.count < limit:
        return None
    return row.window_start + timedelta(seconds=window_s)


def attempt_reset(*, key: str) -> None:
    """Forget the tries of ``key`` (after a correct password)."""
    AttemptCounter.objects.filter(key=key).delete()
