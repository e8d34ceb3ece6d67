"""Refunds that end: a refund left processing is asked about again until the gateway says how it ended (at
most a bounded number of times), WeChat Pay's signed refund notifications end it sooner, and the patient is
told once, when the money is on its way back. Everything runs in-process against the sandbox gateway."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from hospital.celery import app as celery_app
from medcard.models import User
from reservations import notifications, services
from reservations.models import Booking, Payment, Refund
from reservations.payments import gateways, keys
from reservations.payments.base import Channel, ForgedNotification
from reservations.payments.gateways import gateway_for
from reservations.payments.sandbox import gateway as sandbox
from reservations.services import refunds
from tests import factories
from tests.reservations.payment_transport import client_transport

pytestmark = pytest.mark.urls("tests.reservations.payment_test_urls")

REFUND_NOTIFY_PATH = "/payments/notify/wechatpay/refund/"


@pytest.fixture
def refund_deliveries(sandbox_mode, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """Gateway calls and notifications in-process; refunds and messages run inline; collects the refund
    notifications the sandbox has scheduled (a test delivers them when it wants)."""
    transport = client_transport(Client())
    for module in ("payments", "refunds"):
        monkeypatch.setattr(
            f"reservations.services.{module}.gateway_for",
            functools.partial(gateways.gateway_for, transport=transport),
        )
    monkeypatch.setattr(sandbox, "notify_transport", transport)
    monkeypatch.setattr(sandbox, "enqueue_delivery", lambda order_no, countdown_s: None)
    due: list[tuple[str, str]] = []
    monkeypatch.setattr(
        sandbox,
        "enqueue_refund_delivery",
        lambda order_no, refund_no, countdown_s: due.append((order_no, refund_no)),
    )
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    notifications.outbox.clear()
    yield due


def _paid(account: User, channel: str = "wechatpay", *, processing: bool = False) -> Payment:
    slot = factories.clinic_session(fee="50.00", capacity=3).slots.get()
    booking = services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )
    payment = services.payment_start(account=account, booking_id=booking.pk, channel=channel).payment
    if channel == "alipay":  # Alipay opens the trade when the patient's browser reaches the page
        Client().get(services.payment_start(account=account, booking_id=booking.pk, channel=channel).pay_url)
    if processing:
        sandbox.faults_set(payment.order_no, refund_processing=True)
    assert sandbox.cashier_pay(payment.order_no) == "paid"
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    payment.refresh_from_db()
    assert payment.status == "paid"
    return payment


def _cancelled(account: User, payment: Payment) -> Refund:
    services.booking_cancel(account=account, booking_id=payment.booking_id)
    return Refund.objects.get(payment=payment)


def _refund_messages() -> list[str]:
    return [m.text for m in notifications.sandbox_messages(kind="refunded", channel="sms")]


def _later(minutes: int = 6):  # type: ignore[no-untyped-def]
    return timezone.now() + timedelta(minutes=minutes)


# --- Follow-up -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_processing_refund_is_followed_up_until_it_succeeds_and_the_patient_is_told_once(
    patient: User, refund_deliveries: list[tuple[str, str]]
) -> None:
    payment = _paid(patient, processing=True)
    refund = _cancelled(patient, payment)
    assert refund.status == "processing"
    assert _refund_messages() == []  # not told "refunded" while the money has not moved
    assert refunds.refunds_follow_up(now=timezone.now()) == 0  # too fresh to ask about

    assert refunds.refunds_follow_up(now=_later()) == 1

    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.attempts == 2
    [message] = _refund_messages()
    assert "挂号费50.00元已原路退回" in message
    assert sandbox.order_get(payment.order_no)["refunded_fen"] == 5000
    # WeChat also notifies the outcome; it changes nothing more and tells no one twice.
    assert refund_deliveries == [(payment.order_no, refund.refund_no)]
    assert sandbox.deliver_refund_notification(*refund_deliveries[0]) == "delivered"
    assert refunds.refunds_follow_up(now=_later(20)) == 0
    assert len(_refund_messages()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_refund_that_never_ends_is_marked_failed_after_bounded_attempts(
    patient: User,
    refund_deliveries: list[tuple[str, str]],
    monkeypatch,
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(refunds, "REFUND_MAX_ATTEMPTS", 4)
    payment = _paid(patient, processing=True)
    sandbox.faults_set(payment.order_no, refund_stuck=True)
    refund = _cancelled(patient, payment)  # attempt 1: processing

    for minutes in (10, 20, 30):  # attempts 2-4: still processing
        assert refunds.refunds_follow_up(now=_later(minutes)) == 1
        refund.refresh_from_db()
        assert refund.status == "processing"
    with caplog.at_level(logging.ERROR, logger="reservations.services.refunds"):
        assert refunds.refunds_follow_up(now=_later(40)) == 1

    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == ("failed", 4)
    assert "marked failed, refund by hand" in caplog.text
    assert refunds.refunds_follow_up(now=_later(50)) == 0  # no longer asked about
    assert _refund_messages() == []


@pytest.mark.django_db(transaction=True)
def test_a_transient_gateway_failure_during_the_follow_up_counts_as_an_attempt_and_changes_nothing(
    patient: User, refund_deliveries: list[tuple[str, str]]
) -> None:
    payment = _paid(patient, processing=True)
    refund = _cancelled(patient, payment)
    sandbox.faults_set(payment.order_no, unavailable=True)
    assert refunds.refunds_follow_up(now=_later()) == 1
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == ("processing", 2)
    sandbox.faults_set(payment.order_no, unavailable=False)
    refunds.refunds_follow_up(now=_later(16))
    refund.refresh_from_db()
    assert refund.status == "succeeded"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("channel", ["wechatpay", "alipay"])
def test_a_refund_whose_request_was_lost_is_sent_again_once(
    patient: User,
    refund_deliveries: list[tuple[str, str]],
    monkeypatch,
    channel: str,  # type: ignore[no-untyped-def]
) -> None:
    payment = _paid(patient, channel)
    monkeypatch.setattr("reservations.services.payments.refund_enqueue", lambda *, refund_id: None)
    refund = _cancelled(patient, payment)  # the first call never went out
    assert refund.status == "requested"

    refunds.refunds_follow_up(now=_later())
    refunds.refunds_follow_up(now=_later(16))

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    order = sandbox.order_get(payment.order_no)
    assert order["refunded_fen"] == 5000 and len(order["refunds"]) == 1  # one refund, whatever was asked
    assert len(_refund_messages()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_late_payment_refund_tells_the_patient_once_it_is_done(
    patient: User, refund_deliveries: list[tuple[str, str]]
) -> None:
    slot = factories.clinic_session(fee="50.00", capacity=3).slots.get()
    booking = services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=slot.pk
    )
    payment = services.payment_start(account=patient, booking_id=booking.pk, channel="wechatpay").payment
    sandbox.faults_set(payment.order_no, refund_processing=True)
    sandbox.cashier_pay(payment.order_no)
    Booking.objects.filter(pk=booking.pk).update(status="expired")
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    assert Refund.objects.get(payment=payment).status == "processing"
    assert notifications.sandbox_messages(kind="late_payment_refunded") == []

    refunds.refunds_follow_up(now=_later())

    assert Refund.objects.get(payment=payment).status == "succeeded"
    assert len(notifications.sandbox_messages(kind="late_payment_refunded", channel="sms")) == 1
    assert _refund_messages() == []


# --- Refund queries at the adapters --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("channel", ["wechatpay", "alipay"])
def test_the_refund_query_reports_unknown_before_and_success_after(
    patient: User, refund_deliveries: list[tuple[str, str]], channel: str
) -> None:
    payment = _paid(patient, channel)
    gateway = gateway_for(channel, transport=client_transport())
    assert gateway.refund_query(order_no=payment.order_no, refund_no="RF-NEVER").state == "unknown"
    gateway.refund(
        order_no=payment.order_no, refund_no="RF-1", amount_fen=5000, total_fen=5000, reason="退号"
    )
    result = gateway.refund_query(order_no=payment.order_no, refund_no="RF-1")
    assert (result.state, result.amount_fen, result.refund_no) == ("success", 5000, "RF-1")


# --- WeChat Pay refund notifications -------------------------------------------------------------------


def _processing_refund(account: User) -> tuple[Payment, Refund]:
    payment = _paid(account, processing=True)
    sandbox.faults_set(payment.order_no, refund_stuck=True)  # only the notification will end it
    refund = _cancelled(account, payment)
    assert refund.status == "processing"
    return payment, refund


def _post(headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
    content_type = headers.pop("Content-Type")
    return Client().post(REFUND_NOTIFY_PATH, data=body, content_type=content_type, headers=headers)


@pytest.mark.django_db(transaction=True)
def test_a_refund_success_notification_ends_a_processing_refund_and_duplicates_are_harmless(
    patient: User, refund_deliveries: list[tuple[str, str]]
) -> None:
    payment, refund = _processing_refund(patient)
    assert sandbox.refund_complete(payment.order_no, refund.refund_no, "SUCCESS")
    sandbox.faults_set(payment.order_no, duplicate=True)

    assert sandbox.deliver_refund_notification(payment.order_no, refund.refund_no) == "delivered"
    assert sandbox.deliver_refund_notification(payment.order_no, refund.refund_no) == "delivered"

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    deliveries = sandbox.order_get(payment.order_no)["refunds"][refund.refund_no]["deliveries"]
    assert [d["status"] for d in deliveries] == [204, 204, 204, 204]
    assert len(_refund_messages()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_closed_notification_arriving_after_the_success_changes_nothing(
    patient: User, refund_deliveries: list[tuple[str, str]]
) -> None:
    payment, refund = _processing_refund(patient)
    sandbox.refund_complete(payment.order_no, refund.refund_no, "SUCCESS")
    late = sandbox.build_refund_notification(payment.order_no, refund.refund_no)
    closed = sandbox.build_refund_notification(
        payment.order_no, refund.refund_no, overrides={"refund_status": "CLOSED"}
    )
    assert _post(*late).status_code == 204
    assert _post(*closed).status_code == 204  # genuine, just out of date
    refund.refresh_from_db()
    assert refund.status == "succeeded"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["ABNORMAL", "CLOSED"])
def test_an_abnormal_or_closed_refund_is_marked_failed_for_staff(
    patient: User,
    refund_deliveries: list[tuple[str, str]],
    caplog,
    status: str,  # type: ignore[no-untyped-def]
) -> None:
    payment, refund = _processing_refund(patient)
    sandbox.refund_complete(payment.order_no, refund.refund_no, status)
    with caplog.at_level(logging.ERROR, logger="reservations.services.refunds"):
        assert sandbox.deliver_refund_notification(payment.order_no, refund.refund_no) == "delivered"
    refund.refresh_from_db()
    assert refund.status == "failed"
    assert "refund by hand" in caplog.text
    assert _refund_messages() == []
    assert sandbox.order_get(payment.order_no)["refunded_fen"] == 0  # the money did not move


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("fault", "overrides", "logged"),
    [
        ("forged_signature", {}, "bad signature"),
        (None, {"mchid": "1999999999"}, "another merchant"),
        (None, {"out_refund_no": "RF-NOT-OURS"}, "unknown refund"),
        (None, {"out_trade_no": "BK-ANOTHER-ORDER"}, "unknown refund"),
        ("wrong_amount", {}, "amount mismatch"),
        (None, {"amount": {"total": 9999, "refund": 5000, "payer_total": 9999, "payer_refund": 5000}},
         "amount mismatch"),
    ],
)  # fmt: skip
def test_a_forged_or_foreign_refund_notification_is_refused_and_changes_nothing(
    patient: User,
    refund_deliveries: list[tuple[str, str]],
    caplog,  # type: ignore[no-untyped-def]
    fault: str | None,
    overrides: dict[str, object],
    logged: str,
) -> None:
    payment, refund = _processing_refund(patient)
    sandbox.refund_complete(payment.order_no, refund.refund_no, "SUCCESS")
    faults = {**sandbox.faults_for(payment.order_no), **({fault: True} if fault else {})}
    with caplog.at_level(logging.WARNING):
        answer = _post(
            *sandbox.build_refund_notification(
                payment.order_no, refund.refund_no, faults=faults, overrides=overrides
            )
        )
    assert answer.status_code == 400 and answer.json() == {"code": "FAIL", "message": "失败"}
    assert logged in caplog.text
    refund.refresh_from_db()
    assert refund.status == "processing"
    assert _refund_messages() == []


@pytest.mark.django_db(transaction=True)
def test_a_payment_notification_is_not_taken_for_a_refund_notification(
    patient: User, refund_deliveries: list[tuple[str, str]]
) -> None:
    payment, refund = _processing_refund(patient)
    answer = _post(*sandbox.build_notification(payment.order_no))
    assert answer.status_code == 400
    refund.refresh_from_db()
    assert refund.status == "processing"


def test_alipay_has_no_refund_notification_to_accept(sandbox_mode) -> None:  # type: ignore[no-untyped-def]
    gateway = gateway_for(Channel.ALIPAY)
    with pytest.raises(ForgedNotification, match="no refund notifications"):
        gateway.parse_refund_notification(headers={}, body=b"out_trade_no=x")
    assert keys.alipay_config().app_id  # the sandbox's keys are in force


def test_the_beat_runs_the_refund_follow_up_and_the_daily_reconciliation(settings) -> None:  # type: ignore[no-untyped-def]
    from celery.schedules import crontab

    from reservations import tasks

    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["refunds-follow-up"] == {"task": "reservations.refunds_follow_up", "schedule": 600.0}
    bills = schedule["payments-reconcile-bills"]
    assert bills["task"] == "reservations.payments_reconcile_bills"
    assert bills["schedule"] == crontab(hour="10,12", minute=0)
    assert tasks.refunds_follow_up.name == "reservations.refunds_follow_up"
    assert tasks.payments_reconcile_bills.name == "reservations.payments_reconcile_bills"
