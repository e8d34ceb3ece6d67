"""Reading the providers' daily bills (对账单) into :class:`BillRow` lines, amounts in exact fen.

WeChat Pay v3 trade bill (``GET /v3/bill/tradebill?bill_date=…&bill_type=ALL`` → ``download_url``; the file
is checked against the answer's SHA-1 ``hash_value`` before it is read): UTF-8 CSV, a header line of
Chinese column names, one line per payment (交易状态 ``SUCCESS``) or refund (``REFUND``) of the day, every
field prefixed with a backtick so spreadsheets keep long numbers as text, then a summary header
(总交易单数, 应结订单总金额, 退款总金额, …) and one summary line. Amounts are yuan with two decimals.

Alipay trade bill (``alipay.data.dataservice.bill.downloadurl.query`` with ``bill_type=trade`` →
``bill_download_url``): a ZIP holding GBK CSV files, the 业务明细 detail and its 业务明细(汇总) summary.
Comment lines start with ``#`` (account, dates, the list's start and end, 交易合计/退款合计 counts); fields
are often padded with tabs; 业务类型 is 交易 for a payment and 退款 for a refund, whose 商家实收 is negative
and whose 退款批次号/请求号 is our ``out_request_no``.

Both readers check the bill's own counts against its lines and raise :class:`BillRejected` on any
inconsistency: a bill we cannot trust is never half-used.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from zoneinfo import ZoneInfo

from reservations.payments.base import BillRejected, BillRow, BillRowKind, yuan_to_fen

CHINA = ZoneInfo("Asia/Shanghai")

WECHATPAY_COLUMNS = (
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
)
WECHATPAY_SUMMARY_COLUMNS = (
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
)
ALIPAY_COLUMNS = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
)
ALIPAY_COUNTS = re.compile(r"交易合计[：:]\s*(\d+)\s*笔[，,]\s*退款合计[：:]\s*(\d+)\s*笔")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


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


def _china_time(value: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip(), TIME_FORMAT).replace(tzinfo=CHINA)
    except ValueError:
        return None


def _csv_lines(lines: list[str]) -> list[list[str]]:
    return list(csv.reader(lines))


# --- WeChat Pay ----------------------------------------------------------------------------------------


def parse_wechatpay_tradebill(content: bytes) -> list[BillRow]:
    """Read a WeChat Pay ``ALL`` trade bill (already checked against its SHA-1).

    >>> bill = (
    ...     "交易时间,微信订单号,商户订单号,交易状态,应结订单金额,"
    ...     "商户退款单号,退款金额,订单金额,申请退款金额\\n"
    ...     "`2026-11-27 09:30:00,`4200001,`BK1,`SUCCESS,`25.00,`0,`0.00,`25.00,`0.00\\n"
    ...     "`2026-11-27 10:00:00,`4200001,`BK1,`REFUND,`25.00,`RF1,`25.00,`25.00,`25.00\\n"
    ...     "总交易单数,应结订单总金额,退款总金额\\n`2,`25.00,`25.00\\n"
    ... ).encode()
    >>> [(r.kind.value, r.order_no, r.refund_no, r.amount_fen) for r in parse_wechatpay_tradebill(bill)]
    [('payment', 'BK1', '', 2500), ('refund', 'BK1', 'RF1', 2500)]
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillRejected("the WeChat Pay bill is not UTF-8") from None
    lines = [line for line in text.splitlines() if line.strip()]
    summary_at = next((i for i, line in enumerate(lines) if line.startswith("总交易单数")), None)
    if not lines or summary_at is None or summary_at + 1 >= len(lines):
        raise BillRejected("the WeChat Pay bill has no summary")
    header = [name.strip() for name in _csv_lines(lines[:1])[0]]
    needed = {"交易时间", "微信订单号", "商户订单号", "交易状态", "商户退款单号", "退款金额", "应结订单金额"}
    if not needed <= set(header):
        raise BillRejected("the WeChat Pay bill lacks expected columns")
    summary = dict(
        zip(
            (name.strip() for name in _csv_lines(lines[summary_at : summary_at + 1])[0]),
            (value.strip().lstrip("`") for value in _csv_lines(lines[summary_at + 1 : summary_at + 2])[0]),
            strict=False,
        )
    )
    rows: list[BillRow] = []
    for fields in _csv_lines(lines[1:summary_at]):
        if len(fields) != len(header):
            raise BillRejected("a WeChat Pay bill line has the wrong number of fields")
        line = {name: value.strip().lstrip("`").strip() for name, value in zip(header, fields, strict=True)}
        state = line["交易状态"]
        if state == "SUCCESS":
            rows.append(
                BillRow(
                    kind=BillRowKind.PAYMENT,
                    order_no=line["商户订单号"],
                    transaction_id=line["微信订单号"],
                    amount_fen=bill_fen(line.get("订单金额") or line["应结订单金额"]),
                    occurred_at=_china_time(line["交易时间"]),
                )
            )
        elif state == "REFUND":
            rows.append(
                BillRow(
                    kind=BillRowKind.REFUND,
                    order_no=line["商户订单号"],
                    transaction_id=line["微信订单号"],
                    amount_fen=bill_fen(line.get("申请退款金额") or line["退款金额"]),
                    refund_no=line["商户退款单号"],
                    occurred_at=_china_time(line["交易时间"]),
                )
            )
        else:
            raise BillRejected(f"unexpected trade state in the WeChat Pay bill: {state[:20]!r}")
    if summary.get("总交易单数") != str(len(rows)):
        raise BillRejected("the WeChat Pay bill's line count differs from its summary")
    refunded_fen = sum(bill_fen(line) for line in _wechat_refund_amounts(header, lines[1:summary_at]))
    if "退款总金额" in summary and bill_fen(summary["退款总金额"]) != refunded_fen:
        raise BillRejected("the WeChat Pay bill's refund total differs from its lines")
    return rows


def _wechat_refund_amounts(header: list[str], lines: list[str]) -> list[str]:
    state_at, amount_at = header.index("交易状态"), header.index("退款金额")
    return [
        fields[amount_at] for fields in _csv_lines(lines) if fields[state_at].strip().lstrip("`") == "REFUND"
    ]


# --- Alipay --------------------------------------------------------------------------------------------


def _member_name(info: zipfile.ZipInfo) -> str:
    """Alipay's ZIPs name their members in GBK without the UTF-8 flag, which Python reads as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def parse_alipay_bill_zip(data: bytes) -> list[BillRow]:
    """Read the 业务明细 detail file of an Alipay ``trade`` bill ZIP."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [(info, _member_name(info)) for info in archive.infolist() if not info.is_dir()]
        details = [info for info, name in members if name.endswith(".csv") and "汇总" not in name]
        if len(details) != 1:
            raise BillRejected("the Alipay bill ZIP does not hold exactly one detail file")
        text = archive.read(details[0]).decode("gbk")
    except (zipfile.BadZipFile, UnicodeDecodeError, KeyError):
        raise BillRejected("the Alipay bill ZIP is unreadable") from None
    return parse_alipay_detail(text)


def parse_alipay_detail(text: str) -> list[BillRow]:
    """Read an Alipay 业务明细 CSV (decoded from GBK).

    >>> detail = (
    ...     "#支付宝业务明细查询\\n#-----业务明细列表-----\\n"
    ...     "支付宝交易号,商户订单号,业务类型,完成时间,订单金额（元）,商家实收（元）,退款批次号/请求号\\n"
    ...     "2026112722001\\t,BK2\\t,交易\\t,2026-11-27 09:00:00\\t,50.00\\t,50.00\\t,\\t\\n"
    ...     "2026112722001\\t,BK2\\t,退款\\t,2026-11-27 11:00:00\\t,50.00\\t,-20.00\\t,RF2\\t\\n"
    ...     "#-----业务明细列表结束-----\\n#交易合计：1笔，退款合计：1笔\\n"
    ... )
    >>> [(r.kind.value, r.order_no, r.refund_no, r.amount_fen) for r in parse_alipay_detail(detail)]
    [('payment', 'BK2', '', 5000), ('refund', 'BK2', 'RF2', 2000)]
    """
    lines = text.splitlines()
    table = [line for line in lines if line.strip() and not line.startswith("#")]
    counts = next((ALIPAY_COUNTS.search(line) for line in lines if ALIPAY_COUNTS.search(line)), None)
    if not table or counts is None:
        raise BillRejected("the Alipay bill has no detail table or no totals")
    header = [name.strip() for name in _csv_lines(table[:1])[0]]
    needed = {
        "支付宝交易号",
        "商户订单号",
        "业务类型",
        "订单金额（元）",
        "商家实收（元）",
        "退款批次号/请求号",
    }
    if not needed <= set(header):
        raise BillRejected("the Alipay bill lacks expected columns")
    rows: list[BillRow] = []
    for fields in _csv_lines(table[1:]):
        if len(fields) != len(header):
            raise BillRejected("an Alipay bill line has the wrong number of fields")
        line = {name: value.strip() for name, value in zip(header, fields, strict=True)}
        kind = line["业务类型"]
        when = _china_time(line.get("完成时间", ""))
        if kind == "交易":
            rows.append(
                BillRow(
                    kind=BillRowKind.PAYMENT,
                    order_no=line["商户订单号"],
                    transaction_id=line["支付宝交易号"],
                    amount_fen=bill_fen(line["订单金额（元）"]),
                    occurred_at=when,
                )
            )
        elif kind == "退款":
            rows.append(
                BillRow(
                    kind=BillRowKind.REFUND,
                    order_no=line["商户订单号"],
                    transaction_id=line["支付宝交易号"],
                    amount_fen=bill_fen(line["商家实收（元）"]),
                    refund_no=line["退款批次号/请求号"],
                    occurred_at=when,
                )
            )
        else:
            raise BillRejected(f"unexpected business type in the Alipay bill: {kind[:20]!r}")
    payments = sum(1 for row in rows if row.kind == BillRowKind.PAYMENT)
    if (payments, len(rows) - payments) != (int(counts.group(1)), int(counts.group(2))):
        raise BillRejected("the Alipay bill's line counts differ from its totals")
    return rows
