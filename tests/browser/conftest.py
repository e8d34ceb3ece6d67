"""Debian's chromium driven by Playwright against pytest-django's live server, in a phone viewport."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

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
            new_context = browser.new_context

            def watched_context(**options: Any) -> BrowserContext:
                return watch_csp(new_context(**options), csp_violations)

            browser.new_context = watched_context  # type: ignore[method-assign]
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


CSP_MARKER = "Content Security Policy"
csp_violations: list[str] = []  # what any page of this session's browser reported, cleared per test


def watch_csp(context: BrowserContext, into: list[str]) -> BrowserContext:
    """Record in ``into`` every Content-Security-Policy violation a page of ``context`` logs (Chromium logs
    "Refused to execute inline script because it violates the following Content Security Policy ...")."""

    def on_console(message: Any) -> None:
        if CSP_MARKER in message.text:
            into.append(f"{message.page.url if message.page else '?'}: {message.text}")

    context.on("console", on_console)
    return context


@pytest.fixture(autouse=True)
def _no_csp_violations() -> Iterator[None]:
    """Every browser test fails on a CSP violation: a page that still needs an inline script is broken."""
    csp_violations.clear()
    yield
    assert csp_violations == [], "Content-Security-Policy violations:\n" + "\n".join(csp_violations)


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
