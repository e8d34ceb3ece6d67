"""The sandbox gateway's daily bills, in each provider's own file format (dev and tests only).

Rendered from the sandbox's order book (``sandbox.bill_lines``): WeChat Pay's backtick-prefixed UTF-8 CSV
announced with its SHA-1, Alipay's ZIP of GBK CSV files with ``#`` comment lines (formats described in
``bills``). As the providers do, a day's bill exists only once the day is over (China time). The
``bill_tampered`` switch serves a file that differs from what was announced: a changed amount under the
announced SHA-1 for WeChat Pay, a line the totals do not count for Alipay.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import zipfile
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from reservations.payments import keys
from reservations.payments.alipay.bills import ALIPAY_COLUMNS
from reservations.payments.base import Channel, fen_to_yuan
from reservations.payments.sandbox import gateway as sandbox
from reservations.payments.sandbox.answers import (
    alipay_answer,
    alipay_fail,
    wechat_answer,
    wechat_error,
    wechat_refusal,
)
from reservations.payments.wechatpay.bills import WECHATPAY_COLUMNS, WECHATPAY_SUMMARY_COLUMNS
from reservations.payments.wechatpay.signatures import CHINA

FILE_TIMEOUT_S = 300  # download links are short-lived (Alipay's last 30 s; WeChat's 5 min)
FEE_RATE = Decimal("0.006")  # 0.60 %, a common rate for these merchants; shown, not reconciled


def _fee_yuan(amount_fen: int, places: str) -> str:
    return str((Decimal(amount_fen) / 100 * FEE_RATE).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _bill_day(value: str) -> date | None:
    """A past day (China time) in YYYY-MM-DD, or None: today's bill does not exist yet."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if day < timezone.now().astimezone(CHINA).date() else None


def _stash(content: bytes) -> str:
    token = secrets.token_urlsafe(24)
    cache.set(f"{sandbox.PREFIX}:billfile:{token}", content, FILE_TIMEOUT_S)
    return token


def _stashed(request: HttpRequest) -> bytes | None:
    content: bytes | None = cache.get(f"{sandbox.PREFIX}:billfile:{request.GET.get('token', '')}")
    return content


def _local(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


# --- WeChat Pay -----------------------------------------------------------------------------------------


def wechatpay_tradebill_csv(day: date) -> bytes:
    """The ``ALL`` trade bill of a day: header, one line per payment and refund, summary header and line."""
    config = keys.wechatpay_config()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(WECHATPAY_COLUMNS)
    settled_fen = refunded_fen = fee_fen_e5 = total_fen = 0
    lines = [line for line in sandbox.bill_lines(day) if line["order"]["channel"] == Channel.WECHATPAY]
    for line in lines:
        order, refund = line["order"], line["refund"]
        amount_fen = order["amount_fen"]
        fee = _fee_yuan(amount_fen if refund is None else refund["amount_fen"], "0.00001")
        values = {name: "" for name in WECHATPAY_COLUMNS}
        values.update(
            {
                "交易时间": _local(line["at"]),
                "公众账号ID": config.appid,
                "商户号": config.mchid,
                "特约商户号": "0",
                "微信订单号": order["transaction_id"],
                "商户订单号": order["order_no"],
                "用户标识": "sandbox-openid",
                "交易类型": "MWEB",
                "付款银行": "OTHERS",
                "货币种类": "CNY",
                "代金券金额": "0.00",
                "充值券退款金额": "0.00",
                "商品名称": order["description"],
                "费率": "0.60%",
                "订单金额": fen_to_yuan(amount_fen),
            }
        )
        if refund is None:
            values.update(
                {
                    "交易状态": "SUCCESS",
                    "应结订单金额": fen_to_yuan(amount_fen),
                    "微信退款单号": "0",
                    "商户退款单号": "0",
                    "退款金额": "0.00",
                    "手续费": fee,
                    "申请退款金额": "0.00",
                }
            )
            settled_fen += amount_fen
            total_fen += amount_fen
        else:
            values.update(
                {
                    "交易状态": "REFUND",
                    "应结订单金额": "0.00",
                    "微信退款单号": refund["refund_id"],
                    "商户退款单号": refund["refund_no"],
                    "退款金额": fen_to_yuan(refund["amount_fen"]),
                    "退款类型": "ORIGINAL",
                    "退款状态": "SUCCESS",
                    "手续费": f"-{fee}",
                    "申请退款金额": fen_to_yuan(refund["amount_fen"]),
                }
            )
            refunded_fen += refund["amount_fen"]
        fee_fen_e5 += int(Decimal(values["手续费"]) * 100_000)
        writer.writerow([f"`{values[name]}" for name in WECHATPAY_COLUMNS])
    writer.writerow(WECHATPAY_SUMMARY_COLUMNS)
    writer.writerow(
        [
            f"`{len(lines)}",
            f"`{fen_to_yuan(settled_fen)}",
            f"`{fen_to_yuan(refunded_fen)}",
            "`0.00",
            f"`{Decimal(fee_fen_e5) / 100_000:.5f}",
            f"`{fen_to_yuan(total_fen)}",
            f"`{fen_to_yuan(refunded_fen)}",
        ]
    )
    return out.getvalue().encode("utf-8")


def _tampered_wechat(content: bytes) -> bytes:
    """The same file with the first line's order amount raised by 100 yuan."""
    text = content.decode("utf-8")
    head, first, rest = text.split("\r\n", 2)
    fields = next(csv.reader([first]))
    at = WECHATPAY_COLUMNS.index("订单金额")
    fields[at] = f"`{Decimal(fields[at].lstrip('`')) + 100:.2f}"
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return f"{head}\r\n{out.getvalue()}\r\n{rest}".encode()


@csrf_exempt
@require_GET
def wechatpay_tradebill(request: HttpRequest) -> HttpResponse:
    """``GET /v3/bill/tradebill?bill_date=&bill_type=ALL`` → ``{hash_type, hash_value, download_url}``."""
    refusal = wechat_refusal(request)
    if refusal:
        return refusal
    if request.GET.get("bill_type", "ALL") != "ALL":
        return wechat_error(400, "PARAM_ERROR", "sandbox: only bill_type=ALL")
    day = _bill_day(request.GET.get("bill_date", ""))
    if day is None:
        return wechat_error(400, "STATEMENT_CREATING", "账单生成中")
    if not any(line["order"]["channel"] == Channel.WECHATPAY for line in sandbox.bill_lines(day)):
        return wechat_error(400, "NO_STATEMENT_EXIST", "账单不存在")
    content = wechatpay_tradebill_csv(day)
    digest = hashlib.sha1(content).hexdigest()  # noqa: S324 (the provider's choice of hash)
    if sandbox.faults_for(None)["bill_tampered"]:
        content = _tampered_wechat(content)
    base = keys.wechatpay_config().api_base
    return wechat_answer(
        200,
        {
            "hash_type": "SHA1",
            "hash_value": digest,
            "download_url": f"{base}/v3/billdownload/file?token={_stash(content)}",
        },
    )


@csrf_exempt
@require_GET
def wechatpay_bill_download(request: HttpRequest) -> HttpResponse:
    """``GET /v3/billdownload/file?token=``: the file itself (a signed request; the answer is unsigned)."""
    refusal = wechat_refusal(request)
    if refusal:
        return refusal
    content = _stashed(request)
    if content is None:
        return wechat_error(400, "INVALID_REQUEST", "下载链接已过期")
    return HttpResponse(content, content_type="application/octet-stream")


# --- Alipay ---------------------------------------------------------------------------------------------


def _alipay_account() -> str:
    return f"{keys.alipay_config().seller_id}0156"


def _alipay_head(day: date, title: str, table: str) -> list[str]:
    following = day + timedelta(days=1)
    return [
        f"#支付宝{title}查询",
        f"#账号：[{_alipay_account()}]",
        f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{following:%Y年%m月%d日} 00:00:00]",
        f"#-----------------------------------------{table}列表----------------------------------------",
    ]


def _alipay_tail(table: str) -> list[str]:
    return [f"#-----------------------------------------{table}列表结束------------------------------------"]


def _row(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([f"{value}\t" for value in fields])
    return out.getvalue()


def alipay_bill_zip(day: date, *, tampered: bool = False) -> bytes:
    """The ``trade`` bill ZIP of a day: 业务明细 and 业务明细(汇总), GBK, with Alipay's comment lines."""
    lines = [line for line in sandbox.bill_lines(day) if line["order"]["channel"] == Channel.ALIPAY]
    detail = [*_alipay_head(day, "业务明细", "业务明细"), ",".join(ALIPAY_COLUMNS)]
    payments = refunds = received_fen = 0
    for line in lines:
        order, refund = line["order"], line["refund"]
        values = dict.fromkeys(ALIPAY_COLUMNS, "0.00")
        values.update(
            {
                "支付宝交易号": order["transaction_id"],
                "商户订单号": order["order_no"],
                "业务类型": "交易" if refund is None else "退款",
                "商品名称": order["description"],
                "创建时间": _local(order["created_at"]),
                "完成时间": _local(line["at"]),
                "门店编号": "",
                "门店名称": "",
                "操作员": "",
                "终端号": "",
                "对方账户": "san***@sandbox.example",
                "订单金额（元）": fen_to_yuan(order["amount_fen"]),
                "券名称": "",
                "退款批次号/请求号": "" if refund is None else refund["refund_no"],
                "备注": "",
            }
        )
        if refund is None:
            payments += 1
            received_fen += order["amount_fen"]
            values["商家实收（元）"] = fen_to_yuan(order["amount_fen"])
            values["服务费（元）"] = f"-{_fee_yuan(order['amount_fen'], '0.01')}"
        else:
            refunds += 1
            received_fen -= refund["amount_fen"]
            values["商家实收（元）"] = f"-{fen_to_yuan(refund['amount_fen'])}"
            values["服务费（元）"] = _fee_yuan(refund["amount_fen"], "0.01")
        detail.append(_row([values[name] for name in ALIPAY_COLUMNS]))
    if tampered and len(detail) > 5:
        detail.append(detail[-1])  # a line the totals below do not count
    exported = f"#导出时间：[{timezone.now().astimezone(CHINA):%Y年%m月%d日 %H:%M:%S}]"
    detail += [*_alipay_tail("业务明细"), f"#交易合计：{payments}笔，退款合计：{refunds}笔", exported]
    summary = [
        *_alipay_head(day, "业务汇总", "业务汇总"),
        "门店编号,门店名称,交易订单总笔数,退款订单总笔数,商家实收（元）",
        _row(["", "合计", str(payments), str(refunds), f"{Decimal(received_fen) / 100:.2f}"]),
        *_alipay_tail("业务汇总"),
        exported,
    ]
    stem = f"{_alipay_account()}_{day:%Y%m%d}"
    buffer = io.BytesIO()
    # Alipay names the members in GBK; Python's zipfile can only write UTF-8 names (flagged as such), and
    # ``bills`` reads both.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}_业务明细.csv", "\r\n".join(detail).encode("gbk"))
        archive.writestr(f"{stem}_业务明细(汇总).csv", "\r\n".join(summary).encode("gbk"))
    return buffer.getvalue()


def alipay_bill_url(method: str, biz: dict[str, Any]) -> HttpResponse:
    """``alipay.data.dataservice.bill.downloadurl.query`` (already signature-checked by the gateway)."""
    if biz.get("bill_type") != "trade":
        return alipay_fail(method, "40004", "Business Failed", "isv.invalid-bill-type", "账单类型不支持")
    day = _bill_day(str(biz.get("bill_date", "")))
    if day is None:
        return alipay_fail(method, "40004", "Business Failed", "isp.bill_not_exist", "账单不存在")
    content = alipay_bill_zip(day, tampered=bool(sandbox.faults_for(None)["bill_tampered"]))
    base = keys.alipay_config().gateway_url.rsplit("/", 1)[0]
    return alipay_answer(
        method,
        {
            "code": "10000",
            "msg": "Success",
            "bill_download_url": f"{base}/billdownload?token={_stash(content)}&downloadFileType=csv.zip",
        },
    )


@require_GET
def alipay_bill_download(request: HttpRequest) -> HttpResponse:
    """The unsigned, short-lived download link of an Alipay bill."""
    content = _stashed(request)
    if content is None:
        return HttpResponse("token expired", status=404, content_type="text/plain")
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{_alipay_account()}.csv.zip"'
    return response
