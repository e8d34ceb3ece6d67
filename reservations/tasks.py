"""Celery tasks of the booking core: thin, idempotent wrappers around services, keyed by primary key."""

from __future__ import annotations

from celery import shared_task

# Celery's autodiscovery loads this module only: bring in the app's other task modules.
from reservations import services, tasks_notifications, tasks_schedules  # noqa: F401
from reservations.payments.base import GatewayError


@shared_task(name="reservations.holds_expire")
def holds_expire() -> int:
    """Every minute (beat): expire unpaid holds, close their orders, offer the numbers to the waitlist."""
    return services.holds_expire_due() + services.waitlists_close_due()


@shared_task(name="reservations.waitlist_offer")
def waitlist_offer(session_id: int) -> int:
    return services.waitlist_offer_next(session_id=session_id)


@shared_task(
    name="reservations.refund_process",
    autoretry_for=(GatewayError,),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=12,
)
def refund_process(refund_id: int) -> str:
    """Ask the gateway to refund; a transient gateway error is retried with backoff (same refund number)."""
    return services.refund_process(refund_id=refund_id)


@shared_task(name="reservations.payments_reconcile_unknown")
def payments_reconcile_unknown() -> int:
    """Every few minutes (beat): ask the gateways about orders we have heard nothing about."""
    return services.payments_reconcile_unknown()


@shared_task(name="reservations.refunds_follow_up")
def refunds_follow_up() -> int:
    """Every 10 minutes (beat): ask the gateways again about refunds left requested or processing."""
    return services.refunds.refunds_follow_up()


@shared_task(name="reservations.payments_reconcile_bills")
def payments_reconcile_bills() -> list[str]:
    """Daily (beat, 10:00 and 12:00 China time): reconcile yesterday's bills of both online channels. The
    second run only retries a failed report (bill not ready yet); a finished one is left as it is."""
    return [
        f"{report.channel}: {report.status}"
        for report in services.reconciliation.payments_reconcile_yesterday()
    ]
