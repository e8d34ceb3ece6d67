"""WeChat Pay v3 notifications: the platform's signature over the raw body, the clock, and the
AEAD_AES_256_GCM ``resource`` decrypted with the APIv3 key (reference booking.md §5.1)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.utils import timezone

from reservations.payments.base import (
    Channel,
    ForgedNotification,
    Notification,
    RefundNotification,
    lower_headers,
    rsa_verify,
)
from reservations.payments.keys import WechatPayConfig
from reservations.payments.wechatpay.signatures import (
    AUTH_SCHEME,
    MAX_CLOCK_SKEW_S,
    PROBE_SIGNATURE_PREFIX,
    parse_rfc3339,
    response_message,
)

logger = logging.getLogger(__name__)

REFUND_STATES = {"SUCCESS": "success", "PROCESSING": "processing", "CLOSED": "failed", "ABNORMAL": "failed"}
REFUND_EVENTS = {"REFUND.SUCCESS": "success", "REFUND.ABNORMAL": "failed", "REFUND.CLOSED": "failed"}


def aes_gcm_encrypt(key: bytes, nonce: str, associated_data: str, plaintext: bytes) -> str:
    return base64.b64encode(AESGCM(key).encrypt(nonce.encode(), plaintext, associated_data.encode())).decode()


def aes_gcm_decrypt(key: bytes, nonce: str, associated_data: str, ciphertext_b64: str) -> bytes:
    """Decrypt an AEAD_AES_256_GCM ``resource`` (the 16-byte tag is appended to the ciphertext)."""
    return AESGCM(key).decrypt(nonce.encode(), base64.b64decode(ciphertext_b64), associated_data.encode())


def payment_notification_parse(
    config: WechatPayConfig, *, headers: Mapping[str, str], body: bytes
) -> Notification:
    """Verify and decrypt a payment notification; raise :class:`ForgedNotification` otherwise."""
    try:
        return _transaction_notification(config, lower_headers(headers), body)
    except ForgedNotification as refusal:
        logger.warning("wechatpay notification refused: %s", refusal.reason)
        raise


def refund_notification_parse(
    config: WechatPayConfig, *, headers: Mapping[str, str], body: bytes
) -> RefundNotification:
    """Verify and decrypt a refund notification (REFUND.SUCCESS / ABNORMAL / CLOSED); raise
    :class:`ForgedNotification` otherwise, including for another merchant's refund."""
    try:
        envelope, refund = notification_open(config, lower_headers(headers), body, original_type="refund")
        if refund.get("mchid") != config.mchid:
            raise ForgedNotification("refund notification for another merchant")
        event = str(envelope.get("event_type") or "")
        if event not in REFUND_EVENTS:
            raise ForgedNotification("not a refund event")
        amount = refund.get("amount") or {}
        try:
            refund_fen, total_fen = int(amount["refund"]), int(amount["total"])
        except (KeyError, TypeError, ValueError):
            raise ForgedNotification("malformed refund amount") from None
    except ForgedNotification as refusal:
        logger.warning("wechatpay refund notification refused: %s", refusal.reason)
        raise
    # The event type and the resource's refund_status say the same thing; trust the resource.
    state = REFUND_STATES.get(str(refund.get("refund_status")), "processing")
    return RefundNotification(
        channel=Channel.WECHATPAY,
        order_no=str(refund.get("out_trade_no") or ""),
        refund_no=str(refund.get("out_refund_no") or ""),
        refund_id=str(refund.get("refund_id") or ""),
        state=state,
        refund_fen=refund_fen,
        total_fen=total_fen,
        merchant_id=str(refund["mchid"]),
        raw_id=str(envelope.get("id") or ""),
    )


def _transaction_notification(config: WechatPayConfig, headers: dict[str, str], body: bytes) -> Notification:
    envelope, transaction = notification_open(config, headers, body, original_type="transaction")
    # 4. It must be about our merchant and app.
    if transaction.get("mchid") != config.mchid or transaction.get("appid") != config.appid:
        raise ForgedNotification("notification for another merchant or app")
    amount = transaction.get("amount") or {}
    paid = envelope.get("event_type") == "TRANSACTION.SUCCESS" and transaction.get("trade_state") == "SUCCESS"
    return Notification(
        channel=Channel.WECHATPAY,
        order_no=str(transaction.get("out_trade_no") or ""),
        transaction_id=str(transaction.get("transaction_id") or ""),
        amount_fen=int(amount.get("total") or 0),
        paid=paid,
        paid_at=parse_rfc3339(transaction.get("success_time")),
        app_id=str(transaction["appid"]),
        merchant_id=str(transaction["mchid"]),
        raw_id=str(envelope.get("id") or ""),
    )


def notification_open(
    config: WechatPayConfig, headers: dict[str, str], body: bytes, *, original_type: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Steps 1-3 of every notification: signature headers, signature, decryption. Returns the
    envelope and the decrypted resource."""
    # 1. The platform's signature headers, the probe signature, the key id and the clock.
    timestamp, nonce = headers.get("wechatpay-timestamp", ""), headers.get("wechatpay-nonce", "")
    signature, serial = headers.get("wechatpay-signature", ""), headers.get("wechatpay-serial", "")
    if not (timestamp and nonce and signature and serial):
        raise ForgedNotification("missing Wechatpay signature headers")
    if headers.get("wechatpay-signature-type", AUTH_SCHEME) != AUTH_SCHEME:
        raise ForgedNotification("unsupported signature type")
    if signature.startswith(PROBE_SIGNATURE_PREFIX):
        raise ForgedNotification("probe signature (WECHATPAY/SIGNTEST)")
    if serial != config.platform_public_key_id:
        raise ForgedNotification("unknown platform key serial")
    try:
        skew_s = abs(timezone.now().timestamp() - int(timestamp))
    except ValueError:
        raise ForgedNotification("malformed timestamp") from None
    if skew_s > MAX_CLOCK_SKEW_S:
        raise ForgedNotification("stale timestamp")
    # 2. The signature over the raw body.
    if not rsa_verify(config.platform_public_key, response_message(timestamp, nonce, body), signature):
        raise ForgedNotification("bad signature")
    # 3. Decrypt the resource with the APIv3 key.
    try:
        envelope = json.loads(body)
        resource = envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise ForgedNotification("unsupported resource algorithm")
        plain = aes_gcm_decrypt(
            config.apiv3_key,
            resource["nonce"],
            resource.get("associated_data") or "",
            resource["ciphertext"],
        )
        resource_plain = json.loads(plain)
        if not isinstance(envelope, dict) or not isinstance(resource_plain, dict):
            raise ValueError("not an object")
    except ForgedNotification:
        raise
    except (InvalidTag, ValueError, KeyError, TypeError, AttributeError):
        raise ForgedNotification("undecryptable resource") from None
    if resource.get("original_type", original_type) != original_type:
        raise ForgedNotification(f"not a {original_type} notification")
    return envelope, resource_plain
