"""A patient books and pays on a 360 x 640 phone in Chinese, then finds what the platform sent and gave them
(#11 "Everywhere"): the preparation for the exam on the booking, the electronic receipt (a PDF download) and
the "booked" message in "my messages", reached from home with its unread count."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pypdf
import pytest
from django.test import Client
from playwright.sync_api import Browser, expect

from hospital.celery import app as celery_app
from reservations import notifications, services
from reservations.models import ClinicType, Payment
from tests import factories
from tests.browser.conftest import PHONE, JourneyPhone
from tests.browser.journey_checks import check_patient_page, watch_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PREPARATION = "检查前4小时禁食，可少量饮水；服用二甲双胍者请咨询医生。"


def test_a_patient_pays_then_sees_the_preparation_the_receipt_and_the_booked_message(
    live_server: Any, browser: Browser, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url  # notify and return URLs point at this test server
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # the notification and message inline
    notifications.outbox.clear()
    account = factories.patient_account(mobile="13911117777", name="钱多多")
    session = factories.clinic_session(capacity=4, fee="50.00", days_ahead=2)
    ClinicType.objects.filter(pk=session.clinic_type_id).update(preparation_zh=PREPARATION)
    booking = services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=session.slots.get().pk
    )
    client = Client()
    client.force_login(account)
    context = browser.new_context(
        viewport={"width": PHONE["width"], "height": PHONE["height"]},
        is_mobile=True,
        locale="zh-CN",
        accept_downloads=True,
    )
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    watch = watch_page(page)

    # Pay at the sandbox cashier; back on the booking, booked.
    page.goto(f"{live_server.url}/booking/appointments/{booking.pk}/")
    page.get_by_role("button", name="微信支付").click()
    expect(page).to_have_url(re.compile("/sandbox-gateway/cashier/wechatpay/"))
    page.get_by_role("button", name=re.compile(r"支付 ¥50\.00")).click()
    expect(page.get_by_test_id("booking-status")).to_have_text("已预约")

    # The exam's preparation, and the receipt as a PDF download.
    expect(page.get_by_test_id("preparation")).to_contain_text("检查前准备")
    expect(page.get_by_test_id("preparation")).to_contain_text(PREPARATION)
    with page.expect_download() as download:
        page.get_by_test_id("receipt-link").click()
    assert download.value.suggested_filename.endswith(".pdf")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    payment = Payment.objects.get(booking=booking, status="paid")
    assert "门诊挂号电子收据" in text and "50.00" in text and payment.transaction_id in text
    page.screenshot(path=str(settings.VAR_DIR / "screenshots" / "inbox-booking.png"), full_page=True)

    # Home counts the unread message; the list shows it, marked new.
    page.goto(f"{live_server.url}/")
    expect(page.get_by_test_id("unread-count")).to_have_text("1 条新消息")
    page.get_by_test_id("messages-tile").click()
    expect(page).to_have_url(re.compile("/accounts/messages/$"))
    message = page.get_by_test_id("message").first
    expect(message).to_contain_text("预约成功")
    expect(message.get_by_test_id("message-unread")).to_have_text("新")
    (sent,) = notifications.sandbox_messages(kind="booked", channel="sms")
    expect(message.get_by_test_id("message-text")).to_have_text(sent.text)
    check_patient_page(page, watch, chinese=True)
    page.screenshot(path=str(settings.VAR_DIR / "screenshots" / "inbox-messages.png"), full_page=True)

    # Read now: home no longer counts it; the message links back to the appointment.
    page.goto(f"{live_server.url}/")
    expect(page.get_by_test_id("messages-tile")).to_be_visible()
    expect(page.get_by_test_id("unread-count")).to_have_count(0)
    page.get_by_test_id("messages-tile").click()
    page.get_by_role("link", name="查看预约").first.click()
    expect(page.get_by_test_id("booking-status")).to_have_text("已预约")
    context.close()


def test_my_messages_pass_the_patient_page_checks_in_every_variant(
    live_server: Any, journey_phone: JourneyPhone
) -> None:
    account = factories.patient_account(mobile="13911118888", name="孙丽")
    session = factories.clinic_session(capacity=4, fee="50.00", days_ahead=2)
    booking = services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=session.slots.get().pk
    )
    notifications.booking_notify_send(booking_id=booking.pk, kind="waitlist_offer")
    client = Client()
    client.force_login(account)
    page = journey_phone.page
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto(f"{live_server.url}/")
    new = "1 条新消息" if journey_phone.chinese else "1 new"
    expect(page.get_by_test_id("unread-count")).to_have_text(new)
    check_patient_page(
        page, journey_phone.watch, chinese=journey_phone.chinese, javascript=journey_phone.javascript
    )
    page.get_by_test_id("messages-tile").click()
    label = "候补成功，为您保留了号源" if journey_phone.chinese else "A number for you from the waitlist"
    expect(page.get_by_test_id("message").first).to_contain_text(label)
    check_patient_page(
        page, journey_phone.watch, chinese=journey_phone.chinese, javascript=journey_phone.javascript
    )
