"""Booking journeys of issue #11 walked in Chromium on a phone: no dead end between the seams."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from medcard import sms
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _last_code(mobile: str) -> str:
    text = sms.sandbox_last_text(mobile)
    assert text is not None
    return re.search(r"\d{6}", text).group(0)  # type: ignore[union-attr]


def _choose_first_slice_signed_out(page: Page, base: str, session) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/booking/departments/{session.department.code}/sessions/{session.pk}/")
    page.get_by_role("button", name="预约此时段").first.click()
    expect(page).to_have_url(re.compile("/accounts/login/"))


def test_a_slice_chosen_signed_out_is_waiting_after_sms_sign_in(live_server, phone: Page) -> None:  # type: ignore[no-untyped-def]
    mobile = "13911117777"
    factories.patient_account(mobile=mobile, name="孙丽")
    session = factories.clinic_session(capacity=3, fee="50.00", days_ahead=1)
    slot = session.slots.first()

    _choose_first_slice_signed_out(phone, live_server.url, session)
    phone.get_by_label("手机号码").fill(mobile)
    phone.get_by_role("button", name="发送验证码").click()
    phone.get_by_label("验证码").fill(_last_code(mobile))
    phone.get_by_role("button", name="登录").click()

    expect(phone).to_have_url(re.compile(rf"/booking/hold/\?slot_id={slot.pk}$"))
    expect(phone.locator("h1")).to_have_text("预约挂号")
    phone.reload()  # the page the patient returns to survives a reload
    phone.get_by_role("button", name="确认预约").click()
    expect(phone.get_by_test_id("booking-status")).to_have_text("待支付")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_slice_chosen_signed_out_is_waiting_after_password_sign_in(live_server, phone: Page) -> None:  # type: ignore[no-untyped-def]
    mobile = "13911118888"
    factories.patient_account(mobile=mobile, name="周强")
    session = factories.clinic_session(capacity=3, fee="50.00", days_ahead=1)
    slot = session.slots.first()

    _choose_first_slice_signed_out(phone, live_server.url, session)
    phone.get_by_role("link", name="改用密码登录").click()
    phone.get_by_label("手机号码").fill(mobile)
    phone.get_by_label("密码").fill(factories.PASSWORD)
    phone.get_by_role("button", name="登录").click()

    expect(phone).to_have_url(re.compile(rf"/booking/hold/\?slot_id={slot.pk}$"))
    phone.get_by_role("button", name="确认预约").click()
    expect(phone.get_by_test_id("booking-status")).to_have_text("待支付")


def test_the_department_dates_fit_in_a_strip_and_a_date_tap_keeps_the_doctors_in_view(  # type: ignore[no-untyped-def]
    live_server, phone: Page, settings
) -> None:
    sessions = [factories.clinic_session(capacity=3, days_ahead=days) for days in range(1, 12)]
    department = sessions[0].department
    phone.goto(f"{live_server.url}/booking/departments/{department.code}/")
    doctors = phone.locator("#doctors")
    # Eleven dates take one compact row: the doctors' heading is on the first screen.
    assert doctors.bounding_box()["y"] < 640  # type: ignore[index]
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.locator(".date-strip a").nth(5).click()
    expect(phone).to_have_url(re.compile(r"\?date=\d{4}-\d\d-\d\d#doctors$"))
    expect(phone.locator(".date-strip a").nth(5)).to_have_attribute("aria-current", "date")
    box = doctors.bounding_box()
    assert box is not None and 0 <= box["y"] < 640  # the page did not land at the top, the doctors are shown
    phone.screenshot(path=str(settings.VAR_DIR / "screenshots" / "department-date-strip.png"))
