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
- a refund left "processing" completes when it is asked about again (refund or refund query), and the
  WeChat Pay refund notification is then posted, signed, to the refund's ``notify_url`` on the same retry
  schedule; ``refund_complete`` ends one by hand (SUCCESS, ABNORMAL, CLOSED);
- the day's bill, in each provider's own file format (``sandbox_bills``);
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
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache
from django.utils import timezone

from reservations.payments import keys
from reservations.payments.alipay.signatures import china_time, sign_content
from reservations.payments.base import (
    Channel,
    GatewayError,
    GatewayOrderState,
    Transport,
    fen_to_yuan,
    rsa_sign,
    urllib_transport,
)

# The tasks module imports this one too: each only looks the other's names up when called.
from reservations.payments.sandbox import tasks as delivery_tasks
from reservations.payments.wechatpay.notifications import aes_gcm_encrypt
from reservations.payments.wechatpay.signatures import (
    AUTH_SCHEME,
    CHINA,
    PROBE_SIGNATURE_PREFIX,
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
    "refund_processing": False,  # a WeChat Pay refund is PROCESSING at first, SUCCESS when asked again
    "refund_stuck": False,  # a PROCESSING refund stays so however often it is asked about
    "bill_tampered": False,  # the bill file served differs from the hash announced for it (global)
    "unavailable": False,  # the API answers 500 / Alipay 20000
}

# Where notifications are POSTed: urllib for the dev server and the worker; in-process tests swap in
# tests/reservations/payment_transport.client_transport().
notify_transport: Transport = urllib_transport


def enqueue_delivery(order_no: str, countdown_s: float) -> None:
    """Schedule the first delivery of an order's notification (tests replace this to run it inline)."""
    delivery_tasks.sandbox_notification_deliver.apply_async(args=(order_no,), countdown=max(0.0, countdown_s))


def enqueue_refund_delivery(order_no: str, refund_no: str, countdown_s: float) -> None:
    """Schedule the first delivery of a refund's notification (tests replace this to run it inline)."""
    delivery_tasks.sandbox_refund_notification_deliver.apply_async(
        args=(order_no, refund_no), countdown=max(0.0, countdown_s)
    )


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


def _bill_refund_add(order_no: str, refund: dict[str, Any]) -> None:
    """A refund is billed on the (China) day it succeeded."""
    day = datetime.fromisoformat(refund["success_time"]).astimezone(CHINA).date().isoformat()
    with _locked("bill"):
        key = f"{PREFIX}:bill-refunds:{day}"
        entries: list[list[str]] = cache.get(key) or []
        if [order_no, refund["refund_no"]] not in entries:
            entries.append([order_no, refund["refund_no"]])
        cache.set(key, entries, ORDER_TIMEOUT_S)


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
    payer_openid: str = "",
) -> tuple[str, dict[str, Any] | None]:
    """Open an order (a WeChat JSAPI one names its payer's openid). The same number again with the same
    amount returns the first one; with another amount it is refused ("used"), as both providers do."""
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
            "payer_openid": payer_openid,
            "prepay_id": "",
        }
        _order_put(order)
        return "created", order


def prepay_issue(order_no: str) -> str:
    """The JSAPI prepay id of an order (one per order, as the bridge page needs it to find the order)."""
    with _locked(order_no):
        order = order_get(order_no)
        if order is None:
            raise GatewayError(f"no sandbox order {order_no}")
        if not order.get("prepay_id"):
            order["prepay_id"] = "wx" + secrets.token_hex(16)
            _order_put(order)
            cache.set(f"{PREFIX}:prepay:{order['prepay_id']}", order_no, ORDER_TIMEOUT_S)
        return str(order["prepay_id"])


def prepay_order_no(prepay_id: str) -> str | None:
    """The order a JSAPI prepay id belongs to, or None."""
    order_no: str | None = cache.get(f"{PREFIX}:prepay:{prepay_id}")
    return order_no


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


def _refund_finish(order: dict[str, Any], refund: dict[str, Any], status: str) -> bool:
    """Move a PROCESSING refund to ``status`` (SUCCESS, ABNORMAL, CLOSED) inside the order's lock; a refund
    that did not happen gives its amount back to the order. True when it changed."""
    if refund["status"] != "PROCESSING":
        return False
    refund["status"] = status
    if status == "SUCCESS":
        refund["success_time"] = timezone.now().isoformat()
    else:
        order["refunded_fen"] -= refund["amount_fen"]
        if order["state"] == GatewayOrderState.REFUNDED:
            order["state"] = GatewayOrderState.PAID.value
    _order_put(order)
    return True


def _refund_finished(order_no: str, refund: dict[str, Any]) -> None:
    """After the lock: bill a success, and post the refund notification where one was asked for."""
    if refund["status"] == "SUCCESS":
        _bill_refund_add(order_no, refund)
    if refund.get("notify_url"):
        enqueue_refund_delivery(order_no, refund["refund_no"], 0.0)


def _refund_progress(order_no: str, refund_no: str) -> dict[str, Any] | None:
    """Being asked about a PROCESSING refund completes it (unless ``refund_stuck``)."""
    faults = faults_for(order_no)
    with _locked(order_no):
        order = order_get(order_no)
        refund = (order or {}).get("refunds", {}).get(refund_no)
        if order is None or refund is None:
            return None
        changed = not faults["refund_stuck"] and _refund_finish(order, refund, "SUCCESS")
    if changed:
        _refund_finished(order_no, refund)
    return refund


def refund_order_no(refund_no: str) -> str | None:
    """The order a refund number belongs to, or None."""
    order_no: str | None = cache.get(f"{PREFIX}:refund:{refund_no}")
    return order_no


def refund_get(refund_no: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(refund, order) for a refund number, as the refund query sees it, or (None, None)."""
    order_no = refund_order_no(refund_no)
    if not order_no:
        return None, None
    refund = _refund_progress(order_no, refund_no)
    return refund, order_get(order_no)


def refund_complete(order_no: str, refund_no: str, status: str = "SUCCESS") -> bool:
    """End a PROCESSING refund now with ``status`` (SUCCESS, ABNORMAL or CLOSED), as the bank would, and
    send its notification. False when there is no such processing refund."""
    if status not in ("SUCCESS", "ABNORMAL", "CLOSED"):
        raise ValueError(f"not a final refund status: {status!r}")
    with _locked(order_no):
        order = order_get(order_no)
        refund = (order or {}).get("refunds", {}).get(refund_no)
        changed = order is not None and refund is not None and _refund_finish(order, refund, status)
    if changed and refund is not None:
        _refund_finished(order_no, refund)
    return changed


def order_refund(
    *, order_no: str, refund_no: str, amount_fen: int, total_fen: int | None, notify_url: str = ""
) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """Refund part or all of a paid order. Returns (outcome, refund, order); outcome is ``refunded``,
    ``existing`` (the same refund number again: nothing more moves), ``not_found``, ``not_paid``,
    ``total_mismatch`` or ``exceeds``."""
    faults = faults_for(order_no)
    current = order_get(order_no)
    if current is not None and refund_no in current["refunds"]:  # asked again: it may complete now
        return "existing", _refund_progress(order_no, refund_no), order_get(order_no)
    with _locked(order_no):
        order = order_get(order_no)
        if order is None:
            return "not_found", None, None
        existing = order["refunds"].get(refund_no)
        if existing is not None:  # created meanwhile by a concurrent request
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
            "notify_url": notify_url,
            "notification_id": str(uuid.uuid4()),
            "deliveries": [],
        }
        order["refunds"][refund_no] = refund
        order["refunded_fen"] += amount_fen
        if order["refunded_fen"] == order["amount_fen"]:
            order["state"] = GatewayOrderState.REFUNDED.value
        _order_put(order)
        cache.set(f"{PREFIX}:refund:{refund_no}", order_no, ORDER_TIMEOUT_S)
    if refund["status"] == "SUCCESS":
        # Billed at once; WeChat would notify this one too, but the sandbox notifies only refunds that were
        # processing, the case the notification exists for (the refund call's answer settled this one).
        _bill_refund_add(order_no, refund)
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


def bill_lines(day: date) -> list[dict[str, Any]]:
    """The day's bill as the providers' files list it: one line per payment taken that day (China date)
    and one per refund that succeeded that day, oldest first, each with its channel."""
    lines: list[dict[str, Any]] = []
    for order_no in cache.get(f"{PREFIX}:bill:{day.isoformat()}") or []:
        order = order_get(order_no)
        if order is not None and order["paid_at"]:
            lines.append({"kind": "payment", "at": order["paid_at"], "order": order, "refund": None})
    for order_no, refund_no in cache.get(f"{PREFIX}:bill-refunds:{day.isoformat()}") or []:
        order = order_get(order_no)
        refund = (order or {}).get("refunds", {}).get(refund_no)
        if order is not None and refund is not None and refund["status"] == "SUCCESS":
            lines.append({"kind": "refund", "at": refund["success_time"], "order": order, "refund": refund})
    return sorted(lines, key=lambda line: str(line["at"]))


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
        "trade_type": "JSAPI" if order.get("payer_openid") else "MWEB",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": rfc3339(paid_at),
        "payer": {"openid": order.get("payer_openid") or "sandbox-openid"},
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


REFUND_EVENTS = {"SUCCESS": ("REFUND.SUCCESS", "退款成功"), "ABNORMAL": ("REFUND.ABNORMAL", "退款异常"),
                 "CLOSED": ("REFUND.CLOSED", "退款关闭")}  # fmt: skip


def build_refund_notification(
    order_no: str,
    refund_no: str,
    *,
    faults: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[dict[str, str], bytes]:
    """The signed WeChat Pay notification of a finished refund, as (headers, body), freshly signed now.
    ``overrides`` replaces fields of the decrypted refund resource (then encrypted and signed)."""
    order = order_get(order_no)
    refund = (order or {}).get("refunds", {}).get(refund_no)
    if order is None or refund is None or refund["status"] not in REFUND_EVENTS:
        raise ValueError(f"sandbox refund {refund_no} is not finished")
    faults = faults if faults is not None else faults_for(order_no)
    config = keys.wechatpay_config()
    assert config.platform_private_key is not None  # noqa: S101
    event_type, summary = REFUND_EVENTS[refund["status"]]
    resource = {
        "mchid": config.mchid,
        "out_trade_no": order_no,
        "transaction_id": order["transaction_id"],
        "out_refund_no": refund_no,
        "refund_id": refund["refund_id"],
        "refund_status": refund["status"],
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": order["amount_fen"],
            "refund": refund["amount_fen"] + (1 if faults["wrong_amount"] else 0),
            "payer_total": order["amount_fen"],
            "payer_refund": refund["amount_fen"],
        },
        **({"success_time": rfc3339(datetime.fromisoformat(refund["success_time"]))} if refund["success_time"]
           else {}),
        **(overrides or {}),
    }  # fmt: skip
    nonce = secrets.token_hex(6)
    envelope = {
        "id": refund["notification_id"],
        "create_time": rfc3339(timezone.now()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": "refund",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": aes_gcm_encrypt(
                config.apiv3_key, nonce, "refund", json.dumps(resource, ensure_ascii=False).encode()
            ),
            "associated_data": "refund",
            "nonce": nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    timestamp, header_nonce = str(int(timezone.now().timestamp())), secrets.token_hex(16).upper()
    signer = _forger_key() if faults["forged_signature"] else config.platform_private_key
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Serial": config.platform_public_key_id,
        "Wechatpay-Signature": rsa_sign(signer, response_message(timestamp, header_nonce, body)),
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Signature-Type": AUTH_SCHEME,
    }
    return headers, body


def deliver_refund_notification(order_no: str, refund_no: str, attempt: int = 0) -> str:
    """POST a finished refund's signed notification to its notify_url once (twice with ``duplicate``):
    ``delivered``, ``refused`` (retry later) or ``nothing`` (no finished refund with a notify_url)."""
    order = order_get(order_no)
    refund = (order or {}).get("refunds", {}).get(refund_no)
    if (
        order is None
        or refund is None
        or refund["status"] not in REFUND_EVENTS
        or not refund.get("notify_url")
    ):
        return "nothing"
    faults = faults_for(order_no)
    accepted = False
    for _copy in range(2 if faults["duplicate"] else 1):
        headers, body = build_refund_notification(order_no, refund_no, faults=faults)
        try:
            status, _headers, _answer = notify_transport("POST", refund["notify_url"], headers, body)
        except GatewayError:
            status = 0
        accepted = status in (200, 204) or accepted
        with _locked(order_no):
            fresh = order_get(order_no) or order
            fresh["refunds"][refund_no].setdefault("deliveries", []).append(
                {"attempt": attempt, "at": timezone.now().isoformat(), "status": status}
            )
            _order_put(fresh)
    return "delivered" if accepted else "refused"


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
