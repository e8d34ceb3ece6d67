"""The daily reconciliation: each gateway's real bill file (WeChat Pay's SHA-1-checked CSV, Alipay's GBK ZIP),
served by the sandbox from its order book, downloaded and read by our adapters, compared with our payments
and refunds, and stored once per channel and day for staff."""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client

from core.clock import HOSPITAL_TZ
from hospital.celery import app as celery_app
from medcard.models import User
from reservations import services, tasks
from reservations.models import Payment, ReconciliationReport
from reservations.payments import gateways
from reservations.payments.base import BillRowKind
from reservations.payments.gateways import gateway_for
from reservations.payments.sandbox import bills as sandbox_bills
from reservations.payments.sandbox import gateway as sandbox
from reservations.services.reconciliation import payments_reconcile_report
from tests import factories
from tests.reservations.payment_transport import client_transport

pytestmark = pytest.mark.urls("tests.reservations.payment_test_urls")

DAY = date(2026, 11, 26)
PAYING_AT = datetime(2026, 11, 26, 9, 30, tzinfo=HOSPITAL_TZ)
NEXT_MORNING = datetime(2026, 11, 27, 10, 5, tzinfo=HOSPITAL_TZ)
CHANNELS = ["wechatpay", "alipay"]


@pytest.fixture
def gateway(sandbox_mode, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Gateway calls and notifications in-process, refunds and messages inline, notifications sent only
    when a test delivers them."""
    transport = client_transport(Client())
    for module in ("payments", "refunds", "reconciliation"):
        monkeypatch.setattr(
            f"reservations.services.{module}.gateway_for",
            functools.partial(gateways.gateway_for, transport=transport),
        )
    monkeypatch.setattr(sandbox, "notify_transport", transport)
    monkeypatch.setattr(sandbox, "enqueue_delivery", lambda order_no, countdown_s: None)
    monkeypatch.setattr(sandbox, "enqueue_refund_delivery", lambda order_no, refund_no, countdown_s: None)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    yield


def _paid(channel: str, *, fee: str = "50.00", notified: bool = True) -> Payment:
    account = factories.patient_account()
    slot = factories.clinic_session(fee=fee, capacity=3).slots.get()
    booking = services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )
    started = services.payment_start(account=account, booking_id=booking.pk, channel=channel)
    if channel == "alipay":  # Alipay opens the trade when the patient's browser reaches the page
        Client().get(started.pay_url)
    assert sandbox.cashier_pay(started.payment.order_no) == "paid"
    if notified:
        assert sandbox.deliver_notification(started.payment.order_no) == "delivered"
    started.payment.refresh_from_db()
    return started.payment


def _a_day_of_payments(channel: str) -> dict[str, str]:
    """On DAY: a paid order, a paid-then-refunded one, one paid at the gateway whose notification was lost,
    and one whose amount we recorded differently from the gateway."""
    with time_machine.travel(PAYING_AT, tick=False):
        paid = _paid(channel)
        refunded = _paid(channel)
        services.booking_cancel(account=refunded.booking.account, booking_id=refunded.booking_id)
        unheard = _paid(channel, notified=False)
        mismatch = _paid(channel)
    Payment.objects.filter(pk=mismatch.pk).update(amount=Decimal("45.00"))
    assert refunded.refund.status == "succeeded"
    return {"paid": paid.order_no, "refunded": refunded.order_no, "unheard": unheard.order_no,
            "mismatch": mismatch.order_no, "refund_no": refunded.refund.refund_no}  # fmt: skip


def _problems(report: ReconciliationReport) -> list[tuple[str, str]]:
    return sorted((line["order_no"], line["problem"]) for line in report.lines)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_days_bill_gives_exactly_the_differences(gateway: None, channel: str) -> None:
    orders = _a_day_of_payments(channel)

    with time_machine.travel(NEXT_MORNING, tick=False):
        report = payments_reconcile_report(channel=channel, day=DAY)

    assert (report.channel, report.bill_date, report.status) == (channel, DAY, "differences")
    assert _problems(report) == sorted(
        [(orders["unheard"], "paid_at_gateway_only"), (orders["mismatch"], "amount_differs")]
    )
    [mismatch] = [line for line in report.lines if line["problem"] == "amount_differs"]
    assert (mismatch["ours"], mismatch["theirs"]) == ("45.00", "50.00")
    assert (report.gateway_payments, report.gateway_refunds) == (4, 1)
    assert (report.our_payments, report.our_refunds, report.differences) == (3, 1, 2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_adapters_read_every_line_of_the_bill_to_the_fen(gateway: None, channel: str) -> None:
    with time_machine.travel(PAYING_AT, tick=False):
        payment = _paid(channel, fee="0.29")  # 0.29 * 100 is 28.999999999999996 in floats
        services.booking_cancel(account=payment.booking.account, booking_id=payment.booking_id)
    with time_machine.travel(NEXT_MORNING, tick=False):
        rows = gateway_for(channel, transport=client_transport()).download_bill(day=DAY)
    payment.refresh_from_db()
    assert [(row.kind, row.order_no, row.amount_fen, row.refund_no) for row in rows] == [
        (BillRowKind.PAYMENT, payment.order_no, 29, ""),
        (BillRowKind.REFUND, payment.order_no, 29, payment.refund.refund_no),
    ]
    assert rows[0].transaction_id == payment.transaction_id
    assert rows[0].occurred_at is not None and rows[0].occurred_at.astimezone(HOSPITAL_TZ).date() == DAY


@pytest.mark.django_db(transaction=True)
def test_the_sandbox_serves_each_providers_own_file_format(gateway: None) -> None:
    with time_machine.travel(PAYING_AT, tick=False):
        wechat = _paid("wechatpay")
        alipay = _paid("alipay")
    with time_machine.travel(NEXT_MORNING, tick=False):
        csv_text = sandbox_bills.wechatpay_tradebill_csv(DAY).decode("utf-8")
        archive = zipfile.ZipFile(io.BytesIO(sandbox_bills.alipay_bill_zip(DAY)))
    header, line, summary_header, summary, _end = csv_text.split("\r\n")
    assert header.startswith("交易时间,公众账号ID,商户号") and summary_header.startswith("总交易单数,")
    assert (
        line.startswith("`2026-11-26 09:30:00,`") and f"`{wechat.order_no}," in line and "`SUCCESS," in line
    )
    assert summary.startswith("`1,`50.00,`0.00,")
    [detail_name] = [name for name in archive.namelist() if name.endswith("_业务明细.csv")]
    detail = archive.read(detail_name).decode("gbk").split("\r\n")
    assert detail[0] == "#支付宝业务明细查询" and detail[4].startswith("支付宝交易号,商户订单号,业务类型")
    assert f"{alipay.order_no}\t" in detail[5] and "交易\t" in detail[5]
    assert "#交易合计：1笔，退款合计：0笔" in detail
    assert any(name.endswith("_业务明细(汇总).csv") for name in archive.namelist())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("channel", "reason"), [("wechatpay", "SHA-1"), ("alipay", "line counts")])
def test_a_tampered_bill_is_refused_with_a_clear_failed_report(
    gateway: None, channel: str, reason: str
) -> None:
    orders = _a_day_of_payments(channel)
    sandbox.faults_set(None, bill_tampered=True)

    with time_machine.travel(NEXT_MORNING, tick=False):
        report = payments_reconcile_report(channel=channel, day=DAY)

    assert report.status == "failed" and report.lines == [] and report.differences == 0
    assert report.message.startswith("The bill was refused:") and reason in report.message

    # Once the provider serves a sound bill, the next run replaces the failed report and says why it changed.
    sandbox.faults_set(None, bill_tampered=False)
    with time_machine.travel(NEXT_MORNING, tick=False):
        again = payments_reconcile_report(channel=channel, day=DAY)
    assert (again.pk, again.status, again.runs) == (report.pk, "differences", 2)
    assert [entry["status"] for entry in again.history] == ["failed"]
    assert (orders["unheard"], "paid_at_gateway_only") in _problems(again)


@pytest.mark.django_db(transaction=True)
def test_running_a_finished_day_again_returns_the_same_report_unless_a_rerun_is_asked_for(
    gateway: None,
) -> None:
    orders = _a_day_of_payments("wechatpay")
    with time_machine.travel(NEXT_MORNING, tick=False):
        first = payments_reconcile_report(channel="wechatpay", day=DAY)
        # The lost notification finally arrives: the stored report does not change by itself...
        assert sandbox.deliver_notification(orders["unheard"]) == "delivered"
        same = payments_reconcile_report(channel="wechatpay", day=DAY)
        assert (same.pk, same.runs, same.lines, same.updated_at) == (
            first.pk,
            1,
            first.lines,
            first.updated_at,
        )
        # ...an explicit re-run recomputes it in place and keeps what it said before.
        rerun = payments_reconcile_report(channel="wechatpay", day=DAY, rerun=True)
    assert (rerun.pk, rerun.runs) == (first.pk, 2)
    assert _problems(rerun) == [(orders["mismatch"], "amount_differs")]
    assert rerun.history[0]["status"] == "differences" and rerun.history[0]["differences"] == 2
    assert ReconciliationReport.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_bill_not_ready_yet_gives_a_failed_report_that_the_next_run_replaces(gateway: None) -> None:
    _a_day_of_payments("alipay")
    with time_machine.travel(PAYING_AT, tick=False):  # the same day: no bill yet
        early = payments_reconcile_report(channel="alipay", day=DAY)
    assert early.status == "failed" and "not available yet" in early.message
    with time_machine.travel(NEXT_MORNING, tick=False):
        later = payments_reconcile_report(channel="alipay", day=DAY)
    assert (later.pk, later.status) == (early.pk, "differences")


@pytest.mark.django_db(transaction=True)
def test_the_daily_task_reconciles_yesterday_on_both_channels(gateway: None) -> None:
    with time_machine.travel(PAYING_AT, tick=False):
        _paid("wechatpay")
    with time_machine.travel(NEXT_MORNING, tick=False):
        outcome = tasks.payments_reconcile_bills()
        assert tasks.payments_reconcile_bills() == outcome  # the 12:00 run leaves finished reports alone
    assert outcome == ["wechatpay: ok", "alipay: ok"]  # Alipay: a day without trades is an empty bill
    assert sorted(ReconciliationReport.objects.values_list("channel", "bill_date", "runs")) == [
        ("alipay", DAY, 1),
        ("wechatpay", DAY, 1),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_the_report_and_fails_loudly_on_a_refused_bill(gateway: None) -> None:
    orders = _a_day_of_payments("wechatpay")
    out = io.StringIO()
    with time_machine.travel(NEXT_MORNING, tick=False):
        call_command("payments_reconcile", "--date", "2026-11-26", "--channel", "wechatpay", stdout=out)
    text = out.getvalue()
    assert text.startswith("wechatpay 2026-11-26: differences (run 1; bill: 4 payments, 1 refunds;")
    assert f"amount_differs: order {orders['mismatch']}; ours 45.00, gateway 50.00" in text
    assert f"paid_at_gateway_only: order {orders['unheard']}" in text

    sandbox.faults_set(None, bill_tampered=True)
    with time_machine.travel(NEXT_MORNING, tick=False), pytest.raises(CommandError):
        call_command("payments_reconcile", "--date", "2026-11-26", "--rerun", stdout=io.StringIO())
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("payments_reconcile", "--date", "26/11/2026")


@pytest.mark.django_db(transaction=True)
def test_staff_read_the_report_in_the_admin_and_cannot_change_it(
    gateway: None, administrator: User, patient: User
) -> None:
    orders = _a_day_of_payments("wechatpay")
    with time_machine.travel(NEXT_MORNING, tick=False):
        report = payments_reconcile_report(channel="wechatpay", day=DAY)
    administrator.user_permissions.add(Permission.objects.get(codename="view_reconciliationreport"))
    staff = Client()
    staff.force_login(administrator)
    url = f"/admin/reservations/reconciliationreport/{report.pk}/change/"

    page = staff.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    assert orders["mismatch"] in html and "amount_differs" in html
    assert 'name="_save"' not in html  # read-only: no save button
    assert staff.post(url, {"status": "ok"}).status_code == 403
    assert staff.get("/admin/reservations/reconciliationreport/add/").status_code == 403
    assert staff.post(f"/admin/reservations/reconciliationreport/{report.pk}/delete/").status_code == 403
    report.refresh_from_db()
    assert report.status == "differences"
    outsider = Client()
    outsider.force_login(patient)
    assert outsider.get(url).status_code == 302  # to the admin login: patients never see it
