"""The sandbox gateway itself: its keys, order book, bill, fault switches, cashier page and delivery task."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from reservations.payments import keys
from reservations.payments.base import Channel, GatewayRejected
from reservations.payments.gateways import gateway_for
from reservations.payments.sandbox import gateway as sandbox
from reservations.payments.sandbox import tasks
from reservations.payments.wechatpay.client import WechatPayGateway
from reservations.payments.wechatpay.signatures import CHINA
from tests.reservations.payment_transport import client_transport

pytestmark = pytest.mark.urls("tests.reservations.payment_test_urls")

NOTIFY_URL = "http://127.0.0.1:8000/payments/notify/wechatpay/"
RETURN_URL = "http://127.0.0.1:8000/appointments/42/"
CELERY_ENQUEUE = sandbox.enqueue_delivery  # the real one, before the fixtures replace it


@pytest.fixture
def enqueued(sandbox_mode, monkeypatch) -> Iterator[list[tuple[str, float]]]:  # type: ignore[no-untyped-def]
    """Sandbox mode; deliveries are recorded (order number, countdown) instead of run."""
    calls: list[tuple[str, float]] = []
    monkeypatch.setattr(
        sandbox, "enqueue_delivery", lambda order_no, countdown_s: calls.append((order_no, countdown_s))
    )
    monkeypatch.setattr(
        "reservations.services.payment_notification_receive", lambda *, notification: None, raising=False
    )
    yield calls


@pytest.fixture
def wechat(enqueued) -> WechatPayGateway:  # type: ignore[no-untyped-def]
    built = gateway_for(Channel.WECHATPAY, transport=client_transport())
    assert isinstance(built, WechatPayGateway)
    return built


def _create(gateway: WechatPayGateway, order_no: str, amount_fen: int = 2500) -> str:
    return gateway.create_order(
        order_no=order_no, amount_fen=amount_fen, description="超声检查", notify_url=NOTIFY_URL,
        expires_at=timezone.now() + timedelta(minutes=15), return_url=RETURN_URL,
    ).pay_url  # fmt: skip


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- Keys -----------------------------------------------------------------------------------------------


def test_sandbox_keys_are_generated_once_and_shared_by_every_process(settings, tmp_path: Path) -> None:
    settings.PAYMENT_SANDBOX = True
    settings.PAYMENT_SANDBOX_KEY_DIR = tmp_path / "keys"
    first = keys.wechatpay_config()
    key_file = tmp_path / "keys" / keys.SANDBOX_KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    # Another process (the worker) starts with empty in-memory caches and reads the same file.
    for cached in (keys._sandbox_material, keys._sandbox_wechatpay, keys._sandbox_alipay):
        cached.cache_clear()
    second = keys.wechatpay_config()

    assert second.platform_public_key_id == first.platform_public_key_id
    assert second.platform_public_key_id.startswith("PUB_KEY_ID_")
    assert second.apiv3_key == first.apiv3_key and len(second.apiv3_key) == 32
    assert second.merchant_public_key is not None and first.merchant_public_key is not None
    assert second.merchant_public_key.public_numbers() == first.merchant_public_key.public_numbers()
    assert second.api_base == "http://127.0.0.1:8000/sandbox-gateway/wechatpay"
    assert keys.alipay_config().gateway_url == "http://127.0.0.1:8000/sandbox-gateway/alipay/gateway.do"


def test_outside_the_sandbox_the_configured_credentials_are_used(settings) -> None:
    merchant, platform = keys.generate_rsa_key(), keys.generate_rsa_key()
    public_pem = (
        platform.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings.PAYMENT_SANDBOX = False
    settings.WECHATPAY = {
        "mchid": "1230000109",
        "appid": "wxd678efh567hg6787",
        "merchant_serial": "5157F09EFDC096DE15EBE81A47057A72",
        "merchant_private_key_pem": keys.private_pem(merchant),
        "platform_public_key_id": "PUB_KEY_ID_0114",
        "platform_public_key_pem": public_pem,
        "apiv3_key": "a" * 32,
        "api_base": "https://api.mch.weixin.qq.com",
    }
    config = keys.wechatpay_config()
    assert (config.mchid, config.api_base, config.platform_private_key) == (
        "1230000109",
        "https://api.mch.weixin.qq.com",
        None,
    )

    settings.WECHATPAY = {**settings.WECHATPAY, "apiv3_key": "too short"}
    with pytest.raises(ImproperlyConfigured, match="32 characters"):
        keys.wechatpay_config()


# --- Order book, bill, switches -------------------------------------------------------------------------


def test_an_order_number_cannot_be_reused_for_another_amount(wechat) -> None:
    first = _create(wechat, "R1", 2500)
    assert _create(wechat, "R1", 2500).split("?")[0] == first.split("?")[0]  # the same order again
    with pytest.raises(GatewayRejected) as refused:
        _create(wechat, "R1", 100)
    assert refused.value.code == "OUT_TRADE_NO_USED"


def test_the_bill_lists_the_days_payments_with_their_refunds(wechat) -> None:
    for order_no, amount_fen in (("R1", 2500), ("R2", 5000), ("R3", 800)):
        _create(wechat, order_no, amount_fen)
    for order_no in ("R1", "R2"):
        assert sandbox.cashier_pay(order_no) == "paid"
    wechat.refund(order_no="R2", refund_no="RF2", amount_fen=5000, total_fen=5000, reason="停诊")

    rows = sandbox.bill(timezone.now().astimezone(CHINA).date())

    assert sorted((r["order_no"], r["amount_fen"], r["state"], r["refunded_fen"]) for r in rows) == [
        ("R1", 2500, "paid", 0),
        ("R2", 5000, "refunded", 5000),
    ]
    assert all(r["transaction_id"] and r["channel"] == "wechatpay" for r in rows)
    assert sandbox.bill(timezone.now().astimezone(CHINA).date() - timedelta(days=1)) == []


def test_fault_switches_apply_per_order_over_the_global_ones() -> None:
    sandbox.faults_set(None, duplicate=True, delay_s=30)
    sandbox.faults_set("R1", duplicate=False)
    assert (sandbox.faults_for("R1")["duplicate"], sandbox.faults_for("R1")["delay_s"]) == (False, 30)
    assert sandbox.faults_for("R2")["duplicate"] is True
    sandbox.faults_clear(None)
    assert sandbox.faults_for("R2") == sandbox.FAULT_DEFAULTS
    with pytest.raises(ValueError, match="unknown sandbox fault"):
        sandbox.faults_set("R1", explode=True)


def test_a_delayed_notification_is_scheduled_with_its_delay(wechat, enqueued) -> None:
    _create(wechat, "R1")
    sandbox.faults_set("R1", delay_s=90)
    sandbox.cashier_pay("R1")
    assert enqueued == [("R1", 90.0)]


def test_without_a_test_hook_delivery_goes_through_celery(wechat, monkeypatch) -> None:
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(
        tasks.sandbox_notification_deliver, "apply_async", lambda **kwargs: sent.append(kwargs)
    )
    CELERY_ENQUEUE("R1", 15.0)
    assert sent == [{"args": ("R1",), "countdown": 15.0}]


def test_the_delivery_task_gives_up_where_the_provider_does(wechat, monkeypatch) -> None:
    _create(wechat, "R1")
    sandbox.cashier_pay("R1")
    monkeypatch.setattr(sandbox, "notify_transport", lambda method, url, headers, body: (503, {}, b""))

    outcome = tasks.sandbox_notification_deliver.apply(args=("R1",))

    order = sandbox.order_get("R1")
    assert order is not None and len(order["deliveries"]) == 16
    assert outcome.get() == "gave-up"
    assert sandbox.deliver_notification("NOPE") == "nothing"


def test_retry_countdowns_follow_the_providers_schedules(monkeypatch, wechat) -> None:
    monkeypatch.setattr(sandbox, "RETRY_TIME_SCALE", 1.0)
    _create(wechat, "R1")
    wechat_waits = [sandbox.retry_countdown_s("R1", n) for n in range(16)]
    assert wechat_waits[:4] == [15, 15, 30, 180] and wechat_waits[-1] is None
    assert sum(w for w in wechat_waits if w) == 24 * 3600 + 4 * 60  # "总计 24h4m"
    assert [sandbox.retry_countdown_s("ALIPAY-ORDER", n) for n in range(8)] == [
        240, 600, 600, 3600, 7200, 21600, 54000, None,
    ]  # fmt: skip


# --- Cashier page ---------------------------------------------------------------------------------------


def test_the_cashier_shows_the_amount_in_yuan_with_pay_and_cancel(wechat) -> None:
    pay_url = _create(wechat, "R1", 12345)
    page = Client().get(_local(pay_url)).content.decode()
    assert "¥123.45" in page and 'value="pay"' in page and 'value="cancel"' in page
    assert "no real money" in page


def test_the_cashier_speaks_chinese_too(wechat) -> None:
    pay_url = _create(wechat, "R1", 12345)
    page = Client(headers={"accept-language": "zh-hans"}).get(_local(pay_url))
    assert page.status_code == 200 and "¥123.45" in page.content.decode()


def test_cancel_goes_back_without_paying(wechat, enqueued) -> None:
    pay_url = _create(wechat, "R1")
    answer = Client().post(_local(pay_url), {"action": "cancel"})
    assert answer.status_code == 302 and answer["Location"] == RETURN_URL
    assert sandbox.order_get("R1")["state"] == "notpay"  # type: ignore[index]
    assert enqueued == []


def test_the_cashier_returns_only_to_our_own_site(wechat) -> None:
    pay_url = _create(wechat, "R1")
    answer = Client().post(_local(pay_url), {"action": "pay", "redirect_url": "https://evil.example/steal"})
    assert answer.status_code == 200 and "Paid." in answer.content.decode()


def test_sandbox_options_from_the_cashier_page(wechat, desk) -> None:
    pay_url = _create(wechat, "R1")
    Client().post(_local(pay_url), {"action": "options", "duplicate": "on", "delay_s": "5", "scope": "order"})
    assert sandbox.faults_for("R1")["duplicate"] is True and sandbox.faults_for("R1")["delay_s"] == 5.0
    assert sandbox.faults_for("R2")["duplicate"] is False

    staff = Client()
    staff.force_login(desk)
    staff.post(_local(pay_url), {"action": "options", "wrong_amount": "on", "scope": "all"})
    assert sandbox.faults_for("R2")["wrong_amount"] is True


def test_only_staff_can_flip_the_sandbox_switches_for_all_orders(wechat, patient) -> None:
    """#14.14: the global fault switches change every patient's payments on a training system."""
    pay_url = _create(wechat, "R1")
    outsider = Client()
    outsider.force_login(patient)
    for client in (Client(), outsider):
        answer = client.post(_local(pay_url), {"action": "options", "unavailable": "on", "scope": "all"})
        assert answer.status_code == 403
        assert "Only staff can change the options for all orders." in answer.content.decode()
        assert sandbox.faults_for("R2")["unavailable"] is False
        assert sandbox.faults_for("R1")["unavailable"] is False
    page = Client().get(_local(pay_url)).content.decode()
    assert 'value="all"' not in page and "staff can set them for all orders" in page


def test_an_alipay_trade_past_its_time_expire_cannot_be_paid(enqueued) -> None:
    gateway = gateway_for(Channel.ALIPAY, transport=client_transport())
    intent = gateway.create_order(
        order_no="A1", amount_fen=100, description="检验", expires_at=timezone.now() + timedelta(minutes=1),
        notify_url="http://127.0.0.1:8000/payments/notify/alipay/", return_url=RETURN_URL,
    )  # fmt: skip
    cashier = Client().get(_local(intent.pay_url))["Location"]
    order = sandbox.order_get("A1")
    assert order is not None
    order["expires_at"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    sandbox._order_put(order)

    answer = Client().post(_local(cashier), {"action": "pay"})

    assert "payment time is over" in answer.content.decode() and enqueued == []
