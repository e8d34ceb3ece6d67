"""Alipay asynchronous notifications (reference booking.md §5.2): form fields, RSA2 over the sorted fields
without ``sign`` and ``sign_type``, then our app and seller."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from reservations.payments.alipay.signatures import parse_china_time, sign_content
from reservations.payments.base import Channel, ForgedNotification, Notification, rsa_verify, yuan_to_fen
from reservations.payments.keys import AlipayConfig

logger = logging.getLogger(__name__)

PAID_STATUSES = {"TRADE_SUCCESS", "TRADE_FINISHED"}


def payment_notification_parse(config: AlipayConfig, *, body: bytes) -> Notification:
    """Verify an asynchronous notification; raise :class:`ForgedNotification` otherwise."""
    try:
        return _notification(config, body)
    except ForgedNotification as refusal:
        logger.warning("alipay notification refused: %s", refusal.reason)
        raise


def _notification(config: AlipayConfig, body: bytes) -> Notification:
    # 1. Form fields, URL-decoded.
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise ForgedNotification("unreadable body") from None
    # 2. RSA2 over the sorted fields without sign and sign_type.
    if params.get("sign_type") != "RSA2":
        raise ForgedNotification("sign_type is not RSA2")
    signature = params.get("sign", "")
    content = sign_content(params, exclude=("sign", "sign_type"), keep_empty=True)
    if not signature or not rsa_verify(config.alipay_public_key, content.encode(), signature):
        raise ForgedNotification("bad signature")
    # 3. Ours: app and seller.
    if params.get("app_id") != config.app_id:
        raise ForgedNotification("notification for another app_id")
    if params.get("seller_id") != config.seller_id:
        raise ForgedNotification("notification for another seller_id")
    try:
        amount_fen = yuan_to_fen(params.get("total_amount", ""))
    except ValueError:
        raise ForgedNotification("malformed total_amount") from None
    return Notification(
        channel=Channel.ALIPAY,
        order_no=params.get("out_trade_no", ""),
        transaction_id=params.get("trade_no", ""),
        amount_fen=amount_fen,
        paid=params.get("trade_status") in PAID_STATUSES,
        paid_at=parse_china_time(params.get("gmt_payment")),
        app_id=params["app_id"],
        merchant_id=params["seller_id"],
        raw_id=params.get("notify_id", ""),
    )
