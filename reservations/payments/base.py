"""The payment gateway interface: what the reservations domain calls, whichever provider is behind it.

Amounts are integer fen (分) everywhere in this layer; conversion to the providers' own units (WeChat Pay
counts fen, Alipay counts yuan with two decimals) happens inside the adapters. Every adapter talks HTTP
through a :data:`Transport`, so tests route requests in-process to the sandbox gateway and exercise the
full protocol (our signatures, the provider's verification, its signed answers, our verification of those)
without a socket.
"""

from __future__ import annotations

import base64
import csv
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.http import HttpResponse

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 10


class Channel(StrEnum):
    WECHATPAY = "wechatpay"
    ALIPAY = "alipay"


@dataclass(frozen=True)
class PaymentIntent:
    """Where the patient's browser goes to pay: the sandbox cashier, or the provider's H5/wap page."""

    channel: str
    order_no: str
    pay_url: str


class GatewayOrderState(StrEnum):
    NOTPAY = "notpay"
    PAID = "paid"
    CLOSED = "closed"
    REFUNDED = "refunded"
    # The provider has no record of the order (never created, or for Alipay wap: not yet opened by the
    # patient), or reported a state this layer does not model. Not paid, as far as the provider knows.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class GatewayOrder:
    order_no: str
    state: GatewayOrderState
    amount_fen: int
    transaction_id: str
    paid_at: datetime | None


@dataclass(frozen=True)
class RefundResult:
    refund_no: str
    # "processing" | "success" | "failed"; from ``refund_query`` also "unknown": the provider has no such
    # refund (the request never reached it), so asking for it again is safe and needed.
    state: str
    amount_fen: int


@dataclass(frozen=True)
class RefundNotification:
    """A verified refund outcome pushed by the provider (WeChat Pay REFUND.* events)."""

    channel: str
    order_no: str
    refund_no: str
    refund_id: str
    state: str  # "success" | "failed" | "processing"
    refund_fen: int
    total_fen: int
    merchant_id: str
    raw_id: str


class BillRowKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True)
class BillRow:
    """One line of a provider's daily bill: a payment taken that day, or a refund made that day.

    ``amount_fen`` is what the line moved: the order's paid amount, or the refunded amount."""

    kind: BillRowKind
    order_no: str
    transaction_id: str
    amount_fen: int
    refund_no: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Notification:
    channel: str
    order_no: str
    transaction_id: str
    amount_fen: int
    paid: bool
    paid_at: datetime | None
    app_id: str
    merchant_id: str
    raw_id: str  # the provider's notification id: WeChat "id", Alipay notify_id


class GatewayError(Exception):
    """Transient: network failure, timeout, 5xx, rate limit, an answer we could not verify. Retry later."""


class GatewayRejected(Exception):
    """The provider refused the request for a reason retrying will not fix (our signature, parameters,
    credentials). ``code`` is the provider's error code."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class OrderPaid(GatewayRejected, GatewayError):
    """``close()`` found the order already paid at the provider: the payment must be taken (or refunded).

    Also a :class:`GatewayError`, so a caller that only handles transient errors leaves the order to the
    next query (which reports it paid) instead of crashing; catch ``OrderPaid`` first to act at once."""


class ForgedNotification(Exception):
    """A notification we must not act on: bad or missing signature, probe signature, stale timestamp,
    undecryptable resource, another merchant's or app's id. ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BillRejected(Exception):
    """The provider's bill failed an integrity check (hash, its own totals) or could not be read; nothing
    in it may be used. ``reason`` is safe to log and to show staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotificationRejected(Exception):
    """Raised by the reservations domain for a genuine notification it cannot accept (unknown order,
    wrong amount); the notify view answers failure so the provider retries and operators are alerted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Gateway(Protocol):
    channel: str

    def create_order(
        self,
        *,
        order_no: str,
        amount_fen: int,
        description: str,
        expires_at: datetime,
        notify_url: str,
        return_url: str,
    ) -> PaymentIntent: ...

    def query(self, *, order_no: str) -> GatewayOrder: ...

    def close(self, *, order_no: str) -> None: ...

    def refund(
        self,
        *,
        order_no: str,
        refund_no: str,
        amount_fen: int,
        total_fen: int,
        reason: str,
        notify_url: str = "",
    ) -> RefundResult: ...

    def refund_query(self, *, order_no: str, refund_no: str) -> RefundResult: ...

    def download_bill(self, *, day: date) -> list[BillRow]: ...

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notification: ...

    def parse_refund_notification(self, *, headers: Mapping[str, str], body: bytes) -> RefundNotification: ...

    def success_response(self) -> HttpResponse: ...

    def failure_response(self) -> HttpResponse: ...


# (method, url, headers, body) -> (status, headers with lower-case names, body)
Transport = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


def urllib_transport(
    method: str, url: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """The default transport: one HTTP request with a timeout. HTTP error statuses are answers, not
    exceptions; only network failures raise :class:`GatewayError`."""
    if not url.startswith(("https://", "http://")):
        raise GatewayError(f"refusing a non-HTTP gateway URL: {url[:40]!r}")
    data = body if method != "GET" else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (checked)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 (checked)
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise GatewayError(f"{method} {url.split('?')[0]} failed: {error}") from error


# --- Small shared helpers -----------------------------------------------------------------------------


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5), base64: the signature both providers use (WeChat v3, Alipay RSA2)."""
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid SHA256withRSA signature of ``message``.

    >>> from reservations.payments.keys import generate_rsa_key
    >>> key = generate_rsa_key()
    >>> rsa_verify(key.public_key(), b"abc", rsa_sign(key, b"abc"))
    True
    >>> rsa_verify(key.public_key(), b"abd", rsa_sign(key, b"abc")), rsa_verify(key.public_key(), b"a", "%%")
    (False, False)
    """
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def yuan_to_fen(value: str) -> int:
    """Parse a yuan amount with at most two decimals, exactly (no floats).

    >>> yuan_to_fen("12.50"), yuan_to_fen("0.01"), yuan_to_fen("3")
    (1250, 1, 300)
    >>> yuan_to_fen("1.005")
    Traceback (most recent call last):
    ...
    ValueError: not a whole number of fen: '1.005'
    """
    try:
        fen = Decimal(value) * 100
    except (InvalidOperation, TypeError):
        raise ValueError(f"not an amount: {value!r}") from None
    if fen != fen.to_integral_value() or fen < 0:
        raise ValueError(f"not a whole number of fen: {value!r}")
    return int(fen)


def fen_to_yuan(amount_fen: int) -> str:
    """Format fen as yuan with two decimals, the way Alipay and the cashier page show it.

    >>> fen_to_yuan(1250), fen_to_yuan(1), fen_to_yuan(0)
    ('12.50', '0.01', '0.00')
    """
    return f"{Decimal(amount_fen) / 100:.2f}"


def lower_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Header names lower-cased, so look-ups work whatever casing the web server or test client used."""
    return {str(k).lower(): str(v) for k, v in headers.items()}


# --- Bills: helpers both providers' readers share ----------------------------------------------------

BILL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Both providers write their bills' times in China time.
BILL_ZONE = ZoneInfo("Asia/Shanghai")


def bill_fen(value: str) -> int:
    """A bill's yuan amount as fen, exactly; a refund line's minus sign is dropped (the kind says it).

    >>> bill_fen("25.00"), bill_fen(" -0.01\\t"), bill_fen("`3.5")
    (2500, 1, 350)
    >>> bill_fen("1.234")
    Traceback (most recent call last):
    ...
    reservations.payments.base.BillRejected: not an amount in fen: '1.234'
    """
    text = value.strip().lstrip("`").strip().removeprefix("-")
    try:
        return yuan_to_fen(text)
    except ValueError:
        raise BillRejected(f"not an amount in fen: {value!r}") from None


def bill_china_time(value: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip(), BILL_TIME_FORMAT).replace(tzinfo=BILL_ZONE)
    except ValueError:
        return None


def bill_csv_lines(lines: list[str]) -> list[list[str]]:
    return list(csv.reader(lines))
