"""Alipay RSA2 signatures: the sorted ``k=v&…`` sign content of requests and notifications, the signed
``*_response`` text of answers, and Alipay's time format. Checked against Alipay's published examples in
tests/reservations/test_payment_vectors.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

# The providers' protocol zone (China Standard Time), fixed by their formats, not the hospital's setting.
CHINA = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def sign_content(
    params: Mapping[str, str], *, exclude: tuple[str, ...] = ("sign",), keep_empty: bool = False
) -> str:
    """The string an Alipay signature covers: parameters sorted by name, ``k=v`` joined with ``&``.

    Requests drop ``sign`` and empty values; notifications drop ``sign`` and ``sign_type``.

    >>> sign_content({"method": "alipay.trade.query", "app_id": "2014072300007148", "sign": "x", "empty": ""})
    'app_id=2014072300007148&method=alipay.trade.query'
    >>> sign_content({"b": "2", "a": "1", "sign_type": "RSA2", "sign": "x"}, exclude=("sign", "sign_type"))
    'a=1&b=2'
    """
    items = sorted((k, v) for k, v in params.items() if k not in exclude and (keep_empty or v != ""))
    return "&".join(f"{k}={v}" for k, v in items)


def china_time(moment: datetime) -> str:
    """Alipay's time format, in China time.

    >>> from datetime import UTC
    >>> china_time(datetime(2026, 7, 24, 3, 7, 50, tzinfo=UTC))
    '2026-07-24 11:07:50'
    """
    return moment.astimezone(CHINA).strftime(TIME_FORMAT)


def parse_china_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=CHINA)
    except ValueError:
        return None


def response_node(method: str) -> str:
    """``alipay.trade.query`` answers under ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response"


def split_signed_response(text: str, node: str) -> tuple[dict[str, Any], str, str]:
    """Return (the response object, its raw text as signed, the signature) from an Alipay answer.

    The signature covers the exact characters of the ``*_response`` value, so they are cut from the text
    rather than re-serialised.

    >>> split_signed_response('{"a_response":{"code":"10000","msg":"Success"},"sign":"c2ln"}', "a_response")
    ({'code': '10000', 'msg': 'Success'}, '{"code":"10000","msg":"Success"}', 'c2ln')
    """
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    key = f'"{node}"'
    at = text.find(key)
    if at < 0 or node not in document:
        raise ValueError(f"no {node} in the answer")
    start = text.index(":", at + len(key)) + 1
    while text[start] in " \t\r\n":
        start += 1
    value, end = json.JSONDecoder().raw_decode(text, start)
    return value, text[start:end], str(document.get("sign") or "")
