"""Celery task of the sandbox gateway: deliver a paid order's notification with the provider's retries."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from reservations.payments import sandbox


@shared_task(
    name="reservations.payments.sandbox_notification_deliver", bind=True, acks_late=True, max_retries=None
)
def sandbox_notification_deliver(self: Any, order_no: str) -> str:
    """POST the notification; when the receiver does not answer success, retry on the provider's schedule
    (WeChat 15 s, 15 s, 30 s, 3 min ...; Alipay 4 min, 10 min ...) times ``sandbox.RETRY_TIME_SCALE``, and
    give up where the provider gives up. Harmless to run twice: receivers must take duplicates anyway."""
    attempt = int(self.request.retries)
    outcome = sandbox.deliver_notification(order_no, attempt=attempt)
    if outcome != "refused":
        return outcome
    countdown_s = sandbox.retry_countdown_s(order_no, attempt)
    if countdown_s is None:
        return "gave-up"
    raise self.retry(countdown=countdown_s)
