"""Reconcile a day's gateway bill with our payments and refunds, and print the stored report.

Running a finished day again prints the stored report unchanged; ``--rerun`` recomputes it (the earlier
outcome is kept in the report's history). A failed report is always retried.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.clock import HOSPITAL_TZ
from reservations.models import ReconciliationReport
from reservations.services.reconciliation import RECONCILED_CHANNELS, payments_reconcile_report


class Command(BaseCommand):
    help = (
        "Download a day's bill from WeChat Pay and/or Alipay, compare it with our payments and refunds, "
        "store the report (one per channel and day) and print it. The day defaults to yesterday (China)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="The bill date, YYYY-MM-DD (China time). Default: yesterday.")
        parser.add_argument(
            "--channel", choices=[str(c) for c in RECONCILED_CHANNELS], help="One channel (default: both)."
        )
        parser.add_argument(
            "--rerun",
            action="store_true",
            help="Recompute a finished report instead of printing it as stored.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["date"]:
            try:
                day = date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError("--date must be YYYY-MM-DD.") from None
        else:
            day = timezone.now().astimezone(HOSPITAL_TZ).date() - timedelta(days=1)
        channels = [options["channel"]] if options["channel"] else [str(c) for c in RECONCILED_CHANNELS]
        failed = False
        for channel in channels:
            report = payments_reconcile_report(channel=channel, day=day, rerun=options["rerun"])
            self._print(report)
            failed = failed or report.status == ReconciliationReport.Status.FAILED
        if failed:
            raise CommandError("At least one bill could not be reconciled (see above).")

    def _print(self, report: ReconciliationReport) -> None:
        self.stdout.write(
            f"{report.channel} {report.bill_date}: {report.status} (run {report.runs}; "
            f"bill: {report.gateway_payments} payments, {report.gateway_refunds} refunds; "
            f"ours: {report.our_payments} payments, {report.our_refunds} refunds; "
            f"{report.differences} differences)"
        )
        if report.message:
            self.stdout.write(f"  {report.message}")
        for line in report.lines:
            refund = f" refund {line['refund_no']}" if line.get("refund_no") else ""
            self.stdout.write(
                f"  {line['problem']}: order {line['order_no']}{refund}; ours {line['ours']}, "
                f"gateway {line['theirs']}"
            )
