"""The daily reconciliation report: a channel's bill of one day, downloaded from the gateway, compared with
our payments and refunds, stored once per (channel, day) for staff to read in the admin."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.clock import HOSPITAL_TZ
from reservations.models import Payment, ReconciliationReport, Refund
from reservations.payments.base import (
    BillRejected,
    BillRow,
    BillRowKind,
    GatewayError,
    GatewayRejected,
)
from reservations.payments.gateways import gateway_for
from reservations.services.money import from_fen, to_fen
from reservations.services.payments import payments_reconcile_day

logger = logging.getLogger(__name__)

RECONCILED_CHANNELS = (Payment.Channel.WECHATPAY, Payment.Channel.ALIPAY)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    """The hospital-time day as aware datetimes (the providers' bills run midnight to midnight, China)."""
    start = datetime.combine(day, time.min, tzinfo=HOSPITAL_TZ)
    return start, start + timedelta(days=1)


def refunds_reconcile_day(
    *, channel: str, bill: list[BillRow], day_refunds: list[Refund]
) -> list[dict[str, str]]:
    """Compare our refunds of a day with the bill's refund lines; list every difference.

    Problems: ``refund_unknown_to_us`` (in the bill, not ours), ``refund_not_recorded`` (refunded at the
    gateway, still open or failed with us), ``refund_amount_differs``, ``refund_missing_at_gateway`` (it
    succeeded with us, the bill does not have it).
    """
    ours = {r.refund_no: r for r in day_refunds if r.payment.channel == channel}
    theirs = {row.refund_no: row for row in bill if row.kind == BillRowKind.REFUND}
    lines: list[dict[str, str]] = []

    def line(order_no: str, refund_no: str, problem: str, mine: str, gateway: str) -> None:
        lines.append(
            {
                "order_no": order_no,
                "refund_no": refund_no,
                "problem": problem,
                "ours": mine,
                "theirs": gateway,
            }
        )

    for refund_no, row in sorted(theirs.items()):
        refund = ours.get(refund_no)
        amount = str(from_fen(row.amount_fen))
        if refund is None:
            line(row.order_no, refund_no, "refund_unknown_to_us", "-", amount)
            continue
        if refund.status != Refund.Status.SUCCEEDED:
            line(row.order_no, refund_no, "refund_not_recorded", refund.status, "refunded")
        if to_fen(refund.amount) != row.amount_fen:
            line(row.order_no, refund_no, "refund_amount_differs", str(refund.amount), amount)
    for refund_no, refund in sorted(ours.items()):
        if refund_no not in theirs and refund.status == Refund.Status.SUCCEEDED:
            line(refund.payment.order_no, refund_no, "refund_missing_at_gateway", refund.status, "-")
    return lines


def _compare(channel: str, day: date, rows: list[BillRow]) -> dict[str, object]:
    """The report's fields for a bill that was read: counts and the sorted differences."""
    start, end = _day_bounds(day)
    bill_payments = [row for row in rows if row.kind == BillRowKind.PAYMENT]
    bill_refunds = [row for row in rows if row.kind == BillRowKind.REFUND]
    # Ours of the day: paid that day, plus any order the bill names (a payment we never heard of is ours
    # too, still "created", and must show as paid at the gateway only, not as unknown).
    day_payments = list(
        Payment.objects.filter(channel=channel).filter(
            Q(paid_at__gte=start, paid_at__lt=end) | Q(order_no__in=[row.order_no for row in bill_payments])
        )
    )
    # A refund has no success time of its own: refund_settle stamps updated_at when it succeeds.
    day_refunds = list(
        Refund.objects.select_related("payment")
        .filter(payment__channel=channel)
        .filter(
            Q(status=Refund.Status.SUCCEEDED, updated_at__gte=start, updated_at__lt=end)
            | Q(refund_no__in=[row.refund_no for row in bill_refunds])
        )
    )
    bill = [
        {"order_no": row.order_no, "amount_fen": row.amount_fen, "state": "paid"} for row in bill_payments
    ]
    payment_lines = [
        {"order_no": line.order_no, "refund_no": "", "problem": line.problem, "ours": line.ours,
         "theirs": line.theirs}
        for line in payments_reconcile_day(channel=channel, bill=bill, day_payments=day_payments)
    ]  # fmt: skip
    lines = payment_lines + refunds_reconcile_day(channel=channel, bill=rows, day_refunds=day_refunds)
    return {
        "status": ReconciliationReport.Status.DIFFERENCES if lines else ReconciliationReport.Status.OK,
        "message": "",
        "gateway_payments": len(bill_payments),
        "gateway_refunds": len(bill_refunds),
        "our_payments": sum(1 for p in day_payments if p.paid_at is not None and start <= p.paid_at < end),
        "our_refunds": sum(1 for r in day_refunds if r.status == Refund.Status.SUCCEEDED),
        "differences": len(lines),
        "lines": lines,
    }


def _failed(message: str) -> dict[str, object]:
    return {
        "status": ReconciliationReport.Status.FAILED,
        "message": message[:300],
        "gateway_payments": 0,
        "gateway_refunds": 0,
        "our_payments": 0,
        "our_refunds": 0,
        "differences": 0,
        "lines": [],
    }


def payments_reconcile_report(*, channel: str, day: date, rerun: bool = False) -> ReconciliationReport:
    """Download ``channel``'s bill of ``day`` (China date), compare it with our payments and refunds, and
    store the report.

    Rules: one report per (channel, day). A finished report (ok or differences) is returned unchanged when
    the day is run again, unless ``rerun``: then it is recomputed in place, ``runs`` counts up and the
    earlier outcome goes to ``history``. A failed one (bill not ready, gateway down, bill refused as
    tampered or unreadable) is replaced by the next run, its outcome kept in ``history`` too. The download
    happens outside any transaction.
    """
    if channel not in RECONCILED_CHANNELS:
        raise ValueError(f"no bill to reconcile for channel {channel!r}")
    existing = ReconciliationReport.objects.filter(channel=channel, bill_date=day).first()
    if existing is not None and existing.status != ReconciliationReport.Status.FAILED and not rerun:
        return existing
    # 1. The bill, verified by the adapter (hash, its own totals), read into lines.
    try:
        fields = _compare(channel, day, gateway_for(channel).download_bill(day=day))
    except BillRejected as refusal:
        logger.error("%s bill of %s refused: %s", channel, day, refusal.reason)
        fields = _failed(f"The bill was refused: {refusal.reason}.")
    except GatewayRejected as refusal:
        logger.error("%s bill of %s: the gateway refused: %s", channel, day, refusal)
        fields = _failed(f"The gateway refused the bill request: {refusal}.")
    except GatewayError as error:
        logger.warning("%s bill of %s not available: %s", channel, day, error)
        fields = _failed(f"The bill is not available yet or the gateway is unreachable: {error}.")
    # 2. Store it: created once; a concurrent run of the same day settles on one row.
    now = timezone.now()
    try:
        with transaction.atomic():
            report, created = ReconciliationReport.objects.select_for_update().get_or_create(
                channel=channel, bill_date=day, defaults={**fields, "created_at": now, "updated_at": now}
            )
            if created:
                return report
            if report.status != ReconciliationReport.Status.FAILED and not rerun:
                return report  # another run finished it meanwhile
            report.history = [
                *report.history,
                {
                    "at": report.updated_at.isoformat(),
                    "status": report.status,
                    "differences": report.differences,
                    "message": report.message,
                },
            ]
            for name, value in fields.items():
                setattr(report, name, value)
            report.runs += 1
            report.updated_at = now
            report.save()
            return report
    except IntegrityError:  # created by a concurrent run between our read and our insert
        return ReconciliationReport.objects.get(channel=channel, bill_date=day)


def payments_reconcile_yesterday(*, now: datetime | None = None) -> list[ReconciliationReport]:
    """Reconcile yesterday (hospital time) on every online channel; finished reports are left as they are."""
    today = (now or timezone.now()).astimezone(HOSPITAL_TZ).date()
    return [
        payments_reconcile_report(channel=channel, day=today - timedelta(days=1))
        for channel in RECONCILED_CHANNELS
    ]
