"""HTTP endpoints of the sandbox gateway (dev and tests only): the providers' APIs and the cashier page.

The API endpoints speak the real protocols: they verify our signatures with our public keys and sign their
answers with the providers' keys (see ``wechatpay`` and ``alipay`` for the protocol facts). The state and
behaviour live in ``sandbox``.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reservations.payments import keys
from reservations.payments.alipay.signatures import china_time, parse_china_time, sign_content
from reservations.payments.base import (
    Channel,
    GatewayOrderState,
    fen_to_yuan,
    rsa_sign,
    yuan_to_fen,
)
from reservations.payments.sandbox import bills as sandbox_bills
from reservations.payments.sandbox import gateway as sandbox
from reservations.payments.sandbox.answers import (
    alipay_answer,
    alipay_fail,
    alipay_signed_by_us,
    json_body,
    wechat_answer,
    wechat_error,
    wechat_refusal,
)
from reservations.payments.wechatpay.signatures import (
    parse_rfc3339,
    rfc3339,
)

logger = logging.getLogger(__name__)

WECHAT_TRADE_STATES = {"notpay": "NOTPAY", "paid": "SUCCESS", "closed": "CLOSED", "refunded": "REFUND"}
ALIPAY_TRADE_STATES = {
    "notpay": "WAIT_BUYER_PAY",
    "paid": "TRADE_SUCCESS",
    "closed": "TRADE_CLOSED",
    "refunded": "TRADE_CLOSED",
}


def cashier_url(channel: str, order_no: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("sandbox_gateway:cashier", args=(channel, order_no))


# --- WeChat Pay v3 ----------------------------------------------------------------------------------------


@csrf_exempt
@require_POST
def wechatpay_h5(request: HttpRequest) -> HttpResponse:
    """``POST /v3/pay/transactions/h5``: open an order, answer the cashier's URL as ``h5_url``."""
    data = json_body(request)
    order_no = str((data or {}).get("out_trade_no", ""))
    refusal = wechat_refusal(request, order_no)
    if refusal:
        return refusal
    config = keys.wechatpay_config()
    if data is None or not order_no or not isinstance((data.get("amount") or {}).get("total"), int):
        return wechat_error(400, "PARAM_ERROR", "参数错误")
    if data.get("mchid") != config.mchid or data.get("appid") != config.appid:
        return wechat_error(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
    outcome, _order = sandbox.order_create(
        channel=Channel.WECHATPAY,
        order_no=order_no,
        amount_fen=data["amount"]["total"],
        description=str(data.get("description", "")),
        notify_url=str(data.get("notify_url", "")),
        return_url="",
        expires_at=parse_rfc3339(data.get("time_expire")),
    )
    if outcome == "used":
        return wechat_error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
    prepay_id = "wx" + secrets.token_hex(16)
    return wechat_answer(200, {"h5_url": f"{cashier_url(Channel.WECHATPAY, order_no)}?prepay_id={prepay_id}"})


@csrf_exempt
@require_GET
def wechatpay_order(request: HttpRequest, order_no: str) -> HttpResponse:
    """``GET /v3/pay/transactions/out-trade-no/{no}?mchid=``."""
    refusal = wechat_refusal(request, order_no)
    if refusal:
        return refusal
    config = keys.wechatpay_config()
    order = sandbox.order_get(order_no)
    if request.GET.get("mchid") != config.mchid or order is None or order["channel"] != Channel.WECHATPAY:
        return wechat_error(404, "ORDER_NOT_EXIST", "订单不存在")
    payload: dict[str, Any] = {
        "appid": config.appid,
        "mchid": config.mchid,
        "out_trade_no": order_no,
        "trade_state": WECHAT_TRADE_STATES[order["state"]],
        "trade_state_desc": order["state"],
        "amount": {"total": order["amount_fen"], "currency": "CNY"},
    }
    if order["paid_at"]:
        payload.update(
            transaction_id=order["transaction_id"],
            trade_type="MWEB",
            bank_type="OTHERS",
            success_time=rfc3339(datetime.fromisoformat(order["paid_at"])),
            payer={"openid": "sandbox-openid"},
        )
        payload["amount"].update(payer_total=order["amount_fen"], payer_currency="CNY")
    return wechat_answer(200, payload)


@csrf_exempt
@require_POST
def wechatpay_close(request: HttpRequest, order_no: str) -> HttpResponse:
    """``POST /v3/pay/transactions/out-trade-no/{no}/close`` → 204."""
    refusal = wechat_refusal(request, order_no)
    if refusal:
        return refusal
    if (json_body(request) or {}).get("mchid") != keys.wechatpay_config().mchid:
        return wechat_error(400, "PARAM_ERROR", "参数错误")
    outcome = sandbox.order_close(order_no)
    if outcome == "not_found":
        return wechat_error(404, "ORDER_NOT_EXIST", "订单不存在")
    if outcome == "paid":
        return wechat_error(400, "ORDERPAID", "订单已支付")
    if outcome == "already_closed":
        return wechat_error(400, "ORDER_CLOSED", "订单已关闭")
    return wechat_answer(204)


@csrf_exempt
@require_POST
def wechatpay_refund(request: HttpRequest) -> HttpResponse:
    """``POST /v3/refund/domestic/refunds``: one refund per ``out_refund_no``."""
    data = json_body(request) or {}
    order_no = str(data.get("out_trade_no", ""))
    refusal = wechat_refusal(request, order_no)
    if refusal:
        return refusal
    amount = data.get("amount") or {}
    if not (order_no and data.get("out_refund_no") and isinstance(amount.get("refund"), int)):
        return wechat_error(400, "PARAM_ERROR", "参数错误")
    outcome, refund, order = sandbox.order_refund(
        order_no=order_no,
        refund_no=str(data["out_refund_no"]),
        amount_fen=amount["refund"],
        total_fen=amount.get("total"),
        notify_url=str(data.get("notify_url") or ""),
    )
    if outcome == "not_found":
        return wechat_error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
    if refund is None or order is None:
        message = {
            "not_paid": "订单未支付",
            "total_mismatch": "订单金额不一致",
            "exceeds": "退款金额超过可退金额",
        }
        return wechat_error(400, "INVALID_REQUEST", message.get(outcome, outcome))
    return wechat_answer(200, _wechat_refund_payload(order, refund))


@csrf_exempt
@require_GET
def wechatpay_refund_query(request: HttpRequest, refund_no: str) -> HttpResponse:
    """``GET /v3/refund/domestic/refunds/{out_refund_no}``: the refund as the refund call answers it."""
    refusal = wechat_refusal(request, sandbox.refund_order_no(refund_no))
    if refusal:
        return refusal
    refund, order = sandbox.refund_get(refund_no)
    if refund is None or order is None or order["channel"] != Channel.WECHATPAY:
        return wechat_error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return wechat_answer(200, _wechat_refund_payload(order, refund))


def _wechat_refund_payload(order: dict[str, Any], refund: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "refund_id": refund["refund_id"],
        "out_refund_no": refund["refund_no"],
        "transaction_id": order["transaction_id"],
        "out_trade_no": order["order_no"],
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": rfc3339(datetime.fromisoformat(refund["created_at"])),
        "status": refund["status"],
        "amount": {
            "total": order["amount_fen"],
            "refund": refund["amount_fen"],
            "payer_total": order["amount_fen"],
            "payer_refund": refund["amount_fen"],
            "currency": "CNY",
        },
    }
    if refund["success_time"]:
        payload["success_time"] = rfc3339(datetime.fromisoformat(refund["success_time"]))
    return payload


# --- Alipay -----------------------------------------------------------------------------------------------


@csrf_exempt
@require_http_methods(["GET", "POST"])
def alipay_gateway(request: HttpRequest) -> HttpResponse:
    """The gateway: ``alipay.trade.wap.pay`` (a page: redirect to the cashier), ``alipay.trade.query``,
    ``alipay.trade.close`` and ``alipay.trade.refund`` (signed JSON answers)."""
    params = {**request.GET.dict(), **request.POST.dict()}
    method = params.get("method", "")
    try:
        biz: dict[str, Any] = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        biz = {}
    order_no = str(biz.get("out_trade_no", ""))
    if method == "alipay.trade.wap.pay":
        return _alipay_wap_pay(params, biz, order_no)
    if method not in ALIPAY_API_METHODS:
        return alipay_fail(
            method or "error", "40004", "Business Failed", "isv.invalid-method", "不存在的方法名"
        )
    if sandbox.faults_for(order_no)["unavailable"]:
        return alipay_fail(method, "20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
    if not alipay_signed_by_us(params):
        logger.warning("sandbox alipay refused a request with a bad signature")
        return alipay_fail(method, "40002", "Invalid Arguments", "isv.invalid-signature", "验签出错")
    if method == "alipay.trade.query":
        return _alipay_query(method, order_no)
    if method == "alipay.trade.fastpay.refund.query":
        return _alipay_refund_query(method, order_no, str(biz.get("out_request_no") or order_no))
    if method == "alipay.data.dataservice.bill.downloadurl.query":
        return sandbox_bills.alipay_bill_url(method, biz)
    if method == "alipay.trade.close":
        outcome = sandbox.order_close(order_no)
        if outcome == "closed":
            return alipay_answer(method, {"code": "10000", "msg": "Success", "out_trade_no": order_no})
        if outcome == "not_found":
            return alipay_fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
        return alipay_fail(method, "40004", "Business Failed", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    return _alipay_refund(method, order_no, biz)


ALIPAY_API_METHODS = {
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.data.dataservice.bill.downloadurl.query",
}


def _alipay_wap_pay(params: dict[str, str], biz: dict[str, Any], order_no: str) -> HttpResponse:
    if not alipay_signed_by_us(params):
        logger.warning("sandbox alipay refused a payment page with a bad signature")
        return HttpResponse(
            "isv.invalid-signature 验签出错", status=401, content_type="text/plain; charset=utf-8"
        )
    try:
        amount_fen = yuan_to_fen(str(biz.get("total_amount", "")))
    except ValueError:
        return HttpResponse("total_amount 参数错误", status=400, content_type="text/plain; charset=utf-8")
    outcome, order = sandbox.order_create(
        channel=Channel.ALIPAY,
        order_no=order_no,
        amount_fen=amount_fen,
        description=str(biz.get("subject", "")),
        notify_url=params.get("notify_url", ""),
        return_url=params.get("return_url", ""),
        expires_at=parse_china_time(biz.get("time_expire")),
    )
    if outcome == "used" or order is None:
        return HttpResponse(
            "ACQ.CONTEXT_INCONSISTENT 交易信息被篡改", status=400, content_type="text/plain; charset=utf-8"
        )
    return HttpResponseRedirect(cashier_url(Channel.ALIPAY, order_no))


def _alipay_query(method: str, order_no: str) -> HttpResponse:
    order = sandbox.order_get(order_no)
    if order is None or order["channel"] != Channel.ALIPAY:
        return alipay_fail(
            method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在", out_trade_no=order_no
        )
    payload = {
        "code": "10000",
        "msg": "Success",
        "trade_no": order["transaction_id"],
        "out_trade_no": order_no,
        "trade_status": ALIPAY_TRADE_STATES[order["state"]],
        "total_amount": fen_to_yuan(order["amount_fen"]),
    }
    if order["paid_at"]:
        paid_at = datetime.fromisoformat(order["paid_at"])
        payload.update(
            buyer_logon_id="san***@sandbox.example",
            buyer_pay_amount=fen_to_yuan(order["amount_fen"]),
            send_pay_date=china_time(paid_at),
        )
    return alipay_answer(method, payload)


def _alipay_refund(method: str, order_no: str, biz: dict[str, Any]) -> HttpResponse:
    refund_no = str(biz.get("out_request_no") or order_no)  # without one, Alipay treats it as a full refund
    try:
        amount_fen = yuan_to_fen(str(biz.get("refund_amount", "")))
    except ValueError:
        return alipay_fail(
            method, "40002", "Invalid Arguments", "isv.invalid-parameter", "refund_amount 无效"
        )
    outcome, refund, order = sandbox.order_refund(
        order_no=order_no, refund_no=refund_no, amount_fen=amount_fen, total_fen=None
    )
    if outcome == "not_found":
        return alipay_fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
    if refund is None or order is None:
        sub = "ACQ.REASON_TRADE_REFUND_FEE_ERR" if outcome == "exceeds" else "ACQ.TRADE_STATUS_ERROR"
        return alipay_fail(method, "40004", "Business Failed", sub, outcome, refund_fee="0.00")
    return alipay_answer(
        method,
        {
            "code": "10000",
            "msg": "Success",
            "trade_no": order["transaction_id"],
            "out_trade_no": order_no,
            "buyer_logon_id": "san***@sandbox.example",
            "fund_change": "Y" if outcome == "refunded" else "N",
            "refund_fee": fen_to_yuan(order["refunded_fen"]),
            "gmt_refund_pay": china_time(datetime.fromisoformat(refund["created_at"])),
        },
    )


def _alipay_refund_query(method: str, order_no: str, refund_no: str) -> HttpResponse:
    """``alipay.trade.fastpay.refund.query``: ``refund_status`` REFUND_SUCCESS only when refunded; an
    answer without it means Alipay did not receive the refund or it did not succeed."""
    order = sandbox.order_get(order_no)
    if order is None or order["channel"] != Channel.ALIPAY:
        return alipay_fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
    refund, _order = sandbox.refund_get(refund_no)
    payload: dict[str, Any] = {"code": "10000", "msg": "Success", "out_trade_no": order_no}
    if refund is not None and refund["status"] == "SUCCESS":
        payload.update(
            trade_no=order["transaction_id"],
            out_request_no=refund_no,
            total_amount=fen_to_yuan(order["amount_fen"]),
            refund_amount=fen_to_yuan(refund["amount_fen"]),
            refund_status="REFUND_SUCCESS",
            gmt_refund_pay=china_time(datetime.fromisoformat(refund["success_time"])),
        )
    return alipay_answer(method, payload)


# --- The cashier page -------------------------------------------------------------------------------------


def _return_target(request: HttpRequest, order: dict[str, Any], candidate: str) -> str | None:
    """Only back to our own site (the cashier must not become an open redirect)."""
    hosts = {request.get_host(), urlsplit(settings.PUBLIC_BASE_URL).netloc}
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts=hosts, require_https=False):
        if order["channel"] == Channel.ALIPAY and order["paid_at"]:
            return candidate + ("&" if "?" in candidate else "?") + _alipay_return_params(order)
        return candidate
    return None


def _alipay_return_params(order: dict[str, Any]) -> str:
    """The signed synchronous return parameters (never to be trusted for payment: the notification is)."""
    config = keys.alipay_config()
    assert config.alipay_private_key is not None  # noqa: S101
    params = {
        "app_id": config.app_id,
        "method": "alipay.trade.wap.pay.return",
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "timestamp": china_time(timezone.now()),
        "out_trade_no": order["order_no"],
        "trade_no": order["transaction_id"],
        "total_amount": fen_to_yuan(order["amount_fen"]),
        "seller_id": config.seller_id,
    }
    params["sign"] = rsa_sign(
        config.alipay_private_key, sign_content(params, exclude=("sign", "sign_type")).encode()
    )
    return urlencode(params)


def _faults_from_form(request: HttpRequest) -> dict[str, Any]:
    switches: dict[str, Any] = {
        name: request.POST.get(name) == "on"
        for name, default in sandbox.FAULT_DEFAULTS.items()
        if default is False
    }
    try:
        switches["delay_s"] = max(0.0, float(request.POST.get("delay_s") or 0))
    except ValueError:
        switches["delay_s"] = 0.0
    return switches


@require_http_methods(["GET", "POST"])
def cashier(request: HttpRequest, channel: str, order_no: str) -> HttpResponse:
    """The page the patient pays on: amount, Pay and Cancel, and the sandbox's fault switches for demos."""
    order = sandbox.order_get(order_no)
    if order is None or order["channel"] != channel:
        raise Http404("no such sandbox order")
    return_url = request.POST.get("redirect_url") or request.GET.get("redirect_url") or order["return_url"]
    message = ""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "pay":
            outcome = sandbox.cashier_pay(order_no)
            if outcome == "paid":
                order = sandbox.order_get(order_no) or order
                target = _return_target(request, order, return_url)
                if target:
                    return HttpResponseRedirect(target)
            message = {
                "paid": _("Paid."),
                "expired": _("This order can no longer be paid: its payment time is over."),
                "closed": _("This order was closed and can no longer be paid."),
                "already_paid": _("This order is already paid."),
            }.get(outcome, _("This order cannot be paid."))
        elif action == "cancel":
            target = _return_target(request, order, return_url)
            if target:
                return HttpResponseRedirect(target)
            message = _("Payment cancelled.")
        elif action == "options":
            scope = None if request.POST.get("scope") == "all" else order_no
            if scope is None and not _is_staff(request):
                # Global switches change every patient's payments on a shared training system (#14.14):
                # staff only. A patient may still set faults on the order in front of them.
                context = _cashier_context(request, order, channel, return_url)
                context["message"] = _("Only staff can change the options for all orders.")
                return render(request, "payment_sandbox/cashier.html", context, status=403)
            sandbox.faults_clear(scope)
            sandbox.faults_set(scope, **_faults_from_form(request))
            message = _("Sandbox options saved.")
        order = sandbox.order_get(order_no) or order
    context = _cashier_context(request, order, channel, return_url)
    context["message"] = message
    return render(request, "payment_sandbox/cashier.html", context)


def _is_staff(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_authenticated and getattr(user, "kind", "") == "staff")


def _cashier_context(
    request: HttpRequest, order: dict[str, Any], channel: str, return_url: str
) -> dict[str, Any]:
    order_no = order["order_no"]
    return {
        "order": order,
        "channel_name": _("WeChat Pay") if channel == Channel.WECHATPAY else _("Alipay"),
        "amount_yuan": fen_to_yuan(order["amount_fen"]),
        "payable": order["state"] == GatewayOrderState.NOTPAY and not sandbox.order_expired(order),
        "redirect_url": return_url,
        "faults": sandbox.faults_for(order_no),
        "is_wechatpay": channel == Channel.WECHATPAY,
        "can_set_global": _is_staff(request),
    }
