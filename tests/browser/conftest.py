"""Debian's chromium driven by Playwright against pytest-django's live server, in a phone viewport."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.journey_checks import PageWatch, page_time_summary, watch_page
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
    options.setdefault("locale", "zh-CN")
    return browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, **options)  # type: ignore[arg-type]


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


# --- Journeys: a phone per variant (language, large text, JavaScript), and the run's page times ------------

JOURNEY_VARIANTS = {
    # name: (language, large text, JavaScript)
    "zh": ("zh-hans", False, True),
    "en": ("en", False, True),
    "zh-large-text": ("zh-hans", True, True),
    "zh-no-js": ("zh-hans", False, False),
}


@dataclass(frozen=True)
class JourneyPhone:
    """A 360 x 640 phone in one variant, and the watch over everything its page reports."""

    page: Page
    watch: PageWatch
    variant: str
    language: str
    large_text: bool
    javascript: bool

    @property
    def chinese(self) -> bool:
        return self.language == "zh-hans"


@pytest.fixture(params=sorted(JOURNEY_VARIANTS))
def journey_phone(
    request: pytest.FixtureRequest, browser: Browser, live_server: Any
) -> Iterator[JourneyPhone]:
    """Parametrised over the four variants a journey must pass; the preferences are the cookies the
    language and text-size switches set, so the pages read them as they would after a tap."""
    language, large_text, javascript = JOURNEY_VARIANTS[request.param]
    locale = "en-US" if language == "en" else "zh-CN"
    context = _context(browser, java_script_enabled=javascript, locale=locale)
    host = live_server.url.split("//", 1)[1].split(":")[0]
    cookies = [{"name": "django_language", "value": language, "domain": host, "path": "/"}]
    if large_text:
        cookies.append({"name": "text_size", "value": "large", "domain": host, "path": "/"})
    context.add_cookies(cookies)  # type: ignore[arg-type]
    page = context.new_page()
    yield JourneyPhone(page, watch_page(page), request.param, language, large_text, javascript)
    context.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    summary = page_time_summary()
    if summary is not None:
        terminalreporter.write_line(summary)
