"""WeChat Pay API v3 adapter (direct merchant, H5 and JSAPI payment), signed with ``cryptography``.

Protocol facts used here, each checked against the official documentation (pay.weixin.qq.com):

- Request signature (wechatpay4_0 "签名生成"): SHA256withRSA with the merchant private key over five lines,
  each ending in ``\\n``: method, the URL path with its query, timestamp, nonce, body (empty for GET). Sent
  as ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",
  serial_no="…"``. A bad signature is answered 401 SIGN_ERROR.
- Answers and notifications are signed by the platform (wechatpay3_3): ``Wechatpay-Timestamp``,
  ``Wechatpay-Nonce``, ``Wechatpay-Signature``, ``Wechatpay-Serial`` over ``timestamp\\nnonce\\nbody\\n``.
  "A successful response without a signature should be considered forged." Merchants registered after
  2024-10 get a platform public key whose id starts ``PUB_KEY_ID_`` instead of certificates; that is the
  mode supported here.
- H5 order: ``POST /v3/pay/transactions/h5`` → ``{"h5_url": …}``; ``redirect_url`` may be appended to bring
  the patient back. JSAPI order (inside WeChat's own browser, where H5 is refused): ``POST
  /v3/pay/transactions/jsapi`` with ``payer.openid`` (the patient's openid for our appid, from the OAuth
  snsapi_base step) → ``{"prepay_id": …}``; the page then calls ``WeixinJSBridge.invoke(
  'getBrandWCPayRequest', {appId, timeStamp, nonceStr, package: "prepay_id=…", signType: "RSA", paySign})``
  where paySign is SHA256withRSA with the merchant key over ``appId\ntimeStamp\nnonceStr\npackage\n``.
  Query: ``GET /v3/pay/transactions/out-trade-no/{no}?mchid=…`` (``trade_state`` SUCCESS,
  REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR). Close: ``POST …/{no}/close`` with ``{"mchid"}`` →
  204. Refund: ``POST /v3/refund/domestic/refunds``; "同一退款单号多次请求只退一笔" (one refund per
  out_refund_no), status SUCCESS, CLOSED, PROCESSING, ABNORMAL.
- Refund query: ``GET /v3/refund/domestic/refunds/{out_refund_no}`` answers the refund as the refund call
  does; 404 RESOURCE_NOT_EXISTS when WeChat has no such refund. Refund notifications go to the
  ``notify_url`` given with the refund: event_type REFUND.SUCCESS, REFUND.ABNORMAL or REFUND.CLOSED, the same
  signature and AEAD_AES_256_GCM envelope as payments (original_type ``refund``), the resource carrying
  ``mchid, out_trade_no, transaction_id, out_refund_no, refund_id, refund_status, success_time,
  amount{total, refund, payer_total, payer_refund}`` (no appid).
- Trade bill: ``GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL`` → ``{hash_type: "SHA1",
  hash_value, download_url}``; the file is fetched with a signed GET of ``download_url`` whose answer is
  NOT signed (it is a file): its SHA-1 must equal ``hash_value``. A day without transactions answers 400
  NO_STATEMENT_EXIST; before the bill is ready (about 10:00 the next day) STATEMENT_CREATING.
- Notifications (reference booking.md §5.1): verify the signature over the raw body, reject timestamps more
  than 300 s away and probe signatures starting ``WECHATPAY/SIGNTEST/``, decrypt ``resource`` with
  AEAD_AES_256_GCM (key = APIv3 key, nonce, associated_data). Success = 200/204 with no body; failure =
  4XX/5XX with ``{"code":"FAIL","message":"失败"}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from reservations.payments.base import (
    BillRejected,
    BillRow,
    Channel,
    ForgedNotification,
    GatewayError,
    GatewayOrder,
    GatewayOrderState,
    GatewayRejected,
    Notification,
    OrderPaid,
    PaymentIntent,
    RefundNotification,
    RefundResult,
    Transport,
    lower_headers,
    rsa_sign,
    rsa_verify,
    urllib_transport,
)
from reservations.payments.bills import parse_wechatpay_tradebill
from reservations.payments.keys import WechatPayConfig

logger = logging.getLogger(__name__)

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
PROBE_SIGNATURE_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_CLOCK_SKEW_S = 300
CHINA = ZoneInfo("Asia/Shanghai")

TRADE_STATES = {
    "SUCCESS": GatewayOrderState.PAID,
    "REFUND": GatewayOrderState.REFUNDED,
    "NOTPAY": GatewayOrderState.NOTPAY,
    "USERPAYING": GatewayOrderState.NOTPAY,
    "CLOSED": GatewayOrderState.CLOSED,
    "REVOKED": GatewayOrderState.CLOSED,
    "PAYERROR": GatewayOrderState.CLOSED,
}
REFUND_STATES = {"SUCCESS": "success", "PROCESSING": "processing", "CLOSED": "failed", "ABNORMAL": "failed"}
REFUND_EVENTS = {"REFUND.SUCCESS": "success", "REFUND.ABNORMAL": "failed", "REFUND.CLOSED": "failed"}
TRANSIENT_CODES = {"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANKERROR"}


def request_message(method: str, path_with_query: str, timestamp: str, nonce: str, body: str) -> bytes:
    """The five-line string a v3 request signature covers.

    >>> request_message("GET", "/v3/certificates", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", "")
    b'GET\\n/v3/certificates\\n1554208460\\n593BEC0C930BF1AFEB40B4A08C8FB242\\n\\n'
    """
    return f"{method}\n{path_with_query}\n{timestamp}\n{nonce}\n{body}\n".encode()


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The three-line string the platform signs on answers and notifications (raw body, not re-encoded)."""
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"


def authorization_header(
    *,
    mchid: str,
    serial_no: str,
    private_key: Any,
    method: str,
    path_with_query: str,
    body: str,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> str:
    timestamp = timestamp or str(int(timezone.now().timestamp()))
    nonce = nonce or secrets.token_hex(16).upper()
    signature = rsa_sign(private_key, request_message(method, path_with_query, timestamp, nonce, body))
    return (
        f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def parse_authorization(value: str) -> dict[str, str] | None:
    """Split an Authorization header into its fields, or None when it is not the v3 scheme.

    >>> parse_authorization('WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="s=",timestamp="2"')
    {'mchid': '1', 'nonce_str': 'n', 'signature': 's=', 'timestamp': '2'}
    >>> parse_authorization("Bearer x") is None
    True
    """
    scheme, _, rest = value.partition(" ")
    if scheme != AUTH_SCHEME:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, raw = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = raw.strip().strip('"')
    return fields


def aes_gcm_encrypt(key: bytes, nonce: str, associated_data: str, plaintext: bytes) -> str:
    return base64.b64encode(AESGCM(key).encrypt(nonce.encode(), plaintext, associated_data.encode())).decode()


def aes_gcm_decrypt(key: bytes, nonce: str, associated_data: str, ciphertext_b64: str) -> bytes:
    """Decrypt an AEAD_AES_256_GCM ``resource`` (the 16-byte tag is appended to the ciphertext)."""
    return AESGCM(key).decrypt(nonce.encode(), base64.b64decode(ciphertext_b64), associated_data.encode())


def rfc3339(moment: datetime) -> str:
    """WeChat's time format, in China time.

    >>> from datetime import UTC
    >>> rfc3339(datetime(2026, 5, 20, 5, 29, 35, tzinfo=UTC))
    '2026-05-20T13:29:35+08:00'
    """
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def parse_rfc3339(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def jsapi_pay_message(app_id: str, timestamp: str, nonce: str, package: str) -> bytes:
    """The four-line string a JSAPI ``paySign`` covers (v3 rule: each line ends in ``\\n``).

    >>> jsapi_pay_message("wx8888888888888888", "1414561699", "5K8264ILTKCH16CQ", "prepay_id=wx1")
    b'wx8888888888888888\\n1414561699\\n5K8264ILTKCH16CQ\\nprepay_id=wx1\\n'
    """
    return f"{app_id}\n{timestamp}\n{nonce}\n{package}\n".encode()


def jsapi_params(*, app_id: str, prepay_id: str, private_key: Any) -> dict[str, str]:
    """The parameters of ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)`` for a prepay id, signed with
    the merchant key."""
    timestamp = str(int(timezone.now().timestamp()))
    nonce = secrets.token_hex(16).upper()
    package = f"prepay_id={prepay_id}"
    return {
        "appId": app_id,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": rsa_sign(private_key, jsapi_pay_message(app_id, timestamp, nonce, package)),
    }


@dataclass(frozen=True)
class JsapiIntent(PaymentIntent):
    """A JSAPI order: no page to go to; the patient's page hands ``jsapi_params`` to the WeChat bridge."""

    jsapi_params: dict[str, str]


class WechatPayGateway:
    """WeChat Pay API v3 for a direct merchant: H5 orders, query, close, refund and payment notifications."""

    channel = Channel.WECHATPAY.value

    def __init__(self, config: WechatPayConfig, transport: Transport | None = None) -> None:
        self.config = config
        self.transport = transport or urllib_transport

    # --- HTTP ---------------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Sign and send one request; verify a successful answer's platform signature; map errors."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""
        url = self.config.api_base + path
        path_with_query = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
        headers = {
            "Authorization": authorization_header(
                mchid=self.config.mchid,
                serial_no=self.config.merchant_serial,
                private_key=self.config.merchant_private_key,
                method=method,
                path_with_query=path_with_query,
                body=body,
            ),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "hospital-outpatient",
        }
        status, answer_headers, answer = self.transport(method, url, headers, body.encode())
        answer_headers = lower_headers(answer_headers)
        if status >= 500 or status == 429:
            raise GatewayError(f"WeChat Pay answered {status} to {method} {path.split('?')[0]}")
        data: dict[str, Any] = {}
        if answer:
            try:
                data = json.loads(answer)
            except ValueError:
                raise GatewayError(f"WeChat Pay answered {status} with a body that is not JSON") from None
        if 200 <= status < 300:
            self._verify_answer(answer_headers, answer)
            return status, data
        code = str(data.get("code", status))
        if code in TRANSIENT_CODES:
            raise GatewayError(f"WeChat Pay: {code}")
        return status, data

    def _verify_answer(self, headers: dict[str, str], body: bytes) -> None:
        timestamp, nonce = headers.get("wechatpay-timestamp", ""), headers.get("wechatpay-nonce", "")
        signature, serial = headers.get("wechatpay-signature", ""), headers.get("wechatpay-serial", "")
        valid = (
            bool(timestamp and nonce and signature)
            and serial == self.config.platform_public_key_id
            and rsa_verify(
                self.config.platform_public_key, response_message(timestamp, nonce, body), signature
            )
        )
        if not valid:
            # Could be a proxy in the middle; never act on it. Transient from the caller's point of view.
            logger.warning("wechatpay answer with a missing or invalid platform signature refused")
            raise GatewayError("WeChat Pay answer failed signature verification")

    @staticmethod
    def _rejected(status: int, data: dict[str, Any]) -> GatewayRejected:
        return GatewayRejected(str(data.get("code", status)), str(data.get("message", "")))

    # --- Gateway ------------------------------------------------------------------------------------

    def create_order(
        self,
        *,
        order_no: str,
        amount_fen: int,
        description: str,
        expires_at: datetime,
        notify_url: str,
        return_url: str,
        payer_client_ip: str = "127.0.0.1",
        payer_openid: str = "",
    ) -> PaymentIntent:
        """Create an H5 order (a JSAPI one with ``payer_openid``: see :meth:`_create_jsapi_order`) that stops
        accepting payment at ``expires_at`` (``time_expire``; it does not close the order: call :meth:`close`
        too)."""
        if payer_openid:
            return self._create_jsapi_order(
                order_no=order_no,
                amount_fen=amount_fen,
                description=description,
                expires_at=expires_at,
                notify_url=notify_url,
                payer_openid=payer_openid,
            )
        payload = {
            "appid": self.config.appid,
            "mchid": self.config.mchid,
            "description": description[:127],
            "out_trade_no": order_no,
            "time_expire": rfc3339(expires_at),
            "notify_url": notify_url,
            "amount": {"total": amount_fen, "currency": "CNY"},
            "scene_info": {"payer_client_ip": payer_client_ip, "h5_info": {"type": "Wap"}},
        }
        status, data = self._call("POST", "/v3/pay/transactions/h5", payload)
        if status != 200 or not data.get("h5_url"):
            raise self._rejected(status, data)
        pay_url = str(data["h5_url"])
        if return_url:
            pay_url += ("&" if "?" in pay_url else "?") + "redirect_url=" + quote(return_url, safe="")
        return PaymentIntent(channel=self.channel, order_no=order_no, pay_url=pay_url)

    def _create_jsapi_order(
        self,
        *,
        order_no: str,
        amount_fen: int,
        description: str,
        expires_at: datetime,
        notify_url: str,
        payer_openid: str,
    ) -> JsapiIntent:
        """A JSAPI order for the payer's openid; the answer carries the signed bridge parameters."""
        payload = {
            "appid": self.config.appid,
            "mchid": self.config.mchid,
            "description": description[:127],
            "out_trade_no": order_no,
            "time_expire": rfc3339(expires_at),
            "notify_url": notify_url,
            "amount": {"total": amount_fen, "currency": "CNY"},
            "payer": {"openid": payer_openid},
        }
        status, data = self._call("POST", "/v3/pay/transactions/jsapi", payload)
        if status != 200 or not data.get("prepay_id"):
            raise self._rejected(status, data)
        params = jsapi_params(
            app_id=self.config.appid,
            prepay_id=str(data["prepay_id"]),
            private_key=self.config.merchant_private_key,
        )
        return JsapiIntent(channel=self.channel, order_no=order_no, pay_url="", jsapi_params=params)

    def query(self, *, order_no: str) -> GatewayOrder:
        path = (
            f"/v3/pay/transactions/out-trade-no/{quote(order_no, safe='')}?mchid={quote(self.config.mchid)}"
        )
        status, data = self._call("GET", path)
        if status == 404 or data.get("code") == "ORDER_NOT_EXIST":
            return GatewayOrder(order_no, GatewayOrderState.UNKNOWN, 0, "", None)
        if status != 200:
            raise self._rejected(status, data)
        if data.get("mchid") != self.config.mchid or data.get("out_trade_no") != order_no:
            raise GatewayError("WeChat Pay answered about another order or merchant")
        state = TRADE_STATES.get(str(data.get("trade_state")), GatewayOrderState.UNKNOWN)
        return GatewayOrder(
            order_no=order_no,
            state=state,
            amount_fen=int((data.get("amount") or {}).get("total") or 0),
            transaction_id=str(data.get("transaction_id") or ""),
            paid_at=parse_rfc3339(data.get("success_time")),
        )

    def close(self, *, order_no: str) -> None:
        """Close an unpaid order. Already closed or unknown to WeChat is fine; already paid raises
        :class:`OrderPaid` so the caller takes (or refunds) the payment instead of releasing the slot."""
        path = f"/v3/pay/transactions/out-trade-no/{quote(order_no, safe='')}/close"
        status, data = self._call("POST", path, {"mchid": self.config.mchid})
        code = str(data.get("code", ""))
        if status == 204 or code in {"ORDER_CLOSED", "ORDER_NOT_EXIST"} or status == 404:
            return
        if code == "ORDERPAID":
            raise OrderPaid(code, str(data.get("message", "")))
        raise self._rejected(status, data)

    def refund(
        self,
        *,
        order_no: str,
        refund_no: str,
        amount_fen: int,
        total_fen: int,
        reason: str,
        notify_url: str = "",
    ) -> RefundResult:
        """Refund ``amount_fen`` of an order of ``total_fen``. Idempotent by ``refund_no``: repeating it
        returns the same refund (with its current status) and moves no more money, so it doubles as the
        way to follow a "processing" refund. Business refusals (not enough balance, too much refunded)
        come back as ``state="failed"``. WeChat posts the final outcome to ``notify_url``."""
        payload: dict[str, Any] = {
            "out_trade_no": order_no,
            "out_refund_no": refund_no,
            "amount": {"refund": amount_fen, "total": total_fen, "currency": "CNY"},
        }
        if reason:
            payload["reason"] = reason[:80]
        if notify_url:
            payload["notify_url"] = notify_url
        status, data = self._call("POST", "/v3/refund/domestic/refunds", payload)
        if status == 200:
            return self._refund_result(data, refund_no, amount_fen)
        if status in {400, 403, 404} and data.get("code") not in {"SIGN_ERROR", "PARAM_ERROR"}:
            logger.warning(
                "wechatpay refund refused", extra={"refund_no": refund_no, "code": data.get("code")}
            )
            return RefundResult(refund_no=refund_no, state="failed", amount_fen=amount_fen)
        raise self._rejected(status, data)

    @staticmethod
    def _refund_result(data: dict[str, Any], refund_no: str, amount_fen: int) -> RefundResult:
        state = REFUND_STATES.get(str(data.get("status")), "processing")
        refunded = int((data.get("amount") or {}).get("refund") or amount_fen)
        return RefundResult(
            refund_no=str(data.get("out_refund_no") or refund_no), state=state, amount_fen=refunded
        )

    def refund_query(self, *, order_no: str, refund_no: str) -> RefundResult:
        """The current state of a refund; ``state="unknown"`` when WeChat has no such refund."""
        status, data = self._call("GET", f"/v3/refund/domestic/refunds/{quote(refund_no, safe='')}")
        if status == 404 or data.get("code") == "RESOURCE_NOT_EXISTS":
            return RefundResult(refund_no=refund_no, state="unknown", amount_fen=0)
        if status != 200:
            raise self._rejected(status, data)
        if data.get("out_refund_no") != refund_no or data.get("out_trade_no") not in (None, order_no):
            raise GatewayError("WeChat Pay answered about another refund")
        return self._refund_result(data, refund_no, 0)

    def download_bill(self, *, day: date) -> list[BillRow]:
        """The day's (China date) trade bill: every payment and refund, verified against its SHA-1.

        Raises :class:`GatewayError` while the bill is not ready yet, :class:`BillRejected` when the file
        does not match its hash or its own totals; a day without transactions is an empty bill."""
        status, data = self._call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL")
        code = str(data.get("code", ""))
        if status != 200:
            if code == "NO_STATEMENT_EXIST":
                return []
            if code == "STATEMENT_CREATING":
                raise GatewayError("WeChat Pay: the bill is not ready yet (STATEMENT_CREATING)")
            raise self._rejected(status, data)
        download_url = str(data.get("download_url") or "")
        if data.get("hash_type") != "SHA1" or not data.get("hash_value") or not download_url:
            raise BillRejected("the bill answer lacks its SHA1 hash or download URL")
        # The download carries our signature: only ever to WeChat's own host.
        if urlsplit(download_url).netloc != urlsplit(self.config.api_base).netloc:
            raise BillRejected("the bill download URL is not on the WeChat Pay API host")
        content = self._download(download_url)
        if hashlib.sha1(content).hexdigest() != str(data["hash_value"]).lower():  # noqa: S324 (WeChat's)
            logger.error("wechatpay bill refused: SHA-1 mismatch", extra={"bill_date": day.isoformat()})
            raise BillRejected("the bill file does not match its SHA-1 hash (tampered or truncated)")
        return parse_wechatpay_tradebill(content)

    def _download(self, url: str) -> bytes:
        """A signed GET whose answer is a file (unsigned, checked by its hash instead)."""
        parts = urlsplit(url)
        path_with_query = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Authorization": authorization_header(
                mchid=self.config.mchid,
                serial_no=self.config.merchant_serial,
                private_key=self.config.merchant_private_key,
                method="GET",
                path_with_query=path_with_query,
                body="",
            ),
            "User-Agent": "hospital-outpatient",
        }
        status, _headers, content = self.transport("GET", url, headers, b"")
        if status != 200:
            raise GatewayError(f"WeChat Pay answered {status} to the bill download")
        return content

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and decrypt a payment notification; raise :class:`ForgedNotification` otherwise."""
        try:
            return self._parse_notification(lower_headers(headers), body)
        except ForgedNotification as refusal:
            logger.warning("wechatpay notification refused: %s", refusal.reason)
            raise

    def parse_refund_notification(self, *, headers: Mapping[str, str], body: bytes) -> RefundNotification:
        """Verify and decrypt a refund notification (REFUND.SUCCESS / ABNORMAL / CLOSED); raise
        :class:`ForgedNotification` otherwise, including for another merchant's refund."""
        try:
            envelope, refund = self._open(lower_headers(headers), body, original_type="refund")
            if refund.get("mchid") != self.config.mchid:
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
            channel=self.channel,
            order_no=str(refund.get("out_trade_no") or ""),
            refund_no=str(refund.get("out_refund_no") or ""),
            refund_id=str(refund.get("refund_id") or ""),
            state=state,
            refund_fen=refund_fen,
            total_fen=total_fen,
            merchant_id=str(refund["mchid"]),
            raw_id=str(envelope.get("id") or ""),
        )

    def _parse_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        envelope, transaction = self._open(headers, body, original_type="transaction")
        # 4. It must be about our merchant and app.
        if transaction.get("mchid") != self.config.mchid or transaction.get("appid") != self.config.appid:
            raise ForgedNotification("notification for another merchant or app")
        amount = transaction.get("amount") or {}
        paid = (
            envelope.get("event_type") == "TRANSACTION.SUCCESS"
            and transaction.get("trade_state") == "SUCCESS"
        )
        return Notification(
            channel=self.channel,
            order_no=str(transaction.get("out_trade_no") or ""),
            transaction_id=str(transaction.get("transaction_id") or ""),
            amount_fen=int(amount.get("total") or 0),
            paid=paid,
            paid_at=parse_rfc3339(transaction.get("success_time")),
            app_id=str(transaction["appid"]),
            merchant_id=str(transaction["mchid"]),
            raw_id=str(envelope.get("id") or ""),
        )

    def _open(
        self, headers: dict[str, str], body: bytes, *, original_type: str
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
        if serial != self.config.platform_public_key_id:
            raise ForgedNotification("unknown platform key serial")
        try:
            skew_s = abs(timezone.now().timestamp() - int(timestamp))
        except ValueError:
            raise ForgedNotification("malformed timestamp") from None
        if skew_s > MAX_CLOCK_SKEW_S:
            raise ForgedNotification("stale timestamp")
        # 2. The signature over the raw body.
        if not rsa_verify(
            self.config.platform_public_key, response_message(timestamp, nonce, body), signature
        ):
            raise ForgedNotification("bad signature")
        # 3. Decrypt the resource with the APIv3 key.
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ForgedNotification("unsupported resource algorithm")
            plain = aes_gcm_decrypt(
                self.config.apiv3_key,
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

    def success_response(self) -> HttpResponse:
        return HttpResponse(status=204)

    def failure_response(self) -> HttpResponse:
        return JsonResponse(
            {"code": "FAIL", "message": "失败"}, status=400, json_dumps_params={"ensure_ascii": False}
        )
