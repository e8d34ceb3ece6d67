from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from reservations.services import demo_departments_seed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(settings.VAR_DIR) / "screenshots"


def _no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_home_page_renders_on_a_phone_without_horizontal_scrolling(live_server, phone: Page) -> None:  # type: ignore[no-untyped-def]
    phone.goto(live_server.url + "/")
    expect(phone.locator("h1")).to_have_text("门诊服务")
    expect(phone.get_by_role("link", name="患者登录")).to_be_visible()
    assert _no_horizontal_scroll(phone)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "home-360x640.png"), full_page=True)


def test_language_switch_changes_the_page_and_is_remembered(live_server, phone: Page) -> None:  # type: ignore[no-untyped-def]
    phone.goto(live_server.url + "/")
    phone.get_by_role("button", name="English").click()
    expect(phone.locator("h1")).to_have_text("Outpatient services")
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    phone.goto(live_server.url + "/booking/")
    expect(phone.locator("h1")).to_have_text("Find a department")
    phone.get_by_role("button", name="简体中文").click()
    expect(phone.locator("h1")).to_have_text("查找科室")


def test_large_text_mode_persists_across_pages_and_visits(live_server, phone: Page) -> None:  # type: ignore[no-untyped-def]
    demo_departments_seed()
    phone.goto(live_server.url + "/booking/")
    normal_px = float(phone.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)"))
    phone.get_by_role("button", name="大字模式").click()
    expect(phone.locator("html")).to_have_class("text-large")
    assert phone.url == live_server.url + "/booking/"  # back where the patient was
    large_px = float(phone.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)"))
    assert large_px >= normal_px * 1.25
    assert _no_horizontal_scroll(phone)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "departments-large-text.png"), full_page=True)
    # A later visit in the same browser: the mode is still on.
    second = phone.context.new_page()
    second.goto(live_server.url + "/")
    expect(second.locator("html")).to_have_class("text-large")
    second.get_by_role("button", name="标准字号").click()
    expect(second.locator("html")).not_to_have_class("text-large")


def test_language_and_text_size_work_without_javascript(live_server, phone_without_js: Page) -> None:  # type: ignore[no-untyped-def]
    page = phone_without_js
    page.goto(live_server.url + "/")
    page.get_by_role("button", name="English").click()
    expect(page.locator("h1")).to_have_text("Outpatient services")
    page.get_by_role("button", name="Large text").click()
    expect(page.locator("html")).to_have_class("text-large")


def test_patient_signs_in_on_a_phone(live_server, phone: Page) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import PASSWORD, patient_account

    patient_account(mobile="13912345678")
    phone.goto(live_server.url + "/accounts/login/password/")
    phone.get_by_label("手机号码").fill("139 1234 5678")
    phone.get_by_label("密码").fill(PASSWORD)
    phone.get_by_role("button", name="登录").click()
    expect(phone.locator(".who")).to_have_text("139****5678")
    assert _no_horizontal_scroll(phone)
