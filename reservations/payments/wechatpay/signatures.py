"""WeChat Pay API v3 signatures: the request message and ``Authorization`` header, the platform's answer
and notification message, JSAPI ``paySign``, and the time format. Checked against WeChat Pay's published
examples in tests/reservations/test_payment_vectors.py."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from reservations.payments.base import rsa_sign

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
PROBE_SIGNATURE_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_CLOCK_SKEW_S = 300
# The providers' protocol zone (China Standard Time), fixed by their formats, not the hospital's setting.
CHINA = ZoneInfo("Asia/Shanghai")


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
