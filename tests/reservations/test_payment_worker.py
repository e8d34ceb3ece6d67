"""Payments through a real Celery worker on Redis and the gateway over real HTTP (#16.2, #16.4).

The live test server plays our site and the sandbox gateway; the adapters in this process and in the worker
talk to it over sockets with their real HTTP client (urllib), and a ``celery worker`` subprocess runs the
application's tasks: the sandbox's notification delivery (POSTed to our notify URL), ``refund_process``
(through the gateway's refund API), the messages, and the worker's heartbeat that /healthz reads.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from medcard.models import User
from reservations import services
from reservations.models import Booking, Payment, Refund
from reservations.payments.base import Channel, GatewayOrderState
from reservations.payments.gateways import gateway_for
from reservations.payments.sandbox import gateway as sandbox
from tests import factories
from tests.reservations.payment_worker import app_worker, sent_kinds, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _held(account: User) -> Booking:
    slot = factories.clinic_session(fee="50.00", capacity=3, days_ahead=1).slots.get()
    return services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )


def test_over_real_http_the_adapters_create_query_close_and_refund_at_the_sandbox(  # type: ignore[no-untyped-def]
    live_server, settings, tmp_path: Path
) -> None:
    """No test client anywhere: the adapters' own urllib transport to the sandbox app's views."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.PAYMENT_SANDBOX_KEY_DIR = tmp_path / "keys"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    notify = f"{live_server.url}/payments/notify/"
    for channel in (Channel.WECHATPAY, Channel.ALIPAY):
        gateway = gateway_for(channel)  # the default transport: urllib over a socket
        intent = gateway.create_order(
            order_no=f"H{channel[:2]}1", amount_fen=5000, description="挂号费",
            expires_at=timezone.now() + timedelta(minutes=15),
            notify_url=f"{notify}{channel}/", return_url=f"{live_server.url}/",
        )  # fmt: skip
        assert intent.pay_url.startswith(live_server.url)
        if channel == Channel.ALIPAY:  # Alipay opens the trade when the browser reaches the wap page
            with urllib.request.urlopen(intent.pay_url, timeout=10) as page:  # noqa: S310 (our live server)
                assert page.status == 200
        assert gateway.query(order_no=intent.order_no).state == GatewayOrderState.NOTPAY
        gateway.close(order_no=intent.order_no)
        assert gateway.query(order_no=intent.order_no).state == GatewayOrderState.CLOSED
        paid = gateway.create_order(
            order_no=f"H{channel[:2]}2", amount_fen=5000, description="挂号费",
            expires_at=timezone.now() + timedelta(minutes=15),
            notify_url=f"{notify}{channel}/", return_url=f"{live_server.url}/",
        )  # fmt: skip
        if channel == Channel.ALIPAY:
            urllib.request.urlopen(paid.pay_url, timeout=10).close()  # noqa: S310
        assert sandbox.cashier_pay(paid.order_no) == "paid"
        order = gateway.query(order_no=paid.order_no)
        assert (order.state, order.amount_fen) == (GatewayOrderState.PAID, 5000) and order.transaction_id
        refund = gateway.refund(
            order_no=paid.order_no, refund_no=f"R{channel[:2]}2", amount_fen=5000, total_fen=5000,
            reason="test", notify_url=f"{notify}{channel}/refund/",
        )  # fmt: skip
        assert (refund.state, refund.amount_fen) == ("success", 5000)
        assert gateway.refund_query(order_no=paid.order_no, refund_no=f"R{channel[:2]}2").state == "success"


def test_a_real_worker_delivers_the_paid_notification_and_refunds_a_cancelled_booking(  # type: ignore[no-untyped-def]
    live_server, settings, tmp_path: Path, patient: User
) -> None:
    with app_worker(live_url=live_server.url, settings=settings, var_dir=tmp_path):
        booking = _held(patient)
        started = services.payment_start(account=patient, booking_id=booking.pk, channel=Channel.WECHATPAY)
        payment = started.payment
        # The patient pays at the cashier; the gateway queues its notification in the broker, and only the
        # worker can deliver it (this process does not run tasks).
        assert sandbox.cashier_pay(payment.order_no) == "paid"
        wait_for(
            lambda: Booking.objects.get(pk=booking.pk).status == Booking.Status.BOOKED, 90, "the notification"
        )
        payment.refresh_from_db()
        assert payment.status == Payment.Status.PAID and payment.transaction_id
        # The worker records a delivery once our notify view has answered, a moment after the view committed
        # the booking: wait for the record rather than race it.
        deliveries = wait_for(
            lambda: sandbox.order_get(payment.order_no)["deliveries"], 30, "the delivery record"
        )
        assert deliveries[0]["status"] == 204  # POSTed over HTTP, answered by our notify view

        # Cancelling refunds: refund_process runs in the worker, through the gateway's refund API.
        services.booking_cancel(account=patient, booking_id=booking.pk, reason="patient")
        refund = wait_for(
            lambda: Refund.objects.filter(payment=payment, status=Refund.Status.SUCCEEDED).first(),
            90,
            "the refund",
        )
        assert refund.attempts >= 1
        assert sandbox.order_get(payment.order_no)["refunded_fen"] == 5000
        wait_for(lambda: "refunded" in sent_kinds(booking.pk), 30, "the refund message")
        assert sent_kinds(booking.pk) == {"booked", "cancelled", "refunded"}


def test_healthz_sees_a_real_workers_heartbeat(live_server, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def worker_check() -> dict[str, object]:
        with urllib.request.urlopen(f"{live_server.url}/healthz", timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())["worker"]  # type: ignore[no-any-return]

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with app_worker(live_url=live_server.url, settings=settings, var_dir=tmp_path):
        check = wait_for(lambda: (c := worker_check()).get("ok") and c, 90, "a heartbeat on /healthz")
        assert check["ok"] is True
