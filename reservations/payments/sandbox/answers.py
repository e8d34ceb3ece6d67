"""The sandbox gateway's signed answers and its check of our signatures, as each provider answers: shared by
its API views (``views``, ``wechat``) and its bill endpoints (``bills``)."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from reservations.payments import keys
from reservations.payments.alipay.signatures import response_node, sign_content
from reservations.payments.base import rsa_sign, rsa_verify
from reservations.payments.sandbox import gateway as sandbox
from reservations.payments.wechatpay.signatures import (
    MAX_CLOCK_SKEW_S,
    parse_authorization,
    request_message,
    response_message,
)

logger = logging.getLogger(__name__)


def wechat_answer(status: int, payload: dict[str, Any] | None = None) -> HttpResponse:
    """An answer signed with the platform key, as WeChat Pay signs every answer."""
    config = keys.wechatpay_config()
    assert config.platform_private_key is not None  # noqa: S101 (sandbox keys always have it)
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    response = HttpResponse(body, status=status, content_type="application/json")
    timestamp, nonce = str(int(timezone.now().timestamp())), secrets.token_hex(16).upper()
    response["Wechatpay-Timestamp"] = timestamp
    response["Wechatpay-Nonce"] = nonce
    response["Wechatpay-Serial"] = config.platform_public_key_id
    response["Wechatpay-Signature"] = rsa_sign(
        config.platform_private_key, response_message(timestamp, nonce, body)
    )
    response["Request-ID"] = secrets.token_hex(16)
    return response


def wechat_error(status: int, code: str, message: str) -> HttpResponse:
    return wechat_answer(status, {"code": code, "message": message})


def wechat_refusal(request: HttpRequest, order_no: str | None = None) -> HttpResponse | None:
    """401 SIGN_ERROR unless the request carries a valid merchant signature (and 500 when the
    ``unavailable`` switch is on); None when the request may proceed."""
    if sandbox.faults_for(order_no)["unavailable"]:
        return wechat_error(500, "SYSTEM_ERROR", "系统异常，请稍后重试 (sandbox: unavailable)")
    config = keys.wechatpay_config()
    assert config.merchant_public_key is not None  # noqa: S101
    fields = parse_authorization(request.headers.get("Authorization", ""))
    ok = (
        fields is not None
        and fields.get("mchid") == config.mchid
        and fields.get("serial_no") == config.merchant_serial
        and fields.get("timestamp", "").isdigit()
        and abs(timezone.now().timestamp() - int(fields["timestamp"])) <= MAX_CLOCK_SKEW_S
        and rsa_verify(
            config.merchant_public_key,
            request_message(
                request.method or "GET",
                request.get_full_path(),
                fields["timestamp"],
                fields.get("nonce_str", ""),
                request.body.decode("utf-8", "replace"),
            ),
            fields.get("signature", ""),
        )
    )
    if not ok:
        logger.warning("sandbox wechatpay refused a request with a bad signature")
        return wechat_error(401, "SIGN_ERROR", "签名错误")
    return None


def json_body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        data = json.loads(request.body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def alipay_answer(method: str, payload: dict[str, Any]) -> HttpResponse:
    """``{"<method>_response": {...}, "sign": "..."}`` signed over the response value's exact text."""
    config = keys.alipay_config()
    assert config.alipay_private_key is not None  # noqa: S101
    content = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    sign = rsa_sign(config.alipay_private_key, content.encode())
    text = f'{{"{response_node(method)}":{content},"sign":"{sign}"}}'
    return HttpResponse(text.encode(), content_type="application/json;charset=utf-8")


def alipay_fail(method: str, code: str, msg: str, sub_code: str, sub_msg: str, **extra: Any) -> HttpResponse:
    return alipay_answer(
        method, {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, **extra}
    )


def alipay_signed_by_us(params: dict[str, str]) -> bool:
    config = keys.alipay_config()
    assert config.app_public_key is not None  # noqa: S101
    return (
        params.get("app_id") == config.app_id
        and params.get("sign_type") == "RSA2"
        and rsa_verify(config.app_public_key, sign_content(params).encode(), params.get("sign", ""))
    )
