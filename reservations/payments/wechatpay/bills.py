"""Reading WeChat Pay's daily bill (对账单) into :class:`BillRow` lines, amounts in exact fen.

WeChat Pay v3 trade bill (``GET /v3/bill/tradebill?bill_date=…&bill_type=ALL`` → ``download_url``; the file
is checked against the answer's SHA-1 ``hash_value`` before it is read): UTF-8 CSV, a header line of
Chinese column names, one line per payment (交易状态 ``SUCCESS``) or refund (``REFUND``) of the day, every
field prefixed with a backtick so spreadsheets keep long numbers as text, then a summary header
(总交易单数, 应结订单总金额, 退款总金额, …) and one summary line. Amounts are yuan with two decimals.

The reader checks the bill's own counts against its lines and raises :class:`BillRejected` on any
inconsistency: a bill we cannot trust is never half-used.
"""

from __future__ import annotations

from reservations.payments.base import (
    BillRejected,
    BillRow,
    BillRowKind,
    bill_china_time,
    bill_csv_lines,
    bill_fen,
)

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
    header = [name.strip() for name in bill_csv_lines(lines[:1])[0]]
    needed = {"交易时间", "微信订单号", "商户订单号", "交易状态", "商户退款单号", "退款金额", "应结订单金额"}
    if not needed <= set(header):
        raise BillRejected("the WeChat Pay bill lacks expected columns")
    summary = dict(
        zip(
            (name.strip() for name in bill_csv_lines(lines[summary_at : summary_at + 1])[0]),
            (
                value.strip().lstrip("`")
                for value in bill_csv_lines(lines[summary_at + 1 : summary_at + 2])[0]
            ),
            strict=False,
        )
    )
    rows: list[BillRow] = []
    for fields in bill_csv_lines(lines[1:summary_at]):
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
                    occurred_at=bill_china_time(line["交易时间"]),
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
                    occurred_at=bill_china_time(line["交易时间"]),
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
        fields[amount_at]
        for fields in bill_csv_lines(lines)
        if fields[state_at].strip().lstrip("`") == "REFUND"
    ]
