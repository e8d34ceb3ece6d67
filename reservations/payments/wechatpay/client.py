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

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from django.http import HttpResponse, JsonResponse

from reservations.payments.base import (
    BillRejected,
    BillRow,
    Channel,
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
    rsa_verify,
    urllib_transport,
)
from reservations.payments.keys import WechatPayConfig
from reservations.payments.wechatpay.bills import parse_wechatpay_tradebill
from reservations.payments.wechatpay.notifications import (
    REFUND_STATES,
    payment_notification_parse,
    refund_notification_parse,
)
from reservations.payments.wechatpay.signatures import (
    authorization_header,
    jsapi_params,
    parse_rfc3339,
    response_message,
    rfc3339,
)

logger = logging.getLogger(__name__)

TRADE_STATES = {
    "SUCCESS": GatewayOrderState.PAID,
    "REFUND": GatewayOrderState.REFUNDED,
    "NOTPAY": GatewayOrderState.NOTPAY,
    "USERPAYING": GatewayOrderState.NOTPAY,
    "CLOSED": GatewayOrderState.CLOSED,
    "REVOKED": GatewayOrderState.CLOSED,
    "PAYERROR": GatewayOrderState.CLOSED,
}
TRANSIENT_CODES = {"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANKERROR"}


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
        return payment_notification_parse(self.config, headers=headers, body=body)

    def parse_refund_notification(self, *, headers: Mapping[str, str], body: bytes) -> RefundNotification:
        """Verify and decrypt a refund notification; raise :class:`ForgedNotification` otherwise."""
        return refund_notification_parse(self.config, headers=headers, body=body)

    def success_response(self) -> HttpResponse:
        return HttpResponse(status=204)

    def failure_response(self) -> HttpResponse:
        return JsonResponse(
            {"code": "FAIL", "message": "失败"}, status=400, json_dumps_params={"ensure_ascii": False}
        )
