"""The paying journey on a phone with a REAL Celery worker delivering the gateway's notifications (#11
"Paying", #16.3): with eager tasks the notification is delivered inside the cashier request, so the page the
patient returns to could never be seen stale. Here the worker delivers it seconds later, as in production.

Needs PostgreSQL (the worker shares the test database), Redis and Debian's chromium.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from core.clock import HOSPITAL_TZ, local_today
from medcard.models import User
from reservations import notifications, services
from reservations.models import Booking, Payment, Refund
from reservations.payments.sandbox import gateway as sandbox
from tests import factories
from tests.browser.conftest import PHONE
from tests.reservations.payment_worker import app_worker, sent_kinds, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHECKING = "正在确认支付结果…"


def _phone(browser: Browser, live_url: str, account: User, *, javascript: bool = True) -> Page:
    client = Client()
    client.force_login(account)
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, locale="zh-CN", java_script_enabled=javascript
    )
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_url}])
    return context.new_page()


def _held(account: User, days_ahead: int = 1) -> Booking:
    slot = factories.clinic_session(capacity=4, fee="50.00", days_ahead=days_ahead).slots.get()
    return services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )


def _pay_at_cashier(page: Page, *, delay_s: int) -> None:
    """At the sandbox cashier: hold this order's notification back a few seconds (its own option), pay."""
    expect(page).to_have_url(re.compile("/sandbox-gateway/cashier/"))
    page.get_by_text("沙箱选项").click()
    page.get_by_label("延迟发送通知（秒）").fill(str(delay_s))
    page.get_by_role("button", name="保存选项").click()
    page.get_by_role("button", name=re.compile(r"支付 ¥50\.00")).click()


def _screenshot(page: Page, settings, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_after_paying_the_page_says_checking_until_the_worker_delivers_the_notification(  # type: ignore[no-untyped-def]
    live_server, browser: Browser, settings, tmp_path: Path, javascript: bool
) -> None:
    with app_worker(live_url=live_server.url, settings=settings, var_dir=tmp_path):
        account = factories.patient_account(mobile="13911116666", name="孙悦")
        booking = _held(account)
        page = _phone(browser, live_server.url, account, javascript=javascript)
        page.goto(f"{live_server.url}/booking/appointments/{booking.pk}/")
        # The rule is said before paying: cancellable online (tomorrow's appointment) until the deadline.
        expect(page.get_by_test_id("cancellation-rule")).to_contain_text("可在线取消")
        page.get_by_role("button", name="微信支付").click()
        _pay_at_cashier(page, delay_s=10)  # long enough to see the return page before it lands

        # Back on the appointment: no "awaiting payment", no pay buttons, but "checking".
        expect(page.get_by_test_id("payment-checking")).to_contain_text(CHECKING)
        assert page.get_by_role("button", name="微信支付").count() == 0
        assert page.get_by_role("button", name="支付宝支付").count() == 0
        expect(page.get_by_test_id("booking-status")).to_have_text("待支付")
        _screenshot(page, settings, f"paying-checking-{'js' if javascript else 'nojs'}.png")
        # Then, without the patient doing anything (JS polls; without JS the page refreshes itself), booked.
        expect(page.get_by_test_id("booking-status")).to_have_text("已预约", timeout=30_000)
        expect(page.get_by_test_id("payment-checking")).to_have_count(0)
        _screenshot(page, settings, f"paying-booked-{'js' if javascript else 'nojs'}.png")
        payment = Payment.objects.get(booking=booking)
        assert payment.status == Payment.Status.PAID
        # The worker delivered the notification to our notify URL (the page may have asked the gateway too).
        wait_for(lambda: sandbox.order_get(payment.order_no)["deliveries"], 30, "the worker's delivery")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.context.close()


def test_paying_with_the_other_channel_after_paying_leaves_one_charge_and_true_messages(  # type: ignore[no-untyped-def]
    live_server, browser: Browser, settings, tmp_path: Path
) -> None:
    """The patient pays with WeChat Pay; its notification is late. In another tab, still showing "awaiting
    payment", the patient tries Alipay: refused with the reason (it is paid and booked). Earlier, an
    Alipay cashier left open in a third tab was closed when WeChat Pay started: paying there is refused."""
    with app_worker(live_url=live_server.url, settings=settings, var_dir=tmp_path):
        account = factories.patient_account(mobile="13911117777", name="周航")
        booking = _held(account)
        detail = f"{live_server.url}/booking/appointments/{booking.pk}/"
        alipay_tab = _phone(browser, live_server.url, account)
        alipay_tab.goto(detail)
        alipay_tab.get_by_role("button", name="支付宝支付").click()  # the Alipay cashier, left open
        expect(alipay_tab).to_have_url(re.compile("/sandbox-gateway/cashier/alipay/"))
        stale_tab = alipay_tab.context.new_page()
        stale_tab.goto(detail)  # "awaiting payment" with both buttons
        page = alipay_tab.context.new_page()
        page.goto(detail)
        page.get_by_role("button", name="微信支付").click()
        _pay_at_cashier(page, delay_s=20)  # the notification is late
        expect(page.get_by_test_id("payment-checking")).to_contain_text(CHECKING)

        # The stale tab: Alipay. We close the WeChat Pay order first, find it paid, book the number.
        stale_tab.get_by_role("button", name="支付宝支付").click()
        expect(stale_tab.locator(".messages")).to_contain_text("已支付")
        expect(stale_tab.get_by_test_id("booking-status")).to_have_text("已预约")
        assert stale_tab.get_by_role("button", name="支付宝支付").count() == 0
        _screenshot(stale_tab, settings, "paying-second-channel-refused.png")

        # The Alipay cashier opened before WeChat Pay started was closed at the gateway then.
        alipay_tab.get_by_role("button", name=re.compile(r"支付 ¥50\.00")).click()
        expect(alipay_tab.locator("body")).to_contain_text("该订单已关闭，无法支付。")

        payments = {p.channel: p for p in Payment.objects.filter(booking=booking)}
        assert payments["wechatpay"].status == Payment.Status.PAID
        assert payments["alipay"].status == Payment.Status.CLOSED
        charged = [p.order_no for p in payments.values() if sandbox.order_get(p.order_no)["paid_at"]]
        assert charged == [payments["wechatpay"].order_no]  # exactly one charge at the gateways
        assert not Refund.objects.filter(payment__booking=booking).exists()
        # The late notification still arrives (the worker delivers it): harmless, nothing changes.
        wait_for(lambda: sandbox.order_get(charged[0])["deliveries"], 60, "the late notification")
        booking.refresh_from_db()
        assert booking.status == Booking.Status.BOOKED
        # Every message the patient got is true: booked, and nothing about a release or a refund.
        wait_for(lambda: "booked" in sent_kinds(booking.pk), 30, "the booked message")
        assert sent_kinds(booking.pk) == {"booked"}
        text = notifications.message_render(booking=booking, kind="booked").text
        assert "释放" not in text and "退" not in text
        alipay_tab.context.close()


def test_a_same_day_booking_says_before_paying_that_it_cannot_be_cancelled_online(  # type: ignore[no-untyped-def]
    live_server, browser: Browser, settings
) -> None:
    settings.OUTPATIENT_DESK_PHONE = "021-6000 1234"
    # 07:30 on the visit day (the live server's thread sees the same clock): the 09:00 session is bookable.
    clock = time_machine.travel(datetime.combine(local_today(), time(7, 30), tzinfo=HOSPITAL_TZ), tick=True)
    clock.start()
    account = factories.patient_account(mobile="13911118888", name="吴桐")
    booking = _held(account, days_ahead=0)
    page = _phone(browser, live_server.url, account)
    page.goto(f"{live_server.url}/booking/appointments/{booking.pk}/")
    expect(page.get_by_test_id("cancellation-rule")).to_contain_text("021-6000 1234")
    # A held number can still be given back, after a confirmation page (no JavaScript needed).
    page.get_by_test_id("cancel-link").click()
    expect(page.get_by_test_id("cancel-consequence")).to_be_visible()
    page.get_by_test_id("cancel-keep").click()
    expect(page.get_by_test_id("booking-status")).to_have_text("待支付")
    # Once booked (paid at the desk), no cancel button: the desk's telephone instead.
    Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.BOOKED, hold_expires_at=None)
    page.reload()
    expect(page.get_by_test_id("cancel-at-desk")).to_contain_text("021-6000 1234")
    assert page.get_by_test_id("cancel-link").count() == 0
    _screenshot(page, settings, "same-day-cancel-at-desk.png")
    page.context.close()
    clock.stop()
