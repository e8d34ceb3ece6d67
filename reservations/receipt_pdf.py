"""The electronic receipt (电子收据) of a paid number, as a PDF in Chinese.

ReportLab's built-in CID font STSong-Light (as the dosing report uses) writes the text as Unicode, so a
reader can search and copy it and a test can read it back; no font file is shipped or embedded. The receipt
says who paid what for which visit, through which channel and under which transaction; a refunded payment's
receipt says so in its heading and its status line.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.pagesizes import A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.clock import HOSPITAL_TZ
from reservations.models import Booking, HalfDay, Payment, Refund

FONT = "STSong-Light"
_CHANNELS_ZH: dict[str, str] = {"wechatpay": "微信支付", "alipay": "支付宝", "desk": "门诊窗口"}
_DESK_METHODS_ZH = {"cash": "现金", "card": "银行卡", "wechat_code": "微信扫码", "alipay_code": "支付宝扫码"}
_TITLES_ZH = {
    "chief": "主任医师",
    "associate_chief": "副主任医师",
    "attending": "主治医师",
    "resident": "住院医师",
}
_HALF_DAYS_ZH = {HalfDay.MORNING: "上午", HalfDay.AFTERNOON: "下午"}
_WEEKDAYS_ZH = "一二三四五六日"


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def receipt_number(payment: Payment) -> str:
    """The receipt's number: the desk's printed receipt number, or one made from the payment for online
    payments (``E`` + the local date it was paid + the payment's number), the same every time it is asked.

    >>> from datetime import datetime, timezone
    >>> receipt_number(Payment(pk=42, paid_at=datetime(2026, 12, 11, 20, 0, tzinfo=timezone.utc)))
    'E2026121200000042'
    """
    if payment.receipt_no:
        return payment.receipt_no
    paid = (payment.paid_at or payment.created_at).astimezone(HOSPITAL_TZ)
    return f"E{paid:%Y%m%d}{payment.pk:08d}"


def _yuan(amount: Decimal) -> str:
    return f"¥{amount:.2f}（人民币{amount:.2f}元）"


def _local(when: datetime | None) -> str:
    return when.astimezone(HOSPITAL_TZ).strftime("%Y-%m-%d %H:%M:%S") if when else "—"


@dataclass(frozen=True)
class ReceiptState:
    """Whether the receipt's payment stands, and if not, how far its refund went."""

    refunded: bool
    refund: Refund | None

    @property
    def label(self) -> str:
        if not self.refunded:
            return "已支付"
        if self.refund is not None and self.refund.status == Refund.Status.SUCCEEDED:
            return "已退款"
        return "已申请退款（退款处理中）"


def receipt_pdf(*, booking: Booking, payment: Payment) -> bytes:
    """The receipt of ``payment`` (paid, or paid and refunded) for ``booking``, as PDF bytes, in Chinese."""
    font = _font()
    base = ParagraphStyle("base", fontName=font, fontSize=10, leading=15)
    h1 = ParagraphStyle("h1", parent=base, fontSize=15, leading=21, alignment=1)
    stamp = ParagraphStyle("stamp", parent=base, fontSize=13, leading=19, alignment=1, textColor=colors.red)
    small = ParagraphStyle("small", parent=base, fontSize=8, leading=11, textColor=colors.grey)

    session = booking.session
    refund = Refund.objects.filter(payment=payment).first()
    state = ReceiptState(refunded=payment.status == Payment.Status.REFUNDED, refund=refund)
    starts = booking.slot.starts_at.astimezone(HOSPITAL_TZ)
    ends = booking.slot.ends_at.astimezone(HOSPITAL_TZ)
    if session.doctor is not None:
        who = f"{session.doctor.name_zh} {_TITLES_ZH.get(session.doctor.title, '')}".strip()
    else:
        who = session.room or "—"
    channel = _CHANNELS_ZH.get(payment.channel, str(payment.channel))
    if payment.desk_method:
        channel += f"（{_DESK_METHODS_ZH.get(payment.desk_method, payment.desk_method)}）"
    rows = [
        ("收据号", receipt_number(payment)),
        ("患者", booking.patient.masked_name),
        ("科室", session.department.name_zh),
        ("医生／诊室", who),
        ("号别", session.clinic_type.name_zh),
        ("就诊日期", f"{starts:%Y-%m-%d}（周{_WEEKDAYS_ZH[starts.weekday()]}）"),
        (
            "就诊时段",
            f"{_HALF_DAYS_ZH.get(HalfDay(session.half_day), '')} {starts:%H:%M}-{ends:%H:%M}".strip(),
        ),
        ("项目", "挂号费"),
        ("金额", _yuan(payment.amount)),
        ("支付方式", channel),
        ("交易号", payment.transaction_id or "—"),
        ("订单号", payment.order_no),
        ("支付时间", _local(payment.paid_at)),
        ("状态", state.label),
    ]
    if state.refunded and refund is not None:
        rows.append(("退款金额", _yuan(refund.amount)))
        if refund.status == Refund.Status.SUCCEEDED:
            rows.append(("退款时间", _local(refund.updated_at)))

    hospital = settings.HOSPITAL_NAME["zh-hans"]
    story: list[Flowable] = [Paragraph(hospital, h1), Paragraph("门诊挂号电子收据", h1), Spacer(1, 3 * mm)]
    if state.refunded:
        story += [Paragraph(f"本笔费用{state.label}", stamp), Spacer(1, 2 * mm)]
    table = Table(
        [[Paragraph(label, base), Paragraph(value, base)] for label, value in rows],
        colWidths=(28 * mm, 92 * mm),
        hAlign="CENTER",
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story += [
        table,
        Spacer(1, 4 * mm),
        Paragraph(
            "本收据由系统根据支付记录自动生成，仅作挂号费支付凭证；如需发票请到门诊收费窗口办理。", small
        ),
    ]
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=A5,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"{hospital} 电子收据 {receipt_number(payment)}",
        author=hospital,
    ).build(story)
    return buffer.getvalue()
