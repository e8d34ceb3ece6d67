"""Paying for a held number end to end: our adapters, the sandbox gateway's real protocols, our notify views,
the booking services. Everything runs in this process (the sandbox transport is Django's test client)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.utils import timezone, translation

from core.errors import AppError
from hospital.celery import app as celery_app
from medcard.models import User
from reservations import notifications, services
from reservations.models import Booking, Payment, Refund
from reservations.payments import gateways
from reservations.payments.sandbox import gateway as sandbox
from tests import factories
from tests.reservations.payment_transport import client_transport


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Route gateway calls and notifications in-process; collect the orders whose notifications are due."""
    transport = client_transport(Client())
    monkeypatch.setattr(
        "reservations.services.payments.gateway_for",
        functools.partial(gateways.gateway_for, transport=transport),
    )
    monkeypatch.setattr(sandbox, "notify_transport", transport)
    due: list[str] = []
    monkeypatch.setattr(sandbox, "enqueue_delivery", lambda order_no, countdown_s: due.append(order_no))
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # refunds and messages run inline
    sandbox.faults_clear()
    yield due


def _held(account: User, fee: str = "50.00") -> Booking:
    slot = factories.clinic_session(fee=fee, capacity=3).slots.get()
    return services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )


def _pay(account: User, booking: Booking, channel: str) -> Payment:
    started = services.payment_start(account=account, booking_id=booking.pk, channel=channel)
    assert "/sandbox-gateway/cashier/" in started.pay_url or "/sandbox-gateway/alipay/" in started.pay_url
    return started.payment


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("channel", ["wechatpay", "alipay"])
def test_paying_at_the_cashier_books_the_number(patient: User, gateway: list[str], channel: str) -> None:
    booking = _held(patient)
    payment = _pay(patient, booking, channel)
    if channel == "alipay":  # Alipay opens the trade when the patient's browser reaches the page
        Client().get(services.payment_start(account=patient, booking_id=booking.pk, channel=channel).pay_url)
    assert sandbox.cashier_pay(payment.order_no) == "paid"
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    booking.refresh_from_db()
    payment.refresh_from_db()
    assert (booking.status, payment.status) == ("booked", "paid")
    assert payment.transaction_id
    assert notifications.sandbox_messages(kind="booked")


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_notification_is_harmless(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    payment = _pay(patient, booking, "wechatpay")
    sandbox.faults_set(payment.order_no, duplicate=True)
    sandbox.cashier_pay(payment.order_no)
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    assert Payment.objects.filter(booking=booking, status="paid").count() == 1
    assert not Refund.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fault", ["forged_signature", "probe_signature", "wrong_amount"])
def test_a_bad_notification_changes_nothing(patient: User, gateway: list[str], fault: str) -> None:
    booking = _held(patient)
    payment = _pay(patient, booking, "wechatpay")
    sandbox.faults_set(payment.order_no, **{fault: True})
    sandbox.cashier_pay(payment.order_no)
    assert sandbox.deliver_notification(payment.order_no) == "refused"
    booking.refresh_from_db()
    payment.refresh_from_db()
    assert (booking.status, payment.status) == ("held", "created")


@pytest.mark.django_db(transaction=True)
def test_a_lost_notification_is_found_by_asking_the_gateway(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    payment = _pay(patient, booking, "wechatpay")
    sandbox.cashier_pay(payment.order_no)  # the notification never arrives
    assert services.payments_reconcile_unknown(now=timezone.now() + timedelta(minutes=6)) == 1
    booking.refresh_from_db()
    assert booking.status == "booked"


@pytest.mark.django_db(transaction=True)
def test_expiry_closes_the_gateway_order_before_releasing_the_number(
    patient: User, gateway: list[str]
) -> None:
    booking = _held(patient)
    payment = _pay(patient, booking, "wechatpay")
    assert services.holds_expire_due(now=booking.hold_expires_at + timedelta(seconds=1)) == 1
    payment.refresh_from_db()
    booking.refresh_from_db()
    assert (booking.status, payment.status) == ("expired", "closed")
    assert sandbox.order_get(payment.order_no)["state"] == "closed"
    assert sandbox.cashier_pay(payment.order_no) == "closed"  # the patient can no longer pay it


@pytest.mark.django_db(transaction=True)
def test_a_payment_that_lands_after_expiry_is_refunded_and_the_patient_told(
    patient: User, gateway: list[str]
) -> None:
    booking = _held(patient)
    payment = _pay(patient, booking, "alipay")
    Client().get(services.payment_start(account=patient, booking_id=booking.pk, channel="alipay").pay_url)
    sandbox.cashier_pay(payment.order_no)
    # The sweeper expires the hold while the notification is still on its way (its query fails meanwhile).
    Booking.objects.filter(pk=booking.pk).update(status="expired")
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    payment.refresh_from_db()
    refund = Refund.objects.get(payment=payment)
    assert payment.status == "refunded" and refund.status == "succeeded"
    assert sandbox.order_get(payment.order_no)["refunded_fen"] == 5000
    assert notifications.sandbox_messages(kind="late_payment_refunded")


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_paid_booking_refunds_once(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    payment = _pay(patient, booking, "wechatpay")
    sandbox.cashier_pay(payment.order_no)
    sandbox.deliver_notification(payment.order_no)
    services.booking_cancel(account=patient, booking_id=booking.pk)
    refund = Refund.objects.get(payment=payment)
    assert refund.status == "succeeded" and refund.amount == Decimal("50.00")
    assert services.refund_process(refund_id=refund.pk) == "succeeded"  # asked again: nothing more moves
    assert sandbox.order_get(payment.order_no)["refunded_fen"] == 5000
    page = Client()
    page.force_login(patient)
    html = page.get(f"/booking/appointments/{booking.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Cancelled" in html and "refunded" in html


@pytest.mark.django_db(transaction=True)
def test_the_daily_reconciliation_lists_every_difference(
    patient: User, outsider: User, gateway: list[str]
) -> None:
    ours = _pay(patient, _held(patient), "wechatpay")
    sandbox.cashier_pay(ours.order_no)
    sandbox.deliver_notification(ours.order_no)
    unheard = _pay(outsider, _held(outsider), "wechatpay")
    sandbox.cashier_pay(unheard.order_no)  # paid at the gateway, notification lost
    bill = sandbox.bill(timezone.localdate())
    lines = services.payments_reconcile_day(
        channel="wechatpay", bill=bill, day_payments=list(Payment.objects.all())
    )
    assert [(line.order_no, line.problem) for line in lines] == [(unheard.order_no, "paid_at_gateway_only")]


@pytest.mark.django_db(transaction=True)
def test_the_pay_page_sends_the_patient_to_the_cashier(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    client = Client()
    client.force_login(patient)
    response = client.post(f"/booking/appointments/{booking.pk}/pay/", {"channel": "wechatpay"})
    assert response.status_code == 302 and "/sandbox-gateway/cashier/wechatpay/" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_a_second_payment_of_a_booked_number_is_refunded_and_the_patient_told_the_booking_stands(
    patient: User, desk: User, gateway: list[str]
) -> None:
    """The patient paid online; before the notification arrived, the front desk took the fee in cash. The
    online payment is the second one: refunded, and the message says so (not "the number was released")."""
    notifications.outbox.clear()
    booking = _held(patient)
    payment = _pay(patient, booking, "wechatpay")
    sandbox.cashier_pay(payment.order_no)
    services.desk_payment_record(staff=desk, booking_id=booking.pk)
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    booking.refresh_from_db()
    payment.refresh_from_db()
    assert booking.status == "booked" and payment.status == "refunded"
    assert Refund.objects.get(payment=payment).status == "succeeded"
    assert Payment.objects.filter(booking=booking, status="paid").count() == 1  # exactly one charge stands
    [message] = notifications.sandbox_messages(kind="duplicate_payment_refunded", channel="sms")
    assert "重复支付的50.00元已原路退回" in message.text and "预约仍然有效" in message.text
    assert not notifications.sandbox_messages(kind="late_payment_refunded")
    client = Client()
    client.force_login(patient)
    with translation.override("en"):
        page = client.get(f"/booking/appointments/{booking.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "The second payment has been refunded" in page and "your appointment stands" in page


@pytest.mark.django_db(transaction=True)
def test_starting_another_channel_closes_the_open_order_first(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    first = _pay(patient, booking, "wechatpay")
    second = _pay(patient, booking, "alipay")
    first.refresh_from_db()
    assert first.status == "closed" and sandbox.order_get(first.order_no)["state"] == "closed"
    assert sandbox.cashier_pay(first.order_no) == "closed"  # the first cashier can no longer take money
    assert second.status == "created"


@pytest.mark.django_db(transaction=True)
def test_starting_another_channel_after_paying_books_the_number_and_refuses(
    patient: User, gateway: list[str]
) -> None:
    booking = _held(patient)
    paid = _pay(patient, booking, "wechatpay")
    sandbox.cashier_pay(paid.order_no)  # its notification has not arrived yet
    with pytest.raises(AppError) as refused:
        services.payment_start(account=patient, booking_id=booking.pk, channel="alipay")
    assert refused.value.code == "not_payable" and "已支付" in str(refused.value.message)
    booking.refresh_from_db()
    assert booking.status == "booked"
    assert not Payment.objects.filter(booking=booking, channel="alipay").exists()
    assert not Refund.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_return_page_checks_until_the_gateway_answers_then_books(
    patient: User, gateway: list[str]
) -> None:
    """No notification at all: the page says "checking" for a few seconds, then asks the gateway itself."""
    booking = _held(patient)
    payment = _pay(patient, booking, "wechatpay")
    sandbox.cashier_pay(payment.order_no)
    client = Client()
    client.force_login(patient)
    status_url = f"/booking/appointments/{booking.pk}/payment-status/"
    with time_machine.travel(timezone.now(), tick=False) as clock:
        page = client.get(f"/booking/appointments/{booking.pk}/?checking=1").content.decode()
        assert 'data-testid="payment-checking"' in page and 'name="channel"' not in page
        assert client.get(status_url).json() == {"state": "checking"}
        clock.shift(6)
        assert client.get(status_url).json() == {"state": "booked"}
    booking.refresh_from_db()
    assert booking.status == "booked"


@pytest.mark.django_db(transaction=True)
def test_the_return_page_says_when_nothing_was_paid(patient: User, gateway: list[str]) -> None:
    booking = _held(patient)
    _pay(patient, booking, "alipay")  # the patient left the cashier without paying
    client = Client()
    client.force_login(patient)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.get(f"/booking/appointments/{booking.pk}/?checking=1")
        clock.shift(6)
        page = client.get(f"/booking/appointments/{booking.pk}/?checking=1").content.decode()
    assert 'data-testid="payment-not-received"' in page and 'name="channel"' in page


@pytest.mark.django_db(transaction=True)
def test_the_payment_status_is_the_account_holders_alone(
    patient: User, outsider: User, gateway: list[str]
) -> None:
    booking = _held(patient)
    client = Client()
    client.force_login(outsider)
    assert client.get(f"/booking/appointments/{booking.pk}/payment-status/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_cancelling_asks_for_confirmation_and_only_the_account_holder_sees_it(
    patient: User, outsider: User, gateway: list[str]
) -> None:
    booking = _held(patient)
    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.get(f"/booking/appointments/{booking.pk}/cancel/").status_code == 404
    client = Client()
    client.force_login(patient)
    page = client.get(f"/booking/appointments/{booking.pk}/cancel/").content.decode()
    assert 'data-testid="cancel-confirm"' in page
    booking.refresh_from_db()
    assert booking.status == "held"  # looking at the confirmation changes nothing
    client.post(f"/booking/appointments/{booking.pk}/cancel/")
    booking.refresh_from_db()
    assert booking.status == "cancelled"
