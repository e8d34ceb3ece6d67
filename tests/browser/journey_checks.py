"""Checks every patient journey in the browser suite shares: what a patient would notice on any page.

- ``PageWatch``: console errors, uncaught page errors and any HTTP answer >= 400 (a missing favicon too),
  collected while the page is used; ``assert_clean()`` fails the test with the list.
- ``axe_violations``: axe-core (bundled by axe-playwright-python, no download) run on the page; serious and
  critical violations.
- ``qr_codes_from_screenshot``: the page (or an element) screenshotted and decoded by zxing-cpp restricted to
  full QR codes (QR Model 2, what WeChat and desk scanners read); a Micro QR code is not found.
- ``ascii_on_chinese_page``: runs of ASCII words in the visible text of a Chinese page (untranslated English),
  and ASCII punctuation right after Chinese text, outside an allowlist.
- ``dead_end``, ``horizontal_scroll``, ``page_time_ms``: nothing to follow in the page's main part; the page
  is wider than the phone; the page's own navigation time.

Each check reads the page as it is now; a journey calls ``check_patient_page`` after each page it reaches.
"""

from __future__ import annotations

import io
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

import zxingcpp
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import BrowserContext, ConsoleMessage, Locator, Page, Response

# Words an untranslated-text check lets through on a Chinese page: names of things that are written in Latin
# letters in Chinese too (brands, units, codes), and the language switch, which names English in English.
ASCII_ALLOWLIST = frozenset(
    {
        "English",
        "SMS",
        "QR",
        "ID",
        "CT",
        "MRI",
        "API",
        "PDF",
        "JPEG",  # file formats a report photo may come in (the screening upload form names them)
        "PNG",
        "HEIC",
        "WeChat",
        "Alipay",
        "App",
    }
)
# Two or more ASCII words in a row (letters, with the punctuation that joins English words), or one word of
# four letters or more: "session stopped", "(front desk)", "Reason".
_ASCII_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:[ ,.:;()/-]+[A-Za-z][A-Za-z'’-]*)*")
_CJK = "\u3400-\u9fff\uff00-\uffef\u3000-\u303f"
# Chinese text takes full-width punctuation: an ASCII colon, comma, semicolon, question or exclamation mark
# right after a Chinese character is English punctuation left in a translation.
_ASCII_PUNCTUATION_AFTER_CJK = re.compile(f"[{_CJK}] ?[:,;?!]")

_AXE = Axe()
PAGE_TIMES_MS: list[float] = []  # every page time measured in this run, printed by the conftest at the end


@dataclass
class PageWatch:
    """What went wrong while a page (and what it loaded) was in use."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed_responses.append(f"{response.status} {response.request.method} {response.url}")

    def expect_status(self, status: int, url_part: str) -> None:
        """A refusal the journey provokes on purpose (a 400 for a wrong code): not a defect."""
        self.failed_responses = [
            row for row in self.failed_responses if not (row.startswith(str(status)) and url_part in row)
        ]
        # The browser logs a failed document load as a console error; it is the same expected refusal.
        self.console_errors = [
            row for row in self.console_errors if f"status of {status}" not in row or url_part not in row
        ]

    def assert_clean(self) -> None:
        problems = self.console_errors + self.page_errors + self.failed_responses
        assert not problems, "browser reported: " + "; ".join(problems)


def watch_page(page: Page) -> PageWatch:
    """Start collecting console errors, page errors and failed responses of ``page`` (and its context)."""
    watch = PageWatch()
    page.on("console", watch._on_console)
    page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    page.on("response", watch._on_response)
    return watch


def _page_as_seen_without_javascript(page: Page) -> tuple[Page, BrowserContext]:
    """axe-core needs JavaScript (it waits on timers), which a no-JavaScript page does not run: copy what
    that page shows (its HTML, scripts removed, <noscript> content shown) into a page that runs JavaScript,
    with the same viewport and the page's address as base, and check that copy."""
    html = page.content()
    html = re.sub(r"<script\b.*?</script>", "", html, flags=re.DOTALL | re.IGNORECASE)
    html = re.sub(r"</?noscript>", "", html, flags=re.IGNORECASE)
    html = html.replace("<head>", f'<head><base href="{page.url}">', 1)
    browser = page.context.browser
    assert browser is not None
    context = browser.new_context(viewport=page.viewport_size, is_mobile=True)
    copy = context.new_page()
    copy.set_content(html, wait_until="load")
    return copy, context


def axe_violations(
    page: Page, *, impacts: Iterable[str] = ("serious", "critical"), javascript: bool = True
) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now, one line each."""
    wanted = set(impacts)
    if javascript:
        results = _AXE.run(page)
    else:
        copy, context = _page_as_seen_without_javascript(page)
        try:
            results = _AXE.run(copy)
        finally:
            context.close()
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation.get("impact") in wanted
    ]


def qr_codes_from_screenshot(page: Page, *, element: Locator | None = None) -> list[str]:
    """The texts of the full QR codes visible in a screenshot of the page (whole page) or of one element.

    The decoder is limited to QR Model 2, so a Micro QR code (which WeChat cannot read) is not found."""
    png = element.screenshot() if element is not None else page.screenshot(full_page=True)
    image = Image.open(io.BytesIO(png)).convert("L")
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCodeModel2)
    assert all(code.format == zxingcpp.BarcodeFormat.QRCode for code in found)
    return [code.text for code in found]


def visible_text(page: Page) -> str:
    """What a patient reads: the rendered text of the page (hidden elements and scripts excluded)."""
    return str(page.locator("body").inner_text())


def ascii_on_chinese_page(page: Page, *, allow: Iterable[str] = ()) -> list[str]:
    """Untranslated-looking text on a Chinese page: runs of ASCII words not in the allowlist, and ASCII
    punctuation after Chinese text (Chinese text takes full-width marks)."""
    allowed = ASCII_ALLOWLIST | set(allow)
    text = visible_text(page)
    found = []
    for match in _ASCII_RUN.finditer(text):
        run = match.group(0).strip(" ,.:;()/-")
        words = re.findall(r"[A-Za-z][A-Za-z'’-]*", run)
        if not words or all(word in allowed for word in words):
            continue
        if len(words) == 1 and len(words[0]) < 4 and words[0].isupper():
            continue  # a unit or code letter: "F", "CT", "ml"-like abbreviations stay as written
        found.append(run)
    for mark in _ASCII_PUNCTUATION_AFTER_CJK.finditer(text):
        found.append(f"ASCII punctuation: {text[max(0, mark.start() - 8) : mark.end() + 8]!r}")
    return found


def dead_end(page: Page) -> bool:
    """The page's main part offers no link and no form: the patient can only go back or start over."""
    return page.locator("main a[href], main form").count() == 0


def horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth"))


def page_time_ms(page: Page) -> float | None:
    """The current page's navigation time (request start to the end of its load event), from the browser's
    Navigation Timing; None when the page was not a full load (or the load has not ended)."""
    value = page.evaluate(
        """() => { const nav = performance.getEntriesByType("navigation")[0];
                   return nav && nav.loadEventEnd > 0 ? nav.loadEventEnd - nav.startTime : null; }"""
    )
    return float(value) if value is not None else None


def check_patient_page(
    page: Page,
    watch: PageWatch,
    *,
    chinese: bool,
    javascript: bool = True,
    axe: bool = True,
    allow_ascii: Iterable[str] = (),
) -> None:
    """Everything a patient page must pass, on the page as it is now: no console error or failed request so
    far, no horizontal scroll, no serious or critical accessibility violation, no English on a Chinese page.
    Records the page's load time for the run's median."""
    page.wait_for_load_state("load")
    elapsed = page_time_ms(page)
    if elapsed is not None:
        PAGE_TIMES_MS.append(elapsed)
    watch.assert_clean()
    assert not dead_end(page), f"dead end: nothing to follow or submit in the main part of {page.url}"
    assert not horizontal_scroll(page), f"horizontal scroll on {page.url}"
    if axe:
        violations = axe_violations(page, javascript=javascript)
        assert not violations, f"accessibility on {page.url}: {violations}"
    if chinese:
        english = ascii_on_chinese_page(page, allow=allow_ascii)
        assert not english, f"untranslated text on {page.url}: {english}"


def page_time_summary() -> str | None:
    if not PAGE_TIMES_MS:
        return None
    times = sorted(PAGE_TIMES_MS)
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    return (
        f"browser page times: {len(times)} pages, median {statistics.median(times):.0f} ms, "
        f"90th percentile {p90:.0f} ms, slowest {times[-1]:.0f} ms (target: median < 200 ms)"
    )
