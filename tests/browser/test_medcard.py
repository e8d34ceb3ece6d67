from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from medcard import sms
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _last_code(mobile: str) -> str:
    text = sms.sandbox_last_text(mobile)
    assert text is not None
    return re.search(r"\d{6}", text).group(0)  # type: ignore[union-attr]


def test_a_new_patient_signs_in_adds_a_family_member_and_sees_the_qr_refresh(  # type: ignore[no-untyped-def]
    live_server, phone: Page, settings
) -> None:
    settings.CARD_QR_REFRESH_SECONDS = 2  # 30 s in production; short so the test sees a refresh
    mobile = "13911112222"
    phone.goto(live_server.url + "/accounts/login/")
    phone.get_by_label("手机号码").fill(mobile)
    phone.get_by_role("button", name="发送验证码").click()
    phone.get_by_label("验证码").fill(_last_code(mobile))
    phone.get_by_role("button", name="登录").click()
    expect(phone.locator(".who")).to_have_text("139****2222")

    phone.goto(live_server.url + "/accounts/patients/add/")
    phone.get_by_label("姓名").fill("陈静")
    phone.get_by_label("证件号码").fill(factories.resident_id(date(1985, 6, 1), male=False))
    phone.get_by_label("关系").select_option("spouse")
    phone.get_by_role("button", name="添加并认证").click()

    expect(phone.get_by_test_id("verification")).to_have_text("已认证")
    expect(phone.get_by_test_id("card-number")).to_have_text(re.compile(r"^\d{4} \d{4} \d{4}$"))
    first = phone.locator("#qr svg").inner_html()
    expect(phone.locator("#qr")).to_have_attribute("data-refreshed", re.compile(r"\d+"), timeout=10_000)
    assert phone.locator("#qr svg").inner_html() != first  # a new token, a new code
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot(path=str(factories_screenshot_path("medcard-card.png")), full_page=True)


def test_the_desk_scans_what_a_usb_scanner_types(live_server, browser, settings) -> None:  # type: ignore[no-untyped-def]
    from medcard import roles
    from medcard.models import Patient

    account = factories.patient_account(mobile="13911113333", name="刘洋")
    factories.staff(role=roles.FRONT_DESK, username="desk-b")
    holder = Patient.objects.get(links__account=account)
    card = holder.cards.get(status="active")
    from django.utils import timezone

    from medcard import tokens

    token = tokens.token_sign(card_number=card.number, now=timezone.now(), lifetime_s=60,
                              private_key=tokens.private_key_from_settings())  # fmt: skip
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN")
    page = context.new_page()
    page.goto(live_server.url + "/accounts/staff-login/?next=/accounts/desk/")
    page.get_by_label("用户名").fill("desk-b")
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    field = page.locator("#id_code")
    expect(field).to_be_focused()
    field.press_sequentially(token, delay=0)  # a USB scanner is a keyboard that types fast
    field.press("Enter")
    expect(page.get_by_test_id("profile")).to_contain_text("刘*")
    page.locator("#id_code").fill(token[:-3] + "AAA")
    page.locator("#id_code").press("Enter")
    expect(page.get_by_test_id("refusal")).to_be_visible()
    context.close()


def factories_screenshot_path(name: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from django.conf import settings

    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
