"""An administrator in the Chinese admin, on a desktop (1366 px) and a tablet: changes a weekly template and
sees its generated sessions change, finds a booking by card number and refunds it by hand through the sandbox
gateway; the patient is told. Then the day's dashboard."""

from __future__ import annotations

import re
from datetime import time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from hospital.celery import app as celery_app
from medcard.models import AuditEvent, Message, User
from reservations import notifications, schedules, services
from reservations.models import Booking, ClinicType, Doctor, Refund, Session, WeeklyTemplate
from reservations.payments.sandbox import gateway as sandbox
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "tablet": {"width": 820, "height": 1180}}


def _paid_booking() -> Booking:
    account = factories.patient_account(mobile="13911118888", name="周芷若")
    slot = factories.clinic_session(capacity=4, fee="50.00", days_ahead=1).slots.get()
    booking = services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )
    payment = services.payment_start(account=account, booking_id=booking.pk, channel="wechatpay").payment
    assert sandbox.cashier_pay(payment.order_no) == "paid"  # its notification is delivered inline (eager)
    booking.refresh_from_db()
    assert booking.status == "booked"
    return booking


def _template() -> WeeklyTemplate:
    session = factories.clinic_session(days_ahead=3, doctor_code="li")  # the department, its doctor, a fee
    doctor = Doctor.objects.get(code="li")
    template = WeeklyTemplate.objects.create(
        department=session.department, doctor=doctor, clinic_type=ClinicType.objects.get(fee=Decimal("50")),
        weekday=(timezone.localdate() + timedelta(days=2)).weekday(), half_day="pm", start_time=time(14),
        end_time=time(15), slice_minutes=30, quota_per_slice=4,
    )  # fmt: skip
    schedules.sessions_generate(days_ahead=14)
    assert Session.objects.filter(template=template).count() == 2
    return template


def _page(browser: Browser, live_server: Any, user: User, viewport: dict[str, int]) -> Page:
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
    host = live_server.url.split("//", 1)[1].split(":")[0]
    context.add_cookies(
        [
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url},
            {"name": "django_language", "value": "zh-hans", "domain": host, "path": "/"},
        ]
    )
    return context.new_page()


def _fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), page.url


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
def test_an_administrator_changes_a_timetable_and_refunds_a_booking_by_hand(
    live_server, browser: Browser, settings, monkeypatch, device: str
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url  # the gateway's notify and refund calls reach this server
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # notifications and refunds run inline
    sandbox.faults_clear()
    notifications.outbox.clear()
    administrator = User.objects.create_superuser(
        username="admin-zhang", password="x-very-long-pass-1", display_name="张主任"
    )
    template = _template()
    booking = _paid_booking()
    card = booking.patient.cards.get(status="active").number
    page = _page(browser, live_server, administrator, VIEWPORTS[device])

    page.goto(live_server.url + "/admin/")
    expect(page.locator("#user-tools")).to_contain_text("张主任")
    expect(page.locator("#site-name")).to_have_text("医院管理后台")
    _fits(page)

    # The timetable: the template's sessions have 2 slices of 4 numbers; 6 per slice after the change.
    page.get_by_role("link", name="周排班模板").first.click()
    page.get_by_role("link", name="已生成的出诊").click()
    expect(page.locator("#result_list")).to_contain_text("0 / 8")
    page.goto(f"{live_server.url}/admin/reservations/weeklytemplate/{template.pk}/change/")
    page.get_by_label("每时段线上号源").fill("6")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("已重新生成今后的出诊")
    page.get_by_role("link", name="已生成的出诊").click()
    expect(page.locator("#result_list")).to_contain_text("0 / 12")
    expect(page.locator("#result_list")).not_to_contain_text("0 / 8")
    _fits(page)

    # The booking, found by the patient's card number (the name is masked), refunded by hand.
    page.goto(live_server.url + "/admin/reservations/booking/")
    page.locator("#searchbar").fill(card)
    page.locator("#changelist-search [type=submit]").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("周*若")
    expect(page.locator("#result_list")).not_to_contain_text("周芷若")
    shots = settings.VAR_DIR / "screenshots"
    page.screenshot(path=str(shots / f"admin-bookings-{device}.png"), full_page=True)
    rows.first.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("refund_manually")
    page.locator("button[name=index]").click()
    expect(page.locator("h1")).to_have_text("人工退款")
    page.get_by_label("退款原因").fill("医生临时停诊，患者来电要求退款")
    expect(page.get_by_test_id("refund-payments")).to_contain_text("周*若")
    page.screenshot(path=str(shots / f"admin-refund-form-{device}.png"), full_page=True)
    page.get_by_role("button", name="退款", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("已退款")
    _fits(page)

    refund = Refund.objects.get(payment__booking=booking)
    assert refund.status == "succeeded" and refund.reason == "医生临时停诊，患者来电要求退款"
    assert (sandbox.order_get(refund.payment.order_no) or {}).get("refunded_fen") == 5000
    [message] = notifications.sandbox_messages(kind="refunded", channel="sms")
    assert "50.00元已原路退回" in message.text
    assert AuditEvent.objects.get(action="refund_manual").actor == administrator
    # ... and it is in the patient's own message list, as sent.
    patient_view = Client()
    patient_view.force_login(booking.account)
    inbox = patient_view.get("/accounts/messages/").content.decode()
    assert "退款成功" in inbox and "50.00元已原路退回" in inbox
    assert Message.objects.filter(account=booking.account, kind="refunded").count() == 1

    # The day's dashboard, one link away.
    page.goto(live_server.url + "/admin/")
    page.get_by_test_id("dashboard-link").click()
    expect(page.locator("h1")).to_have_text("当日运营看板")
    expect(page.get_by_test_id("csv")).to_have_attribute(
        "href", re.compile(r"/booking/staff/dashboard\.csv\?date=")
    )
    _fits(page)
    page.screenshot(path=str(shots / f"admin-dashboard-{device}.png"), full_page=True)
    page.context.close()
