from __future__ import annotations

import re

import pytest
from django.test import Client
from playwright.sync_api import Browser, expect

from hospital.celery import app as celery_app
from reservations import services
from reservations.models import Booking, Refund, WechatOpenid
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_patient_finds_a_doctor_holds_pays_at_the_cashier_and_cancels_with_a_refund(  # type: ignore[no-untyped-def]
    live_server, browser: Browser, settings, monkeypatch
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url  # notify and return URLs point at this test server
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # notifications and refunds run inline
    account = factories.patient_account(mobile="13911114444", name="赵敏")
    session = factories.clinic_session(capacity=4, fee="50.00", days_ahead=1)
    client = Client()
    client.force_login(account)
    context = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True, locale="zh-CN")
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()

    page.goto(live_server.url + "/booking/departments/")
    page.get_by_label("科室名称或拼音首字母").fill("sjnk")
    page.get_by_role("button", name="搜索").click()
    page.get_by_role("link", name=re.compile("神经内科")).first.click()
    page.get_by_role("link", name=re.compile("王医生")).first.click()
    page.get_by_role("button", name="预约此时段").first.click()
    page.get_by_role("button", name="确认预约").click()
    expect(page.get_by_test_id("booking-status")).to_have_text("待支付")

    page.get_by_role("button", name="微信支付").click()
    expect(page).to_have_url(re.compile("/sandbox-gateway/cashier/wechatpay/"))
    page.get_by_role("button", name=re.compile(r"支付 ¥50\.00")).click()
    expect(page.get_by_test_id("booking-status")).to_have_text("已预约")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_role("link", name="取消预约").click()  # a confirmation page says what will happen
    expect(page.get_by_test_id("cancel-consequence")).to_contain_text("¥50.00 费用将原路退回")
    page.get_by_role("button", name="确定取消").click()
    expect(page.get_by_test_id("booking-status")).to_have_text("已取消")
    expect(page.get_by_test_id("refund-status")).to_contain_text("已退款")
    expect(page.locator(".messages")).to_contain_text("¥50.00 费用将原路退回")
    booking = Booking.objects.get(session=session)
    assert booking.status == "cancelled"
    assert Refund.objects.get(payment__booking=booking).status == "succeeded"
    page.screenshot(path=str(settings.VAR_DIR / "screenshots" / "booking-cancelled.png"), full_page=True)
    context.close()


WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.50.2701(0x28003253) NetType/WIFI Language/zh_CN"
)


def test_inside_wechat_a_patient_pays_with_jsapi_through_the_sandbox_bridge(  # type: ignore[no-untyped-def]
    live_server, browser: Browser, settings, monkeypatch
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    settings.WECHAT_APP_SECRET = "browser-test-app-secret"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    account = factories.patient_account(mobile="13911115555", name="钱多多")
    slot = factories.clinic_session(capacity=4, fee="50.00", days_ahead=1).slots.first()
    assert slot is not None
    booking = services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )
    client = Client()
    client.force_login(account)
    context = browser.new_context(
        viewport={"width": 360, "height": 640}, is_mobile=True, locale="zh-CN", user_agent=WECHAT_UA
    )
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()

    page.goto(f"{live_server.url}/booking/appointments/{booking.pk}/")
    page.get_by_test_id("wechat-jsapi-pay").click()  # OAuth (silent) → pay page → shim → sandbox cashier
    expect(page).to_have_url(re.compile("/sandbox-gateway/cashier/wechatpay/"))
    page.get_by_role("button", name=re.compile(r"支付 ¥50\.00")).click()
    expect(page.get_by_test_id("booking-status")).to_have_text("已预约", timeout=15_000)
    assert WechatOpenid.objects.filter(account=account).exists()
    context.close()
