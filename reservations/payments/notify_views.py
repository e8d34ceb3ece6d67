"""Where WeChat Pay and Alipay deliver their asynchronous payment notifications.

No login and no CSRF token (the providers cannot have either): the signature is the authentication. The
gateway verifies the RAW body; a forged notification changes nothing and gets the provider's failure
answer. A genuine one goes to ``reservations.services.payment_notification_receive``, which is idempotent
(providers deliver duplicates) and raises ``NotificationRejected`` for an unknown order or a wrong amount;
then we answer failure too, so the provider retries and the mismatch shows up in its console.

WeChat Pay posts refund outcomes (REFUND.SUCCESS / ABNORMAL / CLOSED) to a URL of their own, given with
each refund; they go to ``reservations.services.refunds.refund_notification_receive`` the same way. Alipay
has no refund notification (its refund call answers synchronously; see ``alipay``).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from reservations import services
from reservations.payments.base import Channel, ForgedNotification, NotificationRejected
from reservations.payments.gateways import gateway_for
from reservations.services import refunds

logger = logging.getLogger(__name__)


def _receive(request: HttpRequest, channel: Channel) -> HttpResponse:
    gateway = gateway_for(channel)
    try:
        notification = gateway.parse_notification(headers=request.headers, body=request.body)
    except ForgedNotification:
        return gateway.failure_response()  # the gateway has logged the reason
    try:
        services.payment_notification_receive(notification=notification)
    except NotificationRejected as rejection:
        logger.warning(
            "%s notification rejected: %s",
            channel,
            rejection.reason,
            extra={"notification_id": notification.raw_id},
        )
        return gateway.failure_response()
    return gateway.success_response()


@csrf_exempt
@require_POST
def wechatpay(request: HttpRequest) -> HttpResponse:
    """``POST /payments/notify/wechatpay/``: 204 when handled, 400 ``{"code":"FAIL",...}`` otherwise."""
    return _receive(request, Channel.WECHATPAY)


@csrf_exempt
@require_POST
def wechatpay_refund(request: HttpRequest) -> HttpResponse:
    """``POST /payments/notify/wechatpay/refund/``: 204 when handled, 400 ``{"code":"FAIL",...}`` if not."""
    gateway = gateway_for(Channel.WECHATPAY)
    try:
        notification = gateway.parse_refund_notification(headers=request.headers, body=request.body)
    except ForgedNotification:
        return gateway.failure_response()  # the gateway has logged the reason
    try:
        refunds.refund_notification_receive(notification=notification)
    except NotificationRejected as rejection:
        logger.warning(
            "wechatpay refund notification rejected: %s",
            rejection.reason,
            extra={"notification_id": notification.raw_id},
        )
        return gateway.failure_response()
    return gateway.success_response()


@csrf_exempt
@require_POST
def alipay(request: HttpRequest) -> HttpResponse:
    """``POST /payments/notify/alipay/``: exactly ``success`` when handled, ``fail`` otherwise."""
    return _receive(request, Channel.ALIPAY)
