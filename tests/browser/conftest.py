"""Debian's chromium driven by Playwright against pytest-django's live server, in a phone viewport."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import chromium_path, require_or_skip

PHONE = {"width": 360, "height": 640}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine has no network but loopback: keep chromium from trying to reach Google's services.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser(django_db_setup: None, django_db_blocker: object) -> Iterator[Browser]:
    path = chromium_path()
    require_or_skip(path is not None, "Debian's chromium is not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread, which makes Django refuse the test's own
    # (synchronous) ORM calls; they are safe here, so allow them while the browser is up.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _context(browser: Browser, **options: object) -> BrowserContext:
    return browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN", **options)  # type: ignore[arg-type]


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = _context(browser)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone_without_js(browser: Browser) -> Iterator[Page]:
    context = _context(browser, java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()
