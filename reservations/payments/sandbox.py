"""The sandbox gateway's state and behaviour: a local stand-in for WeChat Pay and Alipay. Dev and tests only.

It keeps an order book in the Django cache (Redis, or the dev runner's file cache, so the web server, the
Celery worker and a test process share it; locmem inside one test), keyed by order number with long
timeouts. Nothing here is durable or meant for production money: ``settings.PAYMENT_SANDBOX`` must be off
on a real deployment, and then these URLs are not even mounted.

What it does, as the providers do:

- orders are created through the real protocols (see ``sandbox_views``), paid at a cashier page, closed,
  refunded (idempotent by refund number);
- a paid order's signed notification goes to the order's ``notify_url`` until the receiver answers
  success, on the provider's retry schedule (:data:`WECHATPAY_RETRY_S`, :data:`ALIPAY_RETRY_S`) scaled by
  :data:`RETRY_TIME_SCALE`;
- fault switches, per order or global, make it misbehave the way real providers do (duplicates, delays,
  wrong amounts, forged and probe signatures, notifications held back until after a close or refund).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import cache as memoize
from typing import Any
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache
from django.utils import timezone

from reservations.payments import keys
from reservations.payments.alipay import china_time, sign_content
from reservations.payments.base import (
    Channel,
    GatewayError,
    GatewayOrderState,
    Transport,
    fen_to_yuan,
    rsa_sign,
    urllib_transport,
)
from reservations.payments.wechatpay import (
    AUTH_SCHEME,
    CHINA,
    PROBE_SIGNATURE_PREFIX,
    aes_gcm_encrypt,
    response_message,
    rfc3339,
)

PREFIX = "sandbox-gateway"
ORDER_TIMEOUT_S = 60 * 24 * 3600
# Multiplies every retry countdown; tests set it to 0 (or a small number) to replay a day of retries at once.
RETRY_TIME_SCALE: float = 1.0
# "15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h – 总计 24h4m" (reference booking.md §5.1).
WECHATPAY_RETRY_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
# "25 小时以内完成 8 次通知（4m,10m,10m,1h,2h,6h,15h）" (reference booking.md §5.2).
ALIPAY_RETRY_S = (240, 600, 600, 3600, 7200, 21600, 54000)

FAULT_DEFAULTS: dict[str, Any] = {
    "duplicate": False,  # every delivery sends the notification twice
    "delay_s": 0.0,  # the first delivery waits this long after payment
    "wrong_amount": False,  # the notification claims one fen more than the order
    "forged_signature": False,  # signed with a key that is not the provider's
    "probe_signature": False,  # WeChat's WECHATPAY/SIGNTEST/ probe
    "out_of_order": False,  # the notification is held until the order is closed or refunded
    "refund_processing": False,  # a refund is PROCESSING at first, SUCCESS when asked again
    "unavailable": False,  # the API answers 500 / Alipay 20000
}

# Where notifications are POSTed: urllib for the dev server and the worker; tests use client_transport().
notify_transport: Transport = urllib_transport


def enqueue_delivery(order_no: str, countdown_s: float) -> None:
    """Schedule the first delivery of an order's notification (tests replace this to run it inline)."""
    from reservations.payments.tasks import sandbox_notification_deliver

    sandbox_notification_deliver.apply_async(args=(order_no,), countdown=max(0.0, countdown_s))


# --- Storage ----------------------------------------------------------------------------------------------


def _order_key(order_no: str) -> str:
    return f"{PREFIX}:order:{order_no}"


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """A short cross-process lock (the web server and the worker both update orders)."""
    key, deadline = f"{PREFIX}:lock:{name}", time.monotonic() + 5
    while not cache.add(key, "1", timeout=10):
        if time.monotonic() > deadline:
            raise GatewayError(f"sandbox order {name} is locked")
        time.sleep(0.01)
    try:
        yield
    finally:
        cache.delete(key)


def order_get(order_no: str) -> dict[str, Any] | None:
    """The sandbox's record of an order, or None."""
    order: dict[str, Any] | None = cache.get(_order_key(order_no))
    return order


def _order_put(order: dict[str, Any]) -> None:
    cache.set(_order_key(order["order_no"]), order, ORDER_TIMEOUT_S)


def _bill_add(order: dict[str, Any]) -> None:
    day = datetime.fromisoformat(order["paid_at"]).astimezone(CHINA).date().isoformat()
    with _locked("bill"):
        key = f"{PREFIX}:bill:{day}"
        order_nos: list[str] = cache.get(key) or []
        if order["order_no"] not in order_nos:
            order_nos.append(order["order_no"])
        cache.set(key, order_nos, ORDER_TIMEOUT_S)


# --- Fault switches ---------------------------------------------------------------------------------------


def _faults_key(order_no: str | None) -> str:
    return f"{PREFIX}:faults:{order_no or '*'}"


def faults_set(order_no: str | None = None, **switches: Any) -> dict[str, Any]:
    """Turn fault switches on or off for one order, or for every order when ``order_no`` is None."""
    unknown = set(switches) - set(FAULT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown sandbox fault switches: {sorted(unknown)}")
    current: dict[str, Any] = cache.get(_faults_key(order_no)) or {}
    current.update(switches)
    cache.set(_faults_key(order_no), current, ORDER_TIMEOUT_S)
    return current


def faults_clear(order_no: str | None = None) -> None:
    cache.delete(_faults_key(order_no))


def faults_for(order_no: str | None = None) -> dict[str, Any]:
    """The switches in force for an order: defaults, then the global ones, then the order's own."""
    merged = dict(FAULT_DEFAULTS)
    merged.update(cache.get(_faults_key(None)) or {})
    if order_no:
        merged.update(cache.get(_faults_key(order_no)) or {})
    return merged


# --- Provider-side operations (called by the sandbox's HTTP endpoints) ------------------------------------


def _transaction_id(channel: str) -> str:
    digits = "".join(secrets.choice("0123456789") for _ in range(14))
    today = timezone.now().astimezone(CHINA).strftime("%Y%m%d")
    return f"4200000{today}{digits[:13]}" if channel == Channel.WECHATPAY else f"{today}22001{digits}"[:28]


def order_create(
    *,
    channel: str,
    order_no: str,
    amount_fen: int,
    description: str,
    notify_url: str,
    return_url: str,
    expires_at: datetime | None,
) -> tuple[str, dict[str, Any] | None]:
    """Open an order. The same number again with the same amount returns the first one; with another
    amount it is refused ("used"), as both providers do."""
    with _locked(order_no):
        existing = order_get(order_no)
        if existing is not None:
            same = existing["channel"] == channel and existing["amount_fen"] == amount_fen
            return ("existing", existing) if same else ("used", None)
        order = {
            "channel": channel,
            "order_no": order_no,
            "amount_fen": amount_fen,
            "description": description,
            "notify_url": notify_url,
            "return_url": return_url,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "state": GatewayOrderState.NOTPAY.value,
            "transaction_id": "",
            "paid_at": None,
            "created_at": timezone.now().isoformat(),
            "refunds": {},
            "refunded_fen": 0,
            "notification_id": "",
            "held": False,
            "deliveries": [],
        }
        _order_put(order)
        return "created", order


def order_expired(order: dict[str, Any]) -> bool:
    return bool(order["expires_at"]) and timezone.now() >= datetime.fromisoformat(order["expires_at"])


def cashier_pay(order_no: str) -> str:
    """The patient pays at the cashier: ``paid``, or why not (``expired``, ``closed``, ``already_paid``,
    ``not_found``). A payment schedules the signed notification (unless held back by ``out_of_order``)."""
    faults = faults_for(order_no)
    with _locked(order_no):
        order = order_get(order_no)
        if order is None:
            return "not_found"
        if order["state"] != GatewayOrderState.NOTPAY:
            return "closed" if order["state"] == GatewayOrderState.CLOSED else "already_paid"
        if order_expired(order):
            return "expired"
        order.update(
            state=GatewayOrderState.PAID.value,
            transaction_id=_transaction_id(order["channel"]),
            paid_at=timezone.now().isoformat(),
            notification_id=str(uuid.uuid4()),
            held=bool(faults["out_of_order"]),
        )
        _order_put(order)
    _bill_add(order)
    if not order["held"]:
        enqueue_delivery(order_no, float(faults["delay_s"]))
    return "paid"


def _release_held(order: dict[str, Any]) -> None:
    """An out-of-order notification goes out after the order's next change, as a late one would."""
    if order.get("held"):
        order["held"] = False
        _order_put(order)
        enqueue_delivery(order["order_no"], 0.0)


def order_close(order_no: str) -> str:
    """Close an unpaid order: ``closed``, ``already_closed``, ``paid`` (refused) or ``not_found``."""
    with _locked(order_no):
        order = order_get(order_no)
        if order is None:
            return "not_found"
        if order["state"] == GatewayOrderState.CLOSED:
            return "already_closed"
        if order["state"] != GatewayOrderState.NOTPAY:
            outcome = "paid"
        else:
            order["state"] = GatewayOrderState.CLOSED.value
            _order_put(order)
            outcome = "closed"
    _release_held(order)
    return outcome


def order_refund(
    *, order_no: str, refund_no: str, amount_fen: int, total_fen: int | None
) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """Refund part or all of a paid order. Returns (outcome, refund, order); outcome is ``refunded``,
    ``existing`` (the same refund number again: nothing more moves), ``not_found``, ``not_paid``,
    ``total_mismatch`` or ``exceeds``."""
    faults = faults_for(order_no)
    with _locked(order_no):
        order = order_get(order_no)
        if order is None:
            return "not_found", None, None
        existing = order["refunds"].get(refund_no)
        if existing is not None:
            if existing["status"] == "PROCESSING":
                existing["status"] = "SUCCESS"
                existing["success_time"] = timezone.now().isoformat()
                _order_put(order)
            return "existing", existing, order
        if order["state"] not in (GatewayOrderState.PAID, GatewayOrderState.REFUNDED):
            return "not_paid", None, order
        if total_fen is not None and total_fen != order["amount_fen"]:
            return "total_mismatch", None, order
        if amount_fen <= 0 or order["refunded_fen"] + amount_fen > order["amount_fen"]:
            return "exceeds", None, order
        refund = {
            "refund_no": refund_no,
            "refund_id": "50" + "".join(secrets.choice("0123456789") for _ in range(27)),
            "amount_fen": amount_fen,
            "status": "PROCESSING" if faults["refund_processing"] else "SUCCESS",
            "created_at": timezone.now().isoformat(),
            "success_time": None if faults["refund_processing"] else timezone.now().isoformat(),
        }
        order["refunds"][refund_no] = refund
        order["refunded_fen"] += amount_fen
        if order["refunded_fen"] == order["amount_fen"]:
            order["state"] = GatewayOrderState.REFUNDED.value
        _order_put(order)
    _release_held(order)
    return "refunded", refund, order


def bill(day: date) -> list[dict[str, Any]]:
    """The day's (China date of payment) transactions as the provider's bill lists them."""
    rows = []
    for order_no in cache.get(f"{PREFIX}:bill:{day.isoformat()}") or []:
        order = order_get(order_no)
        if order is None:
            continue
        rows.append(
            {
                "channel": order["channel"],
                "order_no": order_no,
                "transaction_id": order["transaction_id"],
                "amount_fen": order["amount_fen"],
                "state": order["state"],
                "refunded_fen": order["refunded_fen"],
            }
        )
    return rows


# --- Notifications ----------------------------------------------------------------------------------------


@memoize
def _forger_key() -> rsa.RSAPrivateKey:
    return keys.generate_rsa_key()


def build_notification(
    order_no: str,
    *,
    faults: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    apiv3_key: bytes | None = None,
) -> tuple[dict[str, str], bytes]:
    """The signed notification for a paid order, as (headers, body), freshly signed now.

    ``overrides`` replaces fields of the WeChat transaction or the Alipay form (then signed, so only the
    business checks can catch them); ``apiv3_key`` encrypts the WeChat resource with another key.
    """
    order = order_get(order_no)
    if order is None or not order["paid_at"]:
        raise ValueError(f"sandbox order {order_no} is not paid")
    faults = faults if faults is not None else faults_for(order_no)
    amount_fen = order["amount_fen"] + (1 if faults["wrong_amount"] else 0)
    paid_at = datetime.fromisoformat(order["paid_at"])
    if order["channel"] == Channel.WECHATPAY:
        return _wechatpay_notification(order, amount_fen, paid_at, faults, overrides or {}, apiv3_key)
    return _alipay_notification(order, amount_fen, paid_at, faults, overrides or {})


def _wechatpay_notification(
    order: dict[str, Any],
    amount_fen: int,
    paid_at: datetime,
    faults: dict[str, Any],
    overrides: dict[str, Any],
    apiv3_key: bytes | None,
) -> tuple[dict[str, str], bytes]:
    config = keys.wechatpay_config()
    assert config.platform_private_key is not None, "the sandbox signs only with its own platform key"  # noqa: S101
    transaction = {
        "mchid": config.mchid,
        "appid": config.appid,
        "out_trade_no": order["order_no"],
        "transaction_id": order["transaction_id"],
        "trade_type": "MWEB",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": rfc3339(paid_at),
        "payer": {"openid": "sandbox-openid"},
        "amount": {
            "total": amount_fen,
            "payer_total": amount_fen,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
        **overrides,
    }
    nonce = secrets.token_hex(6)  # 12 characters, as WeChat's resource nonces
    plaintext = json.dumps(transaction, ensure_ascii=False).encode()
    envelope = {
        "id": order["notification_id"],
        "create_time": rfc3339(paid_at),
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": aes_gcm_encrypt(apiv3_key or config.apiv3_key, nonce, "transaction", plaintext),
            "associated_data": "transaction",
            "nonce": nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    timestamp, header_nonce = str(int(timezone.now().timestamp())), secrets.token_hex(16).upper()
    message = response_message(timestamp, header_nonce, body)
    if faults["probe_signature"]:
        signature = PROBE_SIGNATURE_PREFIX + base64.b64encode(secrets.token_bytes(64)).decode()
    else:
        signer = _forger_key() if faults["forged_signature"] else config.platform_private_key
        signature = rsa_sign(signer, message)
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Serial": config.platform_public_key_id,
        "Wechatpay-Signature": signature,
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Signature-Type": AUTH_SCHEME,
    }
    return headers, body


def _alipay_notification(
    order: dict[str, Any],
    amount_fen: int,
    paid_at: datetime,
    faults: dict[str, Any],
    overrides: dict[str, Any],
) -> tuple[dict[str, str], bytes]:
    config = keys.alipay_config()
    assert config.alipay_private_key is not None, "the sandbox signs only with its own Alipay key"  # noqa: S101
    params = {
        "notify_time": china_time(timezone.now()),
        "notify_type": "trade_status_sync",
        "notify_id": order["notification_id"],
        "app_id": config.app_id,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": order["transaction_id"],
        "out_trade_no": order["order_no"],
        "buyer_id": "2088102122524333",
        "seller_id": config.seller_id,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": fen_to_yuan(amount_fen),
        "receipt_amount": fen_to_yuan(amount_fen),
        "buyer_pay_amount": fen_to_yuan(amount_fen),
        "subject": order["description"],
        "gmt_create": china_time(datetime.fromisoformat(order["created_at"])),
        "gmt_payment": china_time(paid_at),
        **{k: str(v) for k, v in overrides.items()},
    }
    signer = _forger_key() if faults["forged_signature"] else config.alipay_private_key
    params["sign"] = rsa_sign(
        signer, sign_content(params, exclude=("sign", "sign_type"), keep_empty=True).encode()
    )
    return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(params).encode()


def _accepted(channel: str, status: int, answer: bytes) -> bool:
    if channel == Channel.WECHATPAY:
        return status in (200, 204)
    return status == 200 and answer == b"success"  # exactly the 7 characters, nothing around them


def deliver_notification(order_no: str, attempt: int = 0) -> str:
    """POST the order's signed notification to its notify_url once (twice with ``duplicate``).

    Returns ``delivered`` (the receiver answered success), ``refused`` (anything else: retry later),
    ``held`` (``out_of_order``: waiting for a close or refund) or ``nothing`` (no paid order).
    """
    order = order_get(order_no)
    if order is None or not order["paid_at"]:
        return "nothing"
    if order.get("held"):
        return "held"
    faults = faults_for(order_no)
    accepted = False
    for _copy in range(2 if faults["duplicate"] else 1):
        headers, body = build_notification(order_no, faults=faults)
        try:
            status, _headers, answer = notify_transport("POST", order["notify_url"], headers, body)
        except GatewayError:
            status, answer = 0, b""
        accepted = _accepted(order["channel"], status, answer) or accepted
        with _locked(order_no):
            fresh = order_get(order_no) or order
            fresh["deliveries"].append(
                {"attempt": attempt, "at": timezone.now().isoformat(), "status": status}
            )
            _order_put(fresh)
    return "delivered" if accepted else "refused"


def retry_countdown_s(order_no: str, attempt: int) -> float | None:
    """Seconds before retry number ``attempt + 1``, or None when the provider would give up."""
    order = order_get(order_no)
    schedule = WECHATPAY_RETRY_S if order and order["channel"] == Channel.WECHATPAY else ALIPAY_RETRY_S
    if attempt >= len(schedule):
        return None
    return schedule[attempt] * RETRY_TIME_SCALE


# --- In-process transport for tests -----------------------------------------------------------------------


def client_transport(client: Any = None) -> Transport:
    """A :data:`Transport` that sends requests through ``django.test.Client`` to this process's URLconf, so
    adapters, sandbox endpoints and notify views meet without a socket."""
    from django.test import Client

    http = client or Client()

    def send(
        method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        content_type = next(
            (v for k, v in headers.items() if k.lower() == "content-type"), "application/octet-stream"
        )
        others = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = http.generic(method, path, data=body, content_type=content_type, headers=others)
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content

    return send
