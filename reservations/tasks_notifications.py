"""Celery tasks for notifications: thin wrappers around reservations.notifications, keyed by primary key."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from reservations import notifications


@shared_task(
    name="reservations.booking_notify",
    autoretry_for=(notifications.NotificationDeliveryError,),
    max_retries=3,
    retry_backoff=30,
)
def booking_notify(booking_id: int, kind: str) -> int:
    """Send one booking's message; a duplicate delivery sends nothing (claims per booking, kind, notifier)."""
    return notifications.booking_notify_send(booking_id=booking_id, kind=kind)


@shared_task(name="reservations.reminders_send")
def reminders_send() -> int:
    """Queue tomorrow's reminders (beat: 18:00 local); each booking's reminder is queued once."""
    return notifications.reminders_send(now=timezone.now())


@shared_task(name="reservations.no_shows_sweep")
def no_shows_sweep() -> int:
    """Mark bookings never checked in as no-shows, 30 minutes after their session ended."""
    return notifications.no_shows_sweep(now=timezone.now())
