"""Alipay open-platform adapter (RSA2, mobile-web payment), signatures implemented with ``cryptography``.

Protocol facts used here, checked against the official SDK (alipay/alipay-sdk-python-all,
``DefaultAlipayClient`` and ``SignatureUtils``) and the open-platform docs (opendocs.alipay.com):

- Request: common parameters ``app_id, method, format=JSON, charset=utf-8, sign_type=RSA2, timestamp
  ("yyyy-MM-dd HH:mm:ss", China time), version=1.0`` plus ``notify_url``/``return_url`` where they apply
  and ``biz_content`` (JSON). The sign content is every parameter except ``sign`` (``sign_type`` is
  included on requests), empty ones dropped, sorted by name, joined ``k=v`` with ``&``, signed
  SHA256withRSA with the app private key, base64. API calls POST to the gateway with the common parameters
  in the query string and ``biz_content`` in the form body; the wap payment is a page the patient's browser
  opens (GET on the gateway with every parameter).
- Answer: ``{"alipay_trade_query_response": {...}, "sign": "..."}``; the signature covers the raw text of
  the ``*_response`` value exactly as sent; ``code`` 10000 is success, 20000 service unavailable, 40004
  business failure with ``sub_code`` (ACQ.TRADE_NOT_EXIST, ACQ.TRADE_STATUS_ERROR, ...).
- ``trade_status``: WAIT_BUYER_PAY, TRADE_CLOSED (unpaid and closed, or fully refunded), TRADE_SUCCESS,
  TRADE_FINISHED; only the last two mean paid. Refunds repeat safely with the same ``out_request_no``
  (answered with ``fund_change`` N).
- Refund query: ``alipay.trade.fastpay.refund.query`` with ``out_trade_no`` and ``out_request_no``;
  ``refund_status`` REFUND_SUCCESS means refunded, and an answer without it means Alipay did not receive
  the refund or it did not succeed (so the idempotent refund call is repeated). A refund is settled by the
  synchronous answer of ``alipay.trade.refund``: Alipay sends no separate refund notification (at most a
  ``trade_status_sync`` about the trade, which our payment notify view takes as "not a payment"). Neither
  fact is in reference/booking.md; both are from the open-platform API pages of the two methods
  (unverified here), so the follow-up task asks rather than waits.
- Bill: ``alipay.data.dataservice.bill.downloadurl.query`` (``bill_type`` trade, ``bill_date``
  YYYY-MM-DD) → ``bill_download_url``, a short-lived unsigned link to a ZIP of GBK CSV files (see
  ``bills``). A day not yet available answers ``isp.bill_not_exist``.
- Notification (reference booking.md §5.2): form-encoded POST; drop ``sign`` and ``sign_type``, sort the
  rest, join ``k=v`` with ``&`` and verify RSA2 with the Alipay public key; then check ``app_id`` and
  ``seller_id``; answer exactly ``success`` (7 characters), otherwise Alipay retries (4m 10m 10m 1h 2h 6h
  15h).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from django.utils import timezone

from reservations.payments.alipay.bills import parse_alipay_bill_zip
from reservations.payments.alipay.notifications import payment_notification_parse
from reservations.payments.alipay.signatures import (
    china_time,
    parse_china_time,
    response_node,
    sign_content,
    split_signed_response,
)
from reservations.payments.base import (
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
    fen_to_yuan,
    rsa_sign,
    rsa_verify,
    urllib_transport,
    yuan_to_fen,
)
from reservations.payments.keys import AlipayConfig

logger = logging.getLogger(__name__)

TRADE_STATES = {
    "WAIT_BUYER_PAY": GatewayOrderState.NOTPAY,
    "TRADE_SUCCESS": GatewayOrderState.PAID,
    "TRADE_FINISHED": GatewayOrderState.PAID,
    # Alipay reports a fully refunded trade as closed, like an unpaid one that was closed.
    "TRADE_CLOSED": GatewayOrderState.CLOSED,
}


class AlipayGateway:
    """Alipay for a merchant app: wap (mobile-web) payment, query, close, refund and notifications."""

    channel = Channel.ALIPAY.value

    def __init__(self, config: AlipayConfig, transport: Transport | None = None) -> None:
        self.config = config
        self.transport = transport or urllib_transport

    def signed_params(self, method: str, biz_content: dict[str, Any], **extra: str) -> dict[str, str]:
        """The common parameters, ``biz_content`` and ``sign`` for one call."""
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": china_time(timezone.now()),
            "version": "1.0",
            "biz_content": json.dumps(biz_content, ensure_ascii=False, separators=(",", ":")),
            **{k: v for k, v in extra.items() if v},
        }
        params["sign"] = rsa_sign(self.config.app_private_key, sign_content(params).encode())
        return params

    def _call(self, method: str, biz_content: dict[str, Any]) -> dict[str, Any]:
        """POST one API call and return its verified ``*_response`` object (any ``code``)."""
        params = self.signed_params(method, biz_content)
        body = urlencode({"biz_content": params.pop("biz_content")}).encode()
        url = f"{self.config.gateway_url}?{urlencode(params)}"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
            "Accept": "application/json",
        }
        status, _headers, answer = self.transport("POST", url, headers, body)
        if status != 200:
            raise GatewayError(f"Alipay answered HTTP {status} to {method}")
        node = response_node(method)
        try:
            response, raw, signature = split_signed_response(answer.decode("utf-8"), node)
        except (ValueError, UnicodeDecodeError):
            try:
                response, raw, signature = split_signed_response(answer.decode("utf-8"), "error_response")
            except (ValueError, UnicodeDecodeError):
                raise GatewayError(f"Alipay answered {method} with an unreadable body") from None
        code = str(response.get("code", ""))
        if code == "20000":
            raise GatewayError(f"Alipay service unavailable: {response.get('sub_code', '')}")
        # Every answer we act on (success or a business code we interpret) must carry Alipay's signature.
        if code in {"10000", "40004"}:
            if not signature or not rsa_verify(self.config.alipay_public_key, raw.encode(), signature):
                logger.warning(
                    "alipay answer with a missing or invalid signature refused", extra={"method": method}
                )
                raise GatewayError(f"Alipay answer to {method} failed signature verification")
            if str(response.get("sub_code", "")).endswith("SYSTEM_ERROR"):
                raise GatewayError(f"Alipay: {response.get('sub_code')}")
            return response
        raise GatewayRejected(
            str(response.get("sub_code") or code), str(response.get("sub_msg") or response.get("msg") or "")
        )

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
        payer_client_ip: str = "",
    ) -> PaymentIntent:
        """Build the signed ``alipay.trade.wap.pay`` page URL. Alipay creates the trade when the patient
        opens it; ``time_expire`` (absolute) makes it refuse payment after ``expires_at``."""
        biz = {
            "out_trade_no": order_no,
            "total_amount": fen_to_yuan(amount_fen),
            "subject": description[:256],
            "product_code": "QUICK_WAP_WAY",
            "time_expire": china_time(expires_at),
        }
        params = self.signed_params("alipay.trade.wap.pay", biz, notify_url=notify_url, return_url=return_url)
        return PaymentIntent(
            channel=self.channel, order_no=order_no, pay_url=f"{self.config.gateway_url}?{urlencode(params)}"
        )

    def query(self, *, order_no: str) -> GatewayOrder:
        response = self._call("alipay.trade.query", {"out_trade_no": order_no})
        if response.get("code") != "10000":
            if response.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return GatewayOrder(order_no, GatewayOrderState.UNKNOWN, 0, "", None)
            raise GatewayRejected(str(response.get("sub_code")), str(response.get("sub_msg", "")))
        if response.get("out_trade_no") != order_no:
            raise GatewayError("Alipay answered about another order")
        return GatewayOrder(
            order_no=order_no,
            state=TRADE_STATES.get(str(response.get("trade_status")), GatewayOrderState.UNKNOWN),
            amount_fen=yuan_to_fen(str(response.get("total_amount") or "0")),
            transaction_id=str(response.get("trade_no") or ""),
            paid_at=parse_china_time(response.get("send_pay_date")),
        )

    def close(self, *, order_no: str) -> None:
        """Close an unpaid trade. Unknown to Alipay (never opened) or already closed is fine; already paid
        raises :class:`OrderPaid`."""
        response = self._call("alipay.trade.close", {"out_trade_no": order_no})
        if response.get("code") == "10000" or response.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return
        if response.get("sub_code") == "ACQ.TRADE_STATUS_ERROR":
            # Alipay gives one code for "already closed" and "already paid": ask which.
            if self.query(order_no=order_no).state == GatewayOrderState.PAID:
                raise OrderPaid("ACQ.TRADE_STATUS_ERROR", "the trade is already paid")
            return
        raise GatewayRejected(str(response.get("sub_code")), str(response.get("sub_msg", "")))

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
        """Refund ``amount_fen``; idempotent by ``refund_no`` (Alipay's ``out_request_no``). Alipay settles
        refunds synchronously: success or a business refusal (``state="failed"``). ``notify_url`` is
        ignored: Alipay has no refund notification (see the module docstring)."""
        biz = {
            "out_trade_no": order_no,
            "refund_amount": fen_to_yuan(amount_fen),
            "out_request_no": refund_no,
        }
        if reason:
            biz["refund_reason"] = reason[:256]
        response = self._call("alipay.trade.refund", biz)
        if response.get("code") == "10000":
            return RefundResult(refund_no=refund_no, state="success", amount_fen=amount_fen)
        logger.warning(
            "alipay refund refused", extra={"refund_no": refund_no, "code": response.get("sub_code")}
        )
        return RefundResult(refund_no=refund_no, state="failed", amount_fen=amount_fen)

    def refund_query(self, *, order_no: str, refund_no: str) -> RefundResult:
        """The state of a refund: ``success``, or ``unknown`` when Alipay did not receive it or it did not
        succeed (repeat the refund call: it is idempotent by ``out_request_no``)."""
        response = self._call(
            "alipay.trade.fastpay.refund.query", {"out_trade_no": order_no, "out_request_no": refund_no}
        )
        if response.get("code") != "10000":
            if response.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return RefundResult(refund_no=refund_no, state="unknown", amount_fen=0)
            raise GatewayRejected(str(response.get("sub_code")), str(response.get("sub_msg", "")))
        if response.get("refund_status") != "REFUND_SUCCESS":
            return RefundResult(refund_no=refund_no, state="unknown", amount_fen=0)
        if response.get("out_request_no") != refund_no or response.get("out_trade_no") != order_no:
            raise GatewayError("Alipay answered about another refund")
        try:
            amount_fen = yuan_to_fen(str(response.get("refund_amount") or "0"))
        except ValueError:
            raise GatewayError("Alipay answered a malformed refund_amount") from None
        return RefundResult(refund_no=refund_no, state="success", amount_fen=amount_fen)

    def download_bill(self, *, day: date) -> list[BillRow]:
        """The day's trade bill (业务明细). :class:`GatewayError` while it is not available yet,
        :class:`BillRejected` when the ZIP or its CSV is unreadable or inconsistent."""
        response = self._call(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": day.isoformat()},
        )
        if response.get("code") != "10000" or not response.get("bill_download_url"):
            if response.get("sub_code") == "isp.bill_not_exist":
                raise GatewayError("Alipay: the bill is not available yet (isp.bill_not_exist)")
            raise GatewayRejected(str(response.get("sub_code")), str(response.get("sub_msg", "")))
        # An unsigned, short-lived link (no credentials travel with it); the ZIP's own totals are checked.
        status, _headers, content = self.transport("GET", str(response["bill_download_url"]), {}, b"")
        if status != 200:
            raise GatewayError(f"Alipay answered HTTP {status} to the bill download")
        return parse_alipay_bill_zip(content)

    def parse_refund_notification(self, *, headers: Mapping[str, str], body: bytes) -> RefundNotification:
        """Alipay sends no refund notifications: a refund's outcome is the refund call's own answer."""
        logger.warning("alipay refund notification refused: Alipay sends none")
        raise ForgedNotification("Alipay sends no refund notifications")

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify an asynchronous notification; raise :class:`ForgedNotification` otherwise."""
        return payment_notification_parse(self.config, body=body)

    def success_response(self) -> HttpResponse:
        return HttpResponse(b"success", content_type="text/plain")

    def failure_response(self) -> HttpResponse:
        return HttpResponse(b"fail", content_type="text/plain")
