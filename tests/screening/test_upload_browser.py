"""The upload page in chromium on a phone viewport, with the progress script and without JavaScript.

Playwright runs in a thread of its own: tests/browser keeps a session-wide sync Playwright (with its event
loop) open in the main thread, and a second one cannot start there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Page, expect, sync_playwright

from screening.models import Upload
from tests import factories
from tests.browser.conftest import CHROMIUM_ARGS, watch_csp
from tests.conftest import chromium_path, require_or_skip
from tests.screening import samples
from tests.screening.test_upload_service import booking_of

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.screening.screening_test_urls"),
]


def _on_phone(*, javascript: bool, session_id: str, base_url: str, steps: Callable[[Page], None]) -> None:
    """Run ``steps`` on a fresh phone page in a thread of its own; re-raise what failed there."""
    path = chromium_path()
    require_or_skip(path is not None, "Debian's chromium is not installed (apt-get install chromium)")
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True,
                                              locale="en", java_script_enabled=javascript)  # fmt: skip
                context.add_cookies([{"name": "sessionid", "value": session_id, "url": base_url}])
                violations: list[str] = []
                watch_csp(context, violations)
                page = context.new_page()
                steps(page)
                page.wait_for_timeout(200)  # let the last page's console messages arrive
                browser.close()
                assert violations == [], f"Content-Security-Policy violations: {violations}"
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)

    thread = threading.Thread(target=drive, name="playwright")
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the browser did not finish in time"
    if failures:
        raise failures[0]


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_a_patient_uploads_a_photo_of_a_report_from_the_phone_page(  # type: ignore[no-untyped-def]
    live_server, settings, tmp_path: Path, javascript: bool
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    account = factories.patient_account(mobile="13911115555", name="赵敏")
    booking = booking_of(account)
    client = Client()
    client.force_login(account)
    photo = tmp_path / "creatinine.jpg"
    photo.write_bytes(samples.jpeg((640, 480), orientation=6))
    fake = tmp_path / "report.png"
    fake.write_bytes(b"<html><script>alert(1)</script></html>")

    def steps(page: Page) -> None:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/screening/bookings/{booking.pk}/uploads/")
        page.evaluate("window.sameDocument = true")  # survives only if the script sent the form itself
        page.locator("#upload-file").set_input_files(str(photo))
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_test_id("upload")).to_have_count(1)
        expect(page.get_by_test_id("upload")).to_contain_text("creatinine.jpg")
        expect(page.locator(".messages")).to_contain_text("Received creatinine.jpg")
        # A second file, refused: the reason is on the page and nothing was added.
        page.locator("#upload-file").set_input_files(str(fake))
        page.get_by_role("button", name="Upload").click()
        expect(page.locator(".messages")).to_contain_text("Only photos (JPEG, PNG, HEIC) and PDF files")
        expect(page.get_by_test_id("upload")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.evaluate("window.sameDocument === true") is javascript
        assert not errors
        link = page.get_by_test_id("upload").get_by_role("link").get_attribute("href")
        response = page.request.get(f"{live_server.url}{link}")
        assert response.status == 200 and response.headers["content-type"] == "image/jpeg"

    _on_phone(
        javascript=javascript,
        session_id=client.cookies["sessionid"].value,
        base_url=live_server.url,
        steps=steps,
    )
    upload = Upload.objects.get(booking=booking)
    assert (upload.width_px, upload.height_px) == (480, 640)
