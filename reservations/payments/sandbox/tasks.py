"""Celery tasks of the sandbox gateway: payment and refund notifications, with the providers' retries."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from reservations.payments.sandbox import gateway as sandbox


@shared_task(name="payment_sandbox.notification_deliver", bind=True, acks_late=True, max_retries=None)
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


@shared_task(
    name="payment_sandbox.refund_notification_deliver",
    bind=True,
    acks_late=True,
    max_retries=None,
)
def sandbox_refund_notification_deliver(self: Any, order_no: str, refund_no: str) -> str:
    """POST a finished refund's WeChat Pay notification, retried on WeChat's schedule like payments."""
    attempt = int(self.request.retries)
    outcome = sandbox.deliver_refund_notification(order_no, refund_no, attempt=attempt)
    if outcome != "refused":
        return outcome
    if attempt >= len(sandbox.WECHATPAY_RETRY_S):
        return "gave-up"
    raise self.retry(countdown=sandbox.WECHATPAY_RETRY_S[attempt] * sandbox.RETRY_TIME_SCALE)
