"""Reading Alipay's daily bill (对账单) into :class:`BillRow` lines, amounts in exact fen.

Alipay trade bill (``alipay.data.dataservice.bill.downloadurl.query`` with ``bill_type=trade`` →
``bill_download_url``): a ZIP holding GBK CSV files, the 业务明细 detail and its 业务明细(汇总) summary.
Comment lines start with ``#`` (account, dates, the list's start and end, 交易合计/退款合计 counts); fields
are often padded with tabs; 业务类型 is 交易 for a payment and 退款 for a refund, whose 商家实收 is negative
and whose 退款批次号/请求号 is our ``out_request_no``.

The reader checks the bill's own counts against its lines and raises :class:`BillRejected` on any
inconsistency: a bill we cannot trust is never half-used.
"""

from __future__ import annotations

import io
import re
import zipfile

from reservations.payments.base import (
    BillRejected,
    BillRow,
    BillRowKind,
    bill_china_time,
    bill_csv_lines,
    bill_fen,
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
    header = [name.strip() for name in bill_csv_lines(table[:1])[0]]
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
    for fields in bill_csv_lines(table[1:]):
        if len(fields) != len(header):
            raise BillRejected("an Alipay bill line has the wrong number of fields")
        line = {name: value.strip() for name, value in zip(header, fields, strict=True)}
        kind = line["业务类型"]
        when = bill_china_time(line.get("完成时间", ""))
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
