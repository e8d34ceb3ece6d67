"""Alipay (RSA2) through the sandbox gateway: our requests signed with the app key and verified there, its
answers and notifications signed with the Alipay key and verified by our adapter, all in-process."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from reservations.payments import keys
from reservations.payments.alipay.client import AlipayGateway
from reservations.payments.alipay.signatures import sign_content
from reservations.payments.base import (
    Channel,
    ForgedNotification,
    GatewayError,
    GatewayOrderState,
    GatewayRejected,
    Notification,
    NotificationRejected,
    OrderPaid,
    rsa_verify,
)
from reservations.payments.gateways import gateway_for
from reservations.payments.sandbox import gateway as sandbox
from tests.reservations.payment_transport import client_transport

pytestmark = pytest.mark.urls("tests.reservations.payment_test_urls")

NOTIFY_URL = "http://127.0.0.1:8000/payments/notify/alipay/"
RETURN_URL = "http://127.0.0.1:8000/appointments/42/"
ORDER_NO = "R20261128002"


@pytest.fixture
def gateway(received: list[Notification]) -> AlipayGateway:
    built = gateway_for(Channel.ALIPAY, transport=client_transport())
    assert isinstance(built, AlipayGateway)
    return built


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _create(gateway: AlipayGateway, amount_fen: int = 2500) -> str:
    intent = gateway.create_order(
        order_no=ORDER_NO,
        amount_fen=amount_fen,
        description="内科 专家号 王医生",
        expires_at=timezone.now() + timedelta(minutes=15),
        notify_url=NOTIFY_URL,
        return_url=RETURN_URL,
    )
    assert intent.channel == "alipay" and intent.pay_url.startswith(gateway.config.gateway_url + "?")
    return intent.pay_url


def _open(pay_url: str) -> str:
    """The patient's browser opens the wap page: Alipay creates the trade and shows its cashier."""
    answer = Client().get(_local(pay_url))
    assert answer.status_code == 302
    return str(answer["Location"])


def _pay(pay_url: str) -> str:
    cashier = _open(pay_url)
    answer = Client().post(_local(cashier), {"action": "pay"})
    assert answer.status_code == 302
    return str(answer["Location"])


def test_a_patient_pays_at_the_cashier_and_we_receive_the_verified_notification(gateway, received) -> None:
    pay_url = _create(gateway, amount_fen=1999)
    cashier = _open(pay_url)
    assert "¥19.99" in Client().get(_local(cashier)).content.decode()

    back = _pay(pay_url)

    [notification] = received
    order = sandbox.order_get(ORDER_NO)
    assert order is not None
    assert notification.channel == "alipay" and notification.paid and notification.amount_fen == 1999
    assert notification.order_no == ORDER_NO and notification.transaction_id == order["transaction_id"]
    assert notification.app_id == keys.SANDBOX_ALIPAY_APP_ID
    assert notification.merchant_id == keys.SANDBOX_ALIPAY_SELLER_ID
    assert notification.raw_id == order["notification_id"] and notification.paid_at is not None
    assert [d["status"] for d in order["deliveries"]] == [200]
    # The patient comes back to our page with the signed synchronous parameters (informative only).
    assert back.startswith(RETURN_URL + "?")
    returned = dict(parse_qsl(urlsplit(back).query))
    assert returned["out_trade_no"] == ORDER_NO and returned["total_amount"] == "19.99"
    content = sign_content(returned, exclude=("sign", "sign_type")).encode()
    assert rsa_verify(gateway.config.alipay_public_key, content, returned["sign"])


def test_query_follows_the_trade_from_not_opened_to_paid(gateway) -> None:
    pay_url = _create(gateway)
    assert gateway.query(order_no=ORDER_NO).state == GatewayOrderState.UNKNOWN  # not opened yet
    _open(pay_url)
    assert gateway.query(order_no=ORDER_NO).state == GatewayOrderState.NOTPAY

    _pay(pay_url)

    paid = gateway.query(order_no=ORDER_NO)
    assert (paid.state, paid.amount_fen) == (GatewayOrderState.PAID, 2500)
    assert paid.transaction_id and paid.paid_at is not None


def test_closing_is_idempotent_and_a_closed_trade_cannot_be_paid(gateway) -> None:
    pay_url = _create(gateway)
    gateway.close(order_no=ORDER_NO)  # never opened: nothing to close, fine
    cashier = _open(pay_url)
    gateway.close(order_no=ORDER_NO)
    gateway.close(order_no=ORDER_NO)

    answer = Client().post(_local(cashier), {"action": "pay"})

    assert "can no longer be paid" in answer.content.decode()
    assert gateway.query(order_no=ORDER_NO).state == GatewayOrderState.CLOSED


def test_closing_a_paid_trade_says_it_is_paid(gateway) -> None:
    _pay(_create(gateway))
    with pytest.raises(OrderPaid):
        gateway.close(order_no=ORDER_NO)


def test_refund_is_idempotent_by_refund_number(gateway) -> None:
    _pay(_create(gateway, amount_fen=2500))

    first = gateway.refund(order_no=ORDER_NO, refund_no="RF1", amount_fen=2500, total_fen=2500, reason="停诊")
    again = gateway.refund(order_no=ORDER_NO, refund_no="RF1", amount_fen=2500, total_fen=2500, reason="停诊")

    assert first == again and (first.state, first.amount_fen) == ("success", 2500)
    order = sandbox.order_get(ORDER_NO)
    assert order is not None and order["refunded_fen"] == 2500 and len(order["refunds"]) == 1
    more = gateway.refund(order_no=ORDER_NO, refund_no="RF2", amount_fen=1, total_fen=2500, reason="")
    assert more.state == "failed"


def test_the_sandbox_refuses_a_request_with_a_bad_signature(gateway) -> None:
    impostor = AlipayGateway(
        keys.AlipayConfig(**{**gateway.config.__dict__, "app_private_key": keys.generate_rsa_key()}),
        transport=client_transport(),
    )
    with pytest.raises(GatewayRejected) as refused:
        impostor.query(order_no=ORDER_NO)
    assert refused.value.code == "isv.invalid-signature"

    forged_page = impostor.create_order(
        order_no=ORDER_NO, amount_fen=1, description="x", expires_at=timezone.now() + timedelta(minutes=5),
        notify_url=NOTIFY_URL, return_url=RETURN_URL,
    )  # fmt: skip
    assert Client().get(_local(forged_page.pay_url)).status_code == 401
    assert sandbox.order_get(ORDER_NO) is None


def test_a_tampered_payment_page_is_refused(gateway) -> None:
    pay_url = _create(gateway, amount_fen=2500)
    tampered = pay_url.replace("25.00", "0.01")
    assert tampered != pay_url
    assert Client().get(_local(tampered)).status_code == 401


def test_an_answer_with_a_bad_signature_is_not_trusted(gateway) -> None:
    honest = client_transport()

    def tampering(method: str, url: str, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
        status, answer_headers, answer = honest(method, url, headers, body)
        return status, answer_headers, answer.replace(b"WAIT_BUYER_PAY", b"TRADE_SUCCESS")

    _open(_create(gateway))
    with pytest.raises(GatewayError):
        AlipayGateway(gateway.config, transport=tampering).query(order_no=ORDER_NO)


def test_an_unavailable_gateway_is_a_transient_error(gateway) -> None:
    sandbox.faults_set(None, unavailable=True)
    with pytest.raises(GatewayError):
        gateway.query(order_no=ORDER_NO)


# --- Notifications --------------------------------------------------------------------------------------


def _notify(body: bytes):  # type: ignore[no-untyped-def]
    return Client().post(
        "/payments/notify/alipay/", data=body, content_type="application/x-www-form-urlencoded"
    )


@pytest.fixture
def paid_order(gateway, received) -> str:  # type: ignore[no-untyped-def]
    _pay(_create(gateway))
    received.clear()
    return ORDER_NO


def test_our_notify_endpoint_answers_exactly_success(paid_order, received) -> None:
    _headers, body = sandbox.build_notification(paid_order)
    answer = _notify(body)
    assert answer.status_code == 200 and answer.content == b"success"
    assert len(received) == 1


def test_a_forged_signature_changes_nothing(paid_order, received, caplog) -> None:
    _headers, body = sandbox.build_notification(
        paid_order, faults={**sandbox.faults_for(), "forged_signature": True}
    )
    answer = _notify(body)
    assert answer.content == b"fail" and received == []
    assert "bad signature" in caplog.text and ORDER_NO not in caplog.text


@pytest.mark.parametrize(("field", "value"), [("total_amount", "0.01"), ("trade_status", "TRADE_SUCCESS ")])
def test_a_tampered_body_is_refused(paid_order, received, field, value) -> None:
    _headers, body = sandbox.build_notification(paid_order)
    fields = dict(parse_qsl(body.decode()))
    fields[field] = value
    assert _notify(urlencode(fields).encode()).content == b"fail" and received == []


def test_sign_type_is_left_out_of_the_signed_content(paid_order, received, gateway) -> None:
    _headers, body = sandbox.build_notification(paid_order)
    fields = dict(parse_qsl(body.decode()))
    fields["sign_type"] = "RSA"  # not covered by the signature, but we accept RSA2 only
    with pytest.raises(ForgedNotification, match="RSA2"):
        gateway.parse_notification(headers={}, body=urlencode(fields).encode())


@pytest.mark.parametrize("field", ["app_id", "seller_id"])
def test_a_notification_for_another_app_or_seller_is_refused(paid_order, received, gateway, field) -> None:
    _headers, body = sandbox.build_notification(paid_order, overrides={field: "2088999999999999"})
    with pytest.raises(ForgedNotification, match=f"another {field}"):
        gateway.parse_notification(headers={}, body=body)
    assert _notify(body).content == b"fail" and received == []


def test_duplicate_delivery_reaches_the_service_twice(gateway, received) -> None:
    pay_url = _create(gateway)
    sandbox.faults_set(ORDER_NO, duplicate=True)
    _pay(pay_url)
    assert len(received) == 2 and received[0].raw_id == received[1].raw_id


def test_a_rejected_notification_is_answered_fail_and_retried_on_the_alipay_schedule(
    gateway, received, monkeypatch
):  # type: ignore[no-untyped-def]
    def reject(*, notification: Notification) -> None:
        received.append(notification)
        raise NotificationRejected("unknown order")

    monkeypatch.setattr("reservations.services.payment_notification_receive", reject, raising=False)
    _pay(_create(gateway))

    order = sandbox.order_get(ORDER_NO)
    assert order is not None and len(order["deliveries"]) == 1 + len(sandbox.ALIPAY_RETRY_S) == 8
    assert len(received) == 8


def test_anything_but_exactly_success_counts_as_a_failed_delivery(gateway, received, monkeypatch) -> None:
    answers = iter([b"success\n", b"SUCCESS", b"success"])
    monkeypatch.setattr(
        sandbox, "notify_transport", lambda method, url, headers, body: (200, {}, next(answers))
    )
    _pay(_create(gateway))
    order = sandbox.order_get(ORDER_NO)
    assert order is not None and len(order["deliveries"]) == 3


def test_a_closed_trade_notification_is_genuine_but_not_a_payment(paid_order, received, gateway) -> None:
    _headers, body = sandbox.build_notification(paid_order, overrides={"trade_status": "TRADE_CLOSED"})
    notification = gateway.parse_notification(headers={}, body=body)
    assert notification.paid is False and notification.order_no == ORDER_NO
    answer = Client(enforce_csrf_checks=True).post(
        "/payments/notify/alipay/", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert answer.content == b"success" and received[-1].paid is False
