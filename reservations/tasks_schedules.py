"""Celery tasks for schedules: thin wrappers around reservations.schedules."""

from __future__ import annotations

from celery import shared_task

from reservations.schedules import generation_horizon_days, sessions_generate


@shared_task(name="reservations.sessions_generate")
def sessions_generate_task() -> int:
    """Generate sessions up to the longest release window; idempotent (get-or-create by the unique keys)."""
    return sessions_generate(days_ahead=generation_horizon_days())
