"""A screened booking end to end on a phone: questionnaire, upload, the report read, the values confirmed.

The report is the committed generated fixture (a renal-function report of a 70-year-old man, creatinine
88 µmol/L, collected 2026-11-20); the clock is set to 2026-11-28 so it is eight days old. Celery runs
eagerly inside the live server, as in the other browser tests: the upload's request returns once the report
has been read and decided. A second test checks that the status card updates itself while a report is read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, expect

from hospital.celery import app as celery_app
from medcard import roles
from medcard import services as medcard_services
from medcard.models import User
from reservations import services as reservations
from reservations.models import Booking, ClinicType, Department, Session
from screening import services as screening_services
from screening.models import ScreeningCase, ScreeningExamSetting
from tests import factories
from tests.browser.conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIXTURES = Path(__file__).resolve().parents[1] / "screening" / "fixtures"
REPORT = FIXTURES / "renal-70m-clean.png"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=SHANGHAI)


@pytest.fixture
def _english_and_media(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.LANGUAGE_CODE = "en"
    settings.MEDIA_ROOT = tmp_path / "media"


def _the_reports_patient() -> User:
    """The account of the man the fixture report is about (name, sex and age as printed on it)."""
    account = medcard_services.patient_account_create(
        mobile="13911116666", password=factories.PASSWORD, display_name="邓荣俊"
    )
    factories.add_patient(account, name="邓荣俊", birth=dt.date(1956, 3, 10), relationship="self", male=True)
    return account


def _contrast_ct(*, days_ahead: int = 3) -> Session:
    session = factories.clinic_session(
        capacity=4, fee="300.00", days_ahead=days_ahead, department_code="radiology"
    )
    ClinicType.objects.filter(pk=session.clinic_type_id).update(
        screening_exam="ct_contrast", name_zh="增强CT", name_en="Contrast CT"
    )
    Department.objects.filter(pk=session.department_id).update(name_zh="放射科", name_en="Radiology")
    ScreeningExamSetting.objects.update_or_create(exam_code="ct_contrast", defaults={"mode": "live"})
    return session


def _phone(
    browser: Browser, account: User, base_url: str, viewport: dict[str, int] = PHONE
) -> BrowserContext:
    client = Client()
    client.force_login(account)
    phone = viewport == PHONE
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, locale="en")  # type: ignore[arg-type]
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}])
    return context


@pytest.fixture
def _clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def _answer(page: Page, question: str, answer: str) -> None:
    page.get_by_role("group", name=question).get_by_label(answer, exact=True).check()


@pytest.mark.usefixtures("_english_and_media", "_clock")
def test_a_patient_answers_uploads_sees_the_decision_and_confirms_the_values(  # type: ignore[no-untyped-def]
    live_server, browser: Browser, monkeypatch, settings
) -> None:
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # the report is read inside the request
    account = _the_reports_patient()
    session = _contrast_ct()
    context = _phone(browser, account, live_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # 1. The hold form asks the contrast questions; an unanswered one stops the form in the browser (the
    #    server's own refusal is tested in tests/screening/test_screening_pages.py).
    page.goto(f"{live_server.url}/booking/hold/?slot_id={session.slots.get().pk}")
    expect(page.get_by_test_id("questionnaire")).to_be_visible()
    # He is a man: the pregnancy question is not shown (nor required).
    expect(page.get_by_role("group", name="Could you be pregnant?")).to_be_hidden()
    _answer(page, "Are you on dialysis?", "No")
    page.get_by_role("button", name="Hold this number").click()
    expect(page.locator("input[name=q_diabetes]:invalid")).to_have_count(2)
    assert not Booking.objects.exists()
    _answer(page, "Do you have diabetes?", "Yes")
    for label in page.get_by_test_id("questionnaire").get_by_role("group").all():
        if label.is_visible() and not label.get_by_role("radio", checked=True).count():
            label.get_by_label("No", exact=True).check()
    page.get_by_role("button", name="Hold this number").click()

    # 2. Held for the screening: the page asks for the report.
    expect(page).to_have_url(re.compile(r"/screening/bookings/\d+/uploads/$"))
    card = page.get_by_test_id("screening-status")
    expect(card).to_have_attribute("data-state", "awaiting_upload")
    expect(card).to_contain_text("Waiting for your test results")

    # 3. The upload (sent by the page's script, with progress); the report is read and decided.
    page.evaluate("window.sameDocument = true")
    page.locator("#upload-file").set_input_files(str(REPORT))
    page.get_by_role("button", name="Upload").click()
    expect(card).to_have_attribute("data-state", "confirm", timeout=60_000)
    values = page.get_by_test_id("read-values")
    expect(values).to_contain_text("88")
    expect(values).to_contain_text("2026-11-20")
    assert page.evaluate("window.sameDocument === true")  # no page load: the script sent the form
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # 4. The patient confirms; the number may now be paid for, within the payment window.
    page.get_by_role("button", name="Yes, correct").click()
    expect(card).to_have_attribute("data-state", "approved")
    expect(card.get_by_test_id("pay-by")).to_contain_text(
        re.compile(r"Please pay by \d{4}-\d\d-\d\d \d\d:\d\d")
    )
    expect(card.get_by_role("button", name="Pay with WeChat Pay")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert not errors
    page.screenshot(path=str(settings.VAR_DIR / "screenshots" / "screening-approved.png"), full_page=True)
    context.close()

    case = ScreeningCase.objects.select_related("booking").get()
    assert case.answers["diabetes"] is True and case.patient_confirmed is True
    assert (case.status, case.decided_by) == ("approved", "system")
    assert case.booking.status == Booking.Status.HELD and case.booking.hold_expires_at > timezone.now()

    # 5. Staff see the report with the values read boxed where they are on the page.
    clinician = factories.staff(role=roles.CLINICIAN, username="clinician-screening")
    staff_context = _phone(browser, clinician, live_server.url, viewport={"width": 1280, "height": 900})
    staff_page = staff_context.new_page()
    staff_page.goto(f"{live_server.url}/screening/staff/cases/{case.pk}/")
    image = staff_page.get_by_test_id("page").locator("img")
    expect(image).to_be_visible()
    staff_page.wait_for_function("() => document.querySelector('[data-testid=page] img').naturalWidth > 0")
    box = staff_page.locator('[data-testid=box][data-field="analyte:creatinine"]')
    expect(box).to_be_visible()
    inside = staff_page.evaluate(
        """() => {
             const i = document.querySelector("[data-testid=page] img").getBoundingClientRect();
             const b = document.querySelector("[data-field='analyte:creatinine']").getBoundingClientRect();
             return b.left >= i.left && b.right <= i.right && b.top >= i.top && b.bottom <= i.bottom
                    && b.width > 2 && b.height > 2;
           }"""
    )
    assert inside
    expect(
        staff_page.get_by_test_id("fields").locator('tr[data-field="analyte:creatinine"]')
    ).to_contain_text("88")
    staff_page.screenshot(
        path=str(settings.VAR_DIR / "screenshots" / "screening-staff-case.png"), full_page=True
    )
    staff_context.close()


@pytest.mark.usefixtures("_english_and_media")
def test_the_status_card_updates_itself_while_a_report_is_read(  # type: ignore[no-untyped-def]
    live_server, browser: Browser
) -> None:
    account = _the_reports_patient()
    session = _contrast_ct()
    items = screening_services.questionnaire_items(exam_code="ct_contrast")
    booking = reservations.hold_create(
        account=account,
        patient_id=factories.verified_patient_of(account).pk,
        slot_id=session.slots.get().pk,
        answers={item: item == "diabetes" for item in items},
    )
    ScreeningCase.objects.filter(booking=booking).update(status="processing")
    context = _phone(browser, account, live_server.url)
    page = context.new_page()
    page.goto(f"{live_server.url}/screening/bookings/{booking.pk}/uploads/")
    card = page.get_by_test_id("screening-status")
    expect(card).to_contain_text("Reading your report…")
    page.evaluate("window.sameDocument = true")
    creatinine = {"name": "creatinine", "value": 88.0, "unit": "umol/L", "collected_on": "2026-11-20",
                  "sources": ["0/analyte:creatinine"], "upload": 0, "confidence": 1.0}  # fmt: skip
    ScreeningCase.objects.filter(booking=booking).update(
        status="confirm", decision={"critical_fields": [creatinine]}
    )
    expect(page.get_by_test_id("screening-status")).to_have_attribute("data-state", "confirm", timeout=15_000)
    expect(page.get_by_test_id("read-values")).to_contain_text("Creatinine: 88 µmol/L")
    assert page.evaluate("window.sameDocument === true")  # updated in place, not reloaded
    context.close()
