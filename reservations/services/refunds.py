"""Refunds that end: the outcome of a refund, from the refund call, a follow-up question or a notification.

A refund starts ``requested``; the gateway's answer makes it ``processing``, ``succeeded`` or ``failed``.
Some never get a final answer on the first call (WeChat Pay's bank-card refunds stay PROCESSING for a while;
a call can time out), so a beat task asks again until the gateway says how it ended, at most
:data:`REFUND_MAX_ATTEMPTS` times, and WeChat Pay's refund notifications can end it sooner. All of these go
through :func:`refund_settle`, a compare-and-set, so a duplicate or out-of-order report changes nothing and
the patient is told exactly once, when the money is on its way back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from reservations import notifications
from reservations.models import Payment, Refund
from reservations.payments.base import (
    GatewayError,
    GatewayRejected,
    NotificationRejected,
    RefundNotification,
    RefundResult,
)
from reservations.payments.gateways import gateway_for
from reservations.services.money import to_fen

logger = logging.getLogger(__name__)

ONLINE_CHANNELS = (Payment.Channel.WECHATPAY, Payment.Channel.ALIPAY)
OPEN_STATUSES = (Refund.Status.REQUESTED, Refund.Status.PROCESSING)
# Asked again only once the first call and its quick retries have had their chance.
REFUND_FOLLOW_UP_AFTER = timedelta(minutes=5)
# Counted over the first call, its Celery retries and the follow-ups: with the 10-minute beat, a refund is
# given up (failed, for staff to refund by hand) after about five hours without a final answer.
REFUND_MAX_ATTEMPTS = 30
FOLLOW_UP_BATCH = 200
# The reason of the refund of a payment that arrived after its number was released: its patient gets the
# "late_payment_refunded" message rather than the plain "refunded" one.
LATE_PAYMENT_REASON = Refund.LATE_PAYMENT_REASON
# A second payment for a number that is booked (and stays booked): "duplicate_payment_refunded".
DUPLICATE_PAYMENT_REASON = Refund.DUPLICATE_PAYMENT_REASON
REFUND_MESSAGE_KINDS = {
    LATE_PAYMENT_REASON: "late_payment_refunded",
    DUPLICATE_PAYMENT_REASON: "duplicate_payment_refunded",
}


def refund_notify_url(channel: str) -> str:
    """Where the gateway posts a refund's outcome (WeChat Pay; Alipay has no refund notification)."""
    return f"{settings.PUBLIC_BASE_URL}/payments/notify/{channel}/refund/"


def refund_settle(*, refund_id: int, state: str) -> str:
    """Record what the gateway said about a refund (``success``, ``processing``, ``failed``); return the
    refund's status afterwards.

    Rules: success is final and wins even over an earlier give-up (the money has moved); failure and
    processing only change an open refund; the patient is told once, when the refund succeeds.
    """
    now = timezone.now()
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if state == "success":
        # Compare-and-set: of a notification and a follow-up reporting one success, one tells the patient.
        changed = (
            Refund.objects.filter(pk=refund.pk)
            .exclude(status=Refund.Status.SUCCEEDED)
            .update(status=Refund.Status.SUCCEEDED, updated_at=now)
        )
        if changed:
            kind = REFUND_MESSAGE_KINDS.get(refund.reason, "refunded")
            notifications.booking_notify(booking_id=refund.payment.booking_id, kind=kind)
            logger.info("refund succeeded", extra={"refund_no": refund.refund_no})
        return Refund.Status.SUCCEEDED
    if state == "processing":
        Refund.objects.filter(pk=refund.pk, status=Refund.Status.REQUESTED).update(
            status=Refund.Status.PROCESSING, updated_at=now
        )
    elif state == "failed":
        changed = Refund.objects.filter(pk=refund.pk, status__in=OPEN_STATUSES).update(
            status=Refund.Status.FAILED, updated_at=now
        )
        if changed:
            logger.error(
                "refund failed at the gateway: refund by hand",
                extra={"refund_no": refund.refund_no, "order_no": refund.payment.order_no},
            )
    status: str = Refund.objects.values_list("status", flat=True).get(pk=refund.pk)
    return status


def refunds_follow_up(*, now: datetime | None = None, older_than: timedelta = REFUND_FOLLOW_UP_AFTER) -> int:
    """Ask the gateway again about refunds still requested or processing after ``older_than``; return how
    many were looked at.

    Rules: a processing refund is queried (WeChat Pay refund query, Alipay fastpay.refund.query); one the
    gateway does not know, or one still only requested, is sent again (idempotent by refund number, so no
    money moves twice); after :data:`REFUND_MAX_ATTEMPTS` it is marked failed with an error log line.
    """
    now = now or timezone.now()
    due = list(
        Refund.objects.filter(
            status__in=OPEN_STATUSES,
            created_at__lte=now - older_than,
            payment__channel__in=ONLINE_CHANNELS,
        )
        .select_related("payment")
        .order_by("pk")[:FOLLOW_UP_BATCH]
    )
    for refund in due:
        _follow_up(refund)
    return len(due)


def _follow_up(refund: Refund) -> None:
    if refund.attempts >= REFUND_MAX_ATTEMPTS:
        if Refund.objects.filter(pk=refund.pk, status__in=OPEN_STATUSES).update(
            status=Refund.Status.FAILED, updated_at=timezone.now()
        ):
            logger.error(
                "refund still unfinished after %s attempts: marked failed, refund by hand",
                refund.attempts,
                extra={"refund_no": refund.refund_no, "order_no": refund.payment.order_no},
            )
        return
    # Claim this attempt by compare-and-set on the counter: two overlapping sweeps ask the gateway once.
    if not Refund.objects.filter(pk=refund.pk, attempts=refund.attempts, status=refund.status).update(
        attempts=F("attempts") + 1
    ):
        return
    payment = refund.payment
    gateway = gateway_for(payment.channel)
    try:
        result: RefundResult | None = None
        if refund.status == Refund.Status.PROCESSING:
            result = gateway.refund_query(order_no=payment.order_no, refund_no=refund.refund_no)
        if result is None or result.state == "unknown":
            result = gateway.refund(
                order_no=payment.order_no,
                refund_no=refund.refund_no,
                amount_fen=to_fen(refund.amount),
                total_fen=to_fen(payment.amount),
                reason=refund.reason,
                notify_url=refund_notify_url(payment.channel),
            )
    except (GatewayError, GatewayRejected) as error:
        logger.warning(
            "refund follow-up could not reach a verdict; the next round asks again: %s",
            error,
            extra={"refund_no": refund.refund_no},
        )
        return
    refund_settle(refund_id=refund.pk, state=result.state)


def refund_notification_receive(*, notification: RefundNotification) -> None:
    """Act on a verified refund notification. Duplicates and out-of-order ones are harmless; a refund that
    is not ours, of another order, or of another amount is refused (NotificationRejected), changing nothing.
    """
    refund = Refund.objects.select_related("payment").filter(refund_no=notification.refund_no).first()
    if (
        refund is None
        or refund.payment.order_no != notification.order_no
        or refund.payment.channel != notification.channel
    ):
        logger.warning(
            "refund notification for an unknown refund", extra={"refund_no": notification.refund_no}
        )
        raise NotificationRejected("unknown refund")
    if notification.refund_fen != to_fen(refund.amount) or notification.total_fen != to_fen(
        refund.payment.amount
    ):
        logger.warning(
            "refund notification amount differs",
            extra={
                "refund_no": refund.refund_no,
                "ours_fen": to_fen(refund.amount),
                "theirs_fen": notification.refund_fen,
            },
        )
        raise NotificationRejected("amount mismatch")
    if notification.state != "processing":
        refund_settle(refund_id=refund.pk, state=notification.state)
