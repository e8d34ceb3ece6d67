"""The Content-Security-Policy in a real browser: pages that run scripts still work and log no violation
(the autouse check in conftest.py fails any browser test on one)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from medcard.models import User
from tests import factories
from tests.browser.conftest import csp_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_inline_script_would_be_refused_and_reported(live_server, phone: Page) -> None:  # type: ignore[no-untyped-def]
    phone.goto(live_server.url + "/")
    phone.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        " document.body.appendChild(s); }"
    )
    phone.wait_for_timeout(200)
    assert phone.evaluate("window.ran") is None
    assert any("Content Security Policy" in line for line in csp_violations)
    csp_violations.clear()  # seen: this test provoked it on purpose


def test_the_api_docs_and_the_admin_sign_in_work_under_the_policy(live_server, phone: Page) -> None:  # type: ignore[no-untyped-def]
    phone.goto(live_server.url + "/api/docs/")
    expect(phone.locator(".swagger-ui .info .title")).to_contain_text("Outpatient platform API")
    phone.goto(live_server.url + "/admin/login/")
    expect(phone.locator("#id_username")).to_be_visible()


def test_the_patient_add_page_derives_sex_and_birth_date_from_a_static_script(  # type: ignore[no-untyped-def]
    live_server, phone: Page
) -> None:
    account: User = factories.patient_account()
    phone.context.add_cookies([_session_cookie(account, live_server.url)])
    phone.goto(live_server.url + "/accounts/patients/add/")
    phone.locator("#id_id_number").fill("11010519491231002X")
    expect(phone.locator("#derived")).to_be_visible()
    expect(phone.locator("#id_birth_date")).to_have_value("1949-12-31")


def _session_cookie(user: User, url: str) -> dict[str, str]:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            "url": url}  # fmt: skip
