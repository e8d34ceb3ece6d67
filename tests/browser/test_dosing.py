"""A pharmacist's day in Chromium at desktop and tablet width: sign in, land on the worklist, start a course,
enter doses (one repeating line) and a level, see the plot, add a second level (re-fit), pick another
regimen, see the curve change, sign it, download the PDF and find the chosen dose in its text."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pypdf
import pytest
import time_machine
from playwright.sync_api import Browser, expect

from dosing.models import CourseFit, SignedRegimen
from medcard import roles
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 21, 22, 0, tzinfo=SHANGHAI)
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "tablet": {"width": 820, "height": 1180}}


@pytest.fixture
def _clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.mark.usefixtures("_clock")
@pytest.mark.parametrize(("width", "language"), [("desktop", "zh-CN"), ("tablet", "en")])
def test_a_pharmacist_enters_a_course_signs_a_regimen_and_downloads_the_report(  # type: ignore[no-untyped-def]
    live_server, browser: Browser, settings, width: str, language: str
) -> None:
    settings.LANGUAGE_CODE = "zh-hans" if language == "zh-CN" else "en"
    factories.staff(role=roles.PHARMACIST, username="pharm1")
    shots = settings.VAR_DIR / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORTS[width], locale=language, accept_downloads=True)  # type: ignore[arg-type]
    page = context.new_page()

    page.goto(f"{live_server.url}/accounts/staff-login/")
    page.fill("input[name=username]", "pharm1")
    page.fill("input[name=password]", factories.PASSWORD)
    page.locator("form button[type=submit]").first.click()
    expect(page).to_have_url(f"{live_server.url}/dosing/")
    page.get_by_test_id("new-course").click()

    form = page.get_by_test_id("course-form")
    form.locator("[name=initials]").fill("ZWH")
    form.locator("[name=ward]").fill("5B")
    form.locator("[name=bed]").fill("12")
    form.locator("[name=sex]").select_option("male")
    form.locator("[name=age_years]").fill("64")
    form.locator("[name=weight_kg]").fill("82")
    form.locator("[name=height_cm]").fill("176")
    form.locator("[name=creatinine_value]").fill("97")
    form.locator("[name=creatinine_unit]").select_option("umol/L")
    form.locator("[name=creatinine_on]").fill("2026-11-20")
    form.locator("[name=model_choice]").select_option("goti_2018")
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("course-title")).to_contain_text("ZWH")

    # the dose table: a loading dose, then one line for the repeating regimen; a row added by the button
    rows = page.get_by_test_id("dose-row")
    rows.nth(0).locator("[name$=given_at]").fill("2026-11-20T08:00")
    rows.nth(0).locator("[name$=amount_mg]").fill("2000")
    rows.nth(0).locator("[name$=infusion_h]").fill("2")
    rows.nth(1).locator("[name$=given_at]").fill("2026-11-20T20:00")
    rows.nth(1).locator("[name$=amount_mg]").fill("1000")
    rows.nth(1).locator("[name$=infusion_h]").fill("1")
    rows.nth(1).locator("[name$=doses_count]").fill("3")
    rows.nth(1).locator("[name$=interval_h]").fill("12")
    page.locator("[data-add-row=doses]").click()
    expect(rows).to_have_count(4)
    page.get_by_test_id("save-doses").click()
    expect(page.get_by_test_id("doses")).to_contain_text("2000")

    def add_level(when: str, conc: str) -> None:
        level = page.get_by_test_id("level-form")
        level.locator("[name=drawn_at]").fill(when)
        level.locator("[name=conc]").fill(conc)
        level.locator("[name=unit]").select_option("mg/L")
        page.get_by_test_id("save-level").click()

    add_level("2026-11-21T19:30", "14.2")
    expect(page.get_by_test_id("plot")).to_be_visible()
    expect(page.get_by_test_id("plot-level")).to_have_count(1)
    add_level("2026-11-21T21:00", "31.5")
    expect(page.get_by_test_id("plot-level")).to_have_count(2)
    expect(page.get_by_test_id("by-level-row")).to_have_count(3)  # none, one, two levels: the re-fit
    assert CourseFit.objects.filter(levels_count=2).exists()
    page.reload()
    expect(page.get_by_test_id("plot-level")).to_have_count(2)

    # pick an alternative regimen: the curve and the numbers follow it
    before = page.get_by_test_id("plot").inner_html()
    options = page.get_by_test_id("regimen-row")
    assert options.count() >= 2
    options.nth(1).get_by_test_id("pick").click()
    chosen = page.get_by_test_id("chosen")
    expect(chosen).to_be_visible()
    dose = page.locator("[data-testid=regimen-edit] [name=dose_mg]").input_value()
    assert page.get_by_test_id("plot").inner_html() != before
    # then edit the dose by hand and update the curve
    edited = str(int(float(dose)) + 250)
    page.locator("[data-testid=regimen-edit] [name=dose_mg]").fill(edited)
    page.get_by_test_id("update-curve").click()
    expect(page.get_by_test_id("chosen")).to_contain_text(f"{edited} mg")
    page.screenshot(path=str(shots / f"dosing-course-{width}.png"), full_page=True)
    page.get_by_test_id("sign").click()
    expect(page.get_by_test_id("signature")).to_contain_text(edited)
    signed = SignedRegimen.objects.get()
    assert signed.dose_mg == int(edited) and signed.pharmacist.username == "pharm1"

    with page.expect_download() as download_info:
        page.get_by_test_id("report").click()
    pdf = download_info.value.path().read_bytes()
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert f"{edited} mg" in text
    assert ("万古霉素" in text) if language == "zh-CN" else ("Vancomycin dosing report" in text)

    page.goto(f"{live_server.url}/dosing/")
    expect(page.get_by_test_id("worklist-row")).to_have_count(1)
    page.screenshot(path=str(shots / f"dosing-worklist-{width}.png"), full_page=True)
    context.close()
