"""WeChat Pay API v3 through the sandbox gateway: every request signed and verified, every answer and
notification signed by the sandbox's platform key and verified by our adapter, all in-process."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone

from reservations.payments import keys
from reservations.payments.base import (
    Channel,
    ForgedNotification,
    GatewayError,
    GatewayOrderState,
    GatewayRejected,
    Notification,
    NotificationRejected,
    OrderPaid,
)
from reservations.payments.gateways import gateway_for
from reservations.payments.sandbox import gateway as sandbox
from reservations.payments.sandbox import tasks
from reservations.payments.wechatpay.client import WechatPayGateway
from tests.reservations.payment_transport import client_transport

pytestmark = pytest.mark.urls("tests.reservations.payment_test_urls")

NOTIFY_URL = "http://127.0.0.1:8000/payments/notify/wechatpay/"
RETURN_URL = "http://127.0.0.1:8000/appointments/42/"


@pytest.fixture
def gateway(received: list[Notification]) -> WechatPayGateway:
    built = gateway_for(Channel.WECHATPAY, transport=client_transport())
    assert isinstance(built, WechatPayGateway)
    return built


def _create(gateway: WechatPayGateway, order_no: str = "R20261128001", amount_fen: int = 2500) -> str:
    intent = gateway.create_order(
        order_no=order_no,
        amount_fen=amount_fen,
        description="内科 专家号 王医生",
        expires_at=timezone.now() + timedelta(minutes=15),
        notify_url=NOTIFY_URL,
        return_url=RETURN_URL,
    )
    assert intent.channel == "wechatpay" and intent.order_no == order_no
    return intent.pay_url


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _pay(pay_url: str) -> None:
    client = Client()
    page = client.get(_local(pay_url))
    assert page.status_code == 200
    answer = client.post(_local(pay_url), {"action": "pay", "redirect_url": page.context["redirect_url"]})
    assert answer.status_code == 302 and answer["Location"] == RETURN_URL


def test_a_patient_pays_at_the_cashier_and_we_receive_the_verified_notification(gateway, received) -> None:
    pay_url = _create(gateway)
    page = Client().get(_local(pay_url))
    assert "¥25.00" in page.content.decode()

    _pay(pay_url)

    [notification] = received
    order = sandbox.order_get("R20261128001")
    assert order is not None
    assert notification.channel == "wechatpay" and notification.paid
    assert notification.order_no == "R20261128001" and notification.amount_fen == 2500
    assert notification.transaction_id == order["transaction_id"] and notification.transaction_id.startswith(
        "42"
    )
    assert notification.merchant_id == keys.SANDBOX_MCHID and notification.app_id == keys.SANDBOX_APPID
    assert notification.raw_id == order["notification_id"] and notification.paid_at is not None
    assert [d["status"] for d in order["deliveries"]] == [204]


def test_query_follows_the_order_from_unpaid_to_paid(gateway) -> None:
    assert gateway.query(order_no="NEVER-CREATED").state == GatewayOrderState.UNKNOWN
    pay_url = _create(gateway, amount_fen=1)
    unpaid = gateway.query(order_no="R20261128001")
    assert (unpaid.state, unpaid.amount_fen, unpaid.transaction_id) == (GatewayOrderState.NOTPAY, 1, "")

    _pay(pay_url)

    paid = gateway.query(order_no="R20261128001")
    assert paid.state == GatewayOrderState.PAID and paid.amount_fen == 1
    assert paid.transaction_id and paid.paid_at is not None


def test_a_closed_order_cannot_be_paid_and_closing_again_is_harmless(gateway) -> None:
    pay_url = _create(gateway)
    gateway.close(order_no="R20261128001")
    gateway.close(order_no="R20261128001")
    gateway.close(order_no="NEVER-CREATED")

    client = Client()
    answer = client.post(_local(pay_url), {"action": "pay"})
    assert "can no longer be paid" in answer.content.decode()
    assert gateway.query(order_no="R20261128001").state == GatewayOrderState.CLOSED


def test_closing_a_paid_order_says_it_is_paid(gateway) -> None:
    _pay(_create(gateway))
    with pytest.raises(OrderPaid):
        gateway.close(order_no="R20261128001")


def test_an_expired_order_cannot_be_paid(gateway) -> None:
    pay_url = _create(gateway)
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        answer = Client().post(_local(pay_url), {"action": "pay"})
    assert "payment time is over" in answer.content.decode()
    assert gateway.query(order_no="R20261128001").state == GatewayOrderState.NOTPAY


def test_refund_is_idempotent_by_refund_number(gateway) -> None:
    _pay(_create(gateway, amount_fen=2500))

    first = gateway.refund(
        order_no="R20261128001", refund_no="RF1", amount_fen=1000, total_fen=2500, reason="退号"
    )
    again = gateway.refund(
        order_no="R20261128001", refund_no="RF1", amount_fen=1000, total_fen=2500, reason="退号"
    )

    assert first == again and (first.state, first.amount_fen) == ("success", 1000)
    order = sandbox.order_get("R20261128001")
    assert order is not None and order["refunded_fen"] == 1000
    rest = gateway.refund(
        order_no="R20261128001", refund_no="RF2", amount_fen=1500, total_fen=2500, reason=""
    )
    assert rest.state == "success"
    assert gateway.query(order_no="R20261128001").state == GatewayOrderState.REFUNDED
    too_much = gateway.refund(
        order_no="R20261128001", refund_no="RF3", amount_fen=1, total_fen=2500, reason=""
    )
    assert too_much.state == "failed"


def test_a_processing_refund_is_followed_by_asking_again(gateway) -> None:
    _pay(_create(gateway))
    sandbox.faults_set("R20261128001", refund_processing=True)
    first = gateway.refund(
        order_no="R20261128001", refund_no="RF1", amount_fen=2500, total_fen=2500, reason=""
    )
    later = gateway.refund(
        order_no="R20261128001", refund_no="RF1", amount_fen=2500, total_fen=2500, reason=""
    )
    assert (first.state, later.state) == ("processing", "success")


def test_the_sandbox_refuses_a_request_with_a_bad_signature(gateway) -> None:
    path = "/sandbox-gateway/wechatpay/v3/pay/transactions/out-trade-no/R1?mchid=" + keys.SANDBOX_MCHID
    unsigned = Client().get(path)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "SIGN_ERROR"

    impostor = WechatPayGateway(
        keys.WechatPayConfig(**{**gateway.config.__dict__, "merchant_private_key": keys.generate_rsa_key()}),
        transport=client_transport(),
    )
    with pytest.raises(GatewayRejected) as refused:
        impostor.query(order_no="R1")
    assert refused.value.code == "SIGN_ERROR"


def test_an_answer_without_a_valid_platform_signature_is_not_trusted(gateway) -> None:
    honest = client_transport()

    def tampering(method: str, url: str, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
        status, answer_headers, answer = honest(method, url, headers, body)
        return status, answer_headers, answer.replace(b"NOTPAY", b"SUCCESS")

    _create(gateway)
    with pytest.raises(GatewayError):
        WechatPayGateway(gateway.config, transport=tampering).query(order_no="R20261128001")


def test_an_unavailable_gateway_is_a_transient_error(gateway) -> None:
    sandbox.faults_set(None, unavailable=True)
    with pytest.raises(GatewayError):
        _create(gateway)

    def unreachable(method: str, url: str, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
        raise GatewayError("connection refused")

    with pytest.raises(GatewayError):
        WechatPayGateway(gateway.config, transport=unreachable).query(order_no="R1")


# --- Notifications --------------------------------------------------------------------------------------


def _notify(headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
    return Client().generic(
        "POST",
        "/payments/notify/wechatpay/",
        data=body,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )


@pytest.fixture
def paid_order(gateway, received, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """A paid order whose own delivery already happened; the tests then send crafted notifications."""
    _pay(_create(gateway))
    received.clear()
    return "R20261128001"


def test_our_notify_endpoint_answers_204_with_an_empty_body(paid_order, received) -> None:
    answer = _notify(*sandbox.build_notification(paid_order))
    assert answer.status_code == 204 and answer.content == b""
    assert len(received) == 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("forged_signature", "bad signature"), ("probe_signature", "probe signature (WECHATPAY/SIGNTEST)")],
)
def test_a_forged_or_probe_signature_changes_nothing(paid_order, received, fault, reason, caplog) -> None:
    faults = {**sandbox.faults_for(paid_order), fault: True}
    headers, body = sandbox.build_notification(paid_order, faults=faults)

    answer = _notify(headers, body)

    assert answer.status_code == 400 and answer.json() == {"code": "FAIL", "message": "失败"}
    assert received == []
    assert reason in caplog.text and "R20261128001" not in caplog.text


def test_a_notification_older_than_five_minutes_is_refused(paid_order, received, gateway) -> None:
    headers, body = sandbox.build_notification(paid_order)
    with (
        time_machine.travel(timezone.now() + timedelta(seconds=301)),
        pytest.raises(ForgedNotification) as refused,
    ):
        gateway.parse_notification(headers=headers, body=body)
    assert refused.value.reason == "stale timestamp"
    assert _notify(headers, body).status_code == 204  # the same one, on time, is fine


def test_a_tampered_body_is_refused(paid_order, received) -> None:
    headers, body = sandbox.build_notification(paid_order)
    tampered = json.loads(body)
    tampered["id"] = "another-id"
    answer = _notify(headers, json.dumps(tampered, ensure_ascii=False).encode())
    assert answer.status_code == 400 and received == []


@pytest.mark.parametrize("field", ["mchid", "appid"])
def test_a_notification_for_another_merchant_is_refused(paid_order, received, gateway, field) -> None:
    headers, body = sandbox.build_notification(paid_order, overrides={field: "1900000999"})
    with pytest.raises(ForgedNotification, match="another merchant"):
        gateway.parse_notification(headers=headers, body=body)
    assert _notify(headers, body).status_code == 400 and received == []


def test_a_resource_encrypted_with_another_key_is_refused(paid_order, received, gateway) -> None:
    headers, body = sandbox.build_notification(paid_order, apiv3_key=b"0" * 32)
    with pytest.raises(ForgedNotification, match="undecryptable"):
        gateway.parse_notification(headers=headers, body=body)
    assert _notify(headers, body).status_code == 400 and received == []


def test_missing_signature_headers_are_refused(paid_order, received) -> None:
    _headers, body = sandbox.build_notification(paid_order)
    assert _notify({}, body).status_code == 400 and received == []


def test_duplicate_delivery_reaches_the_service_twice(gateway, received) -> None:
    pay_url = _create(gateway)
    sandbox.faults_set("R20261128001", duplicate=True)
    _pay(pay_url)
    assert len(received) == 2 and received[0].raw_id == received[1].raw_id


def test_a_wrong_amount_is_passed_on_for_the_service_to_reject(gateway, received, monkeypatch) -> None:
    def reject(*, notification: Notification) -> None:
        received.append(notification)
        raise NotificationRejected("amount differs from the payment")

    monkeypatch.setattr("reservations.services.payment_notification_receive", reject, raising=False)
    pay_url = _create(gateway, amount_fen=2500)
    sandbox.faults_set("R20261128001", wrong_amount=True)

    _pay(pay_url)

    # Answered failure every time, so the provider retried on its whole schedule and then gave up.
    assert received[0].amount_fen == 2501
    order = sandbox.order_get("R20261128001")
    assert order is not None
    assert len(order["deliveries"]) == 1 + len(sandbox.WECHATPAY_RETRY_S)
    assert {d["status"] for d in order["deliveries"]} == {400}


def test_delivery_is_retried_on_the_wechat_schedule_until_it_succeeds(gateway, received, monkeypatch) -> None:
    answers = iter([500, 500, 500, 204])
    countdowns: list[float] = []

    def flaky(method: str, url: str, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
        return next(answers), {}, b""

    original_retry = tasks.sandbox_notification_deliver.retry

    def recording_retry(*args, **kwargs):  # type: ignore[no-untyped-def]
        countdowns.append(kwargs["countdown"])
        return original_retry(*args, **kwargs)

    monkeypatch.setattr(sandbox, "notify_transport", flaky)
    monkeypatch.setattr(sandbox, "RETRY_TIME_SCALE", 0.001)
    monkeypatch.setattr(tasks.sandbox_notification_deliver, "retry", recording_retry)

    _pay(_create(gateway))

    order = sandbox.order_get("R20261128001")
    assert order is not None and [d["status"] for d in order["deliveries"]] == [500, 500, 500, 204]
    assert countdowns == pytest.approx([0.015, 0.015, 0.03])


def test_a_held_notification_arrives_after_the_close_attempt(gateway, received) -> None:
    pay_url = _create(gateway)
    sandbox.faults_set("R20261128001", out_of_order=True)
    _pay(pay_url)
    assert received == []

    with pytest.raises(OrderPaid):
        gateway.close(order_no="R20261128001")

    assert [n.order_no for n in received] == ["R20261128001"]


def test_the_sandbox_cashier_is_only_for_sandbox_orders(received) -> None:
    assert Client().get("/sandbox-gateway/cashier/wechatpay/NOPE/").status_code == 404
    assert settings.PAYMENT_SANDBOX


def test_the_notify_endpoint_needs_no_csrf_token_or_sign_in(paid_order, received) -> None:
    headers, body = sandbox.build_notification(paid_order)
    answer = Client(enforce_csrf_checks=True).generic(
        "POST",
        "/payments/notify/wechatpay/",
        data=body,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )
    assert answer.status_code == 204 and len(received) == 1
    assert Client().get("/payments/notify/wechatpay/").status_code == 405
