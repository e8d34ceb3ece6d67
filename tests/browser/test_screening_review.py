"""A clinician decides a screening case with two files, on a desk screen (1366 x 768) and a tablet
(768 x 1024), in English and in Chinese.

The patient 邓荣军 (born 1990) sends two generated reports of 邓荣俊, a 70-year-old man: the clean page
and a phone photo of it. Both are read by the real reader (Celery eager, in the test's process) and
decided in shadow mode, so the case goes to a person. The clinician sees which file each value came
from, the name and age on the reports flagged against the patient's, the patient's own age and sex,
the eGFR recomputed from the creatinine read (CKD-EPI 2021 with the patient's age) beside the
printed 81; declines with a reason and a correction; then finds the case in the history, with who
decided and why, also by card number. Every page: no horizontal scroll, no serious or critical axe
violation, no English left on the Chinese pages. The front desk cannot open the case. Screenshots go
to var/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect

from core.clock import local_today
from hospital.celery import app as celery_app
from medcard import roles
from medcard import services as medcard_services
from medcard.models import AuditEvent, User
from medcard.services.accounts import staff_create
from reservations import services as reservations
from reservations.models import ClinicType, Department
from screening import services as screening_services
from screening.models import FieldCorrection, ScreeningCase, ScreeningExamSetting, ScreeningReview
from screening.pipeline.validate import CREATININE_UMOL_PER_MG_DL, ckd_epi_2021
from tests import factories
from tests.browser.journey_checks import ascii_on_chinese_page, axe_violations, horizontal_scroll, watch_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIXTURES = Path(__file__).resolve().parents[1] / "screening" / "fixtures"
FILES = ("renal-70m-clean.png", "renal-70m-photo.jpg")
BIRTH = dt.date(1990, 6, 1)
# Written as printed on a Chinese page too: units ("µmol/L" reads as "mol/L"), the equation's name, the file
# names sent ("renal-70m-clean.png" reads as "m-clean.png"), the clinician's user name in the header.
DATA_WORDS = ("eGFR", "CKD-EPI", "mol", "mmol", "min", "mL", "L", "m", "renal", "m-clean", "m-photo",
              "png", "jpg", "JPEG", "radiology")  # fmt: skip
WIDTHS = {
    "desk": ({"width": 1366, "height": 768}, "en"),
    "tablet": ({"width": 768, "height": 1024}, "zh-hans"),
}


@pytest.fixture
def _media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def _case_with_two_reports(monkeypatch: pytest.MonkeyPatch) -> ScreeningCase:
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # each file is read when it is sent
    account = medcard_services.patient_account_create(
        mobile="13911117777", password=factories.PASSWORD, display_name="邓荣军"
    )
    factories.add_patient(account, name="邓荣军", birth=BIRTH, relationship="self", male=True)
    session = factories.clinic_session(capacity=4, fee="300.00", days_ahead=3, department_code="radiology")
    ClinicType.objects.filter(pk=session.clinic_type_id).update(
        screening_exam="ct_contrast", name_zh="增强CT", name_en="Contrast CT"
    )
    Department.objects.filter(pk=session.department_id).update(name_zh="放射科", name_en="Radiology")
    ScreeningExamSetting.objects.update_or_create(exam_code="ct_contrast", defaults={"mode": "shadow"})
    items = screening_services.questionnaire_items(exam_code="ct_contrast")
    booking = reservations.hold_create(
        account=account,
        patient_id=factories.verified_patient_of(account).pk,
        slot_id=session.slots.get().pk,
        answers={item: item == "diabetes" for item in items},
    )
    for name in FILES:
        screening_services.upload_accept(
            account=account, booking_id=booking.pk, filename=name, data=(FIXTURES / name).read_bytes()
        )
    case = ScreeningCase.objects.get(booking=booking)
    assert case.status == "review", case.decision
    return case


def _signed_in(
    browser: Browser, user: User, base_url: str, viewport: dict[str, int], language: str
) -> BrowserContext:
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=viewport, locale="en-US" if language == "en" else "zh-CN")  # type: ignore[arg-type]
    context.add_cookies(
        [
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url},
            {"name": "django_language", "value": language, "url": base_url},
        ]
    )
    return context


def _check(page: Page, *, chinese: bool) -> None:
    """What every clinician page must pass, as it is now."""
    page.wait_for_load_state("load")
    assert not horizontal_scroll(page), f"horizontal scroll on {page.url}"
    violations = axe_violations(page)
    assert not violations, f"accessibility on {page.url}: {violations}"
    if chinese:
        english = ascii_on_chinese_page(page, allow=DATA_WORDS)
        assert not english, f"untranslated text on {page.url}: {english}"


def _pages_loaded(page: Page) -> None:
    """Every file's page image scrolled into view (they load lazily) and shown: the file view serves both."""
    for image in page.locator("[data-testid=page] img").all():
        image.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=page] img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.evaluate("window.scrollTo(0, 0)")


def _words(language: str) -> dict[str, Any]:
    if language == "en":
        return {"file": "File {n}: {name}", "name_flag": "Name differs from the booking's patient",
                "age_flag": "Age differs from the booking's patient", "years": "{age} years", "sex": "Male",
                "recomputed": "eGFR recomputed (CKD-EPI 2021):", "printed": "eGFR printed:",
                "decline": "Decline", "reason": "Reason", "save": "Save the decision",
                "saved": "Decision saved.", "history": "Decided cases", "declined": "Not approved",
                "by": "by 放射科 吴敏", "card": "Card number", "search": "Search",
                "why": "报告为他人（邓荣俊，70 岁）的检验单"}  # fmt: skip
    return {"file": "文件 {n}：{name}", "name_flag": "姓名与预约就诊人不符",
            "age_flag": "年龄与预约就诊人不符",
            "years": "{age} 岁", "sex": "男", "recomputed": "重新计算的 eGFR（CKD-EPI 2021）：",
            "printed": "报告 eGFR：", "decline": "不通过", "reason": "原因", "save": "保存决定",
            "saved": "决定已保存。", "history": "已判定的审核单", "declined": "审核未通过",
            "by": "判定人 放射科 吴敏", "card": "卡号", "search": "搜索",
            "why": "报告为他人（邓荣俊，70 岁）的检验单"}  # fmt: skip


@pytest.mark.usefixtures("_media")
@pytest.mark.parametrize("screen", sorted(WIDTHS))
def test_a_clinician_decides_a_case_with_two_files_and_finds_it_in_the_history(
    screen: str, live_server, browser: Browser, monkeypatch, settings
) -> None:
    viewport, language = WIDTHS[screen]
    other_language = "zh-hans" if language == "en" else "en"
    case = _case_with_two_reports(monkeypatch)
    clinician = staff_create(username="radiology9", password=factories.PASSWORD, display_name="放射科 吴敏",
                             role=roles.CLINICIAN)  # fmt: skip
    shots = settings.VAR_DIR / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    words = _words(language)
    context = _signed_in(browser, clinician, live_server.url, viewport, language)
    page = context.new_page()
    watch = watch_page(page)

    # 1. The queue lists the case; the clinician opens it.
    page.goto(f"{live_server.url}/screening/staff/")
    _check(page, chinese=language != "en")
    page.locator(f'[data-testid=queue-row][data-case="{case.pk}"] a').click()
    expect(page.get_by_test_id("file")).to_have_count(2)

    # 2. Each file is named, holds its own values, and flags the name and age printed on it.
    for number, (name, section) in enumerate(zip(FILES, page.get_by_test_id("file").all(), strict=True), 1):
        expect(section.locator("h2")).to_have_text(words["file"].format(n=number, name=name))
        expect(section.get_by_test_id("file-meta")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d"))
        expect(section.locator('[data-testid=fields] tr[data-field="analyte:creatinine"]')).to_contain_text(
            "88"
        )
        expect(section.locator('[data-testid=fields] input[name^="fix_"]').first).to_be_visible()
        flags = section.get_by_test_id("identity-flags")
        expect(flags).to_contain_text(words["name_flag"])
        expect(flags).to_contain_text("邓荣俊")
        expect(flags).to_contain_text(words["age_flag"])
    # 3. The patient's age and sex, and the recomputed eGFR beside the printed one.
    today = local_today()
    age = today.year - BIRTH.year - ((today.month, today.day) < (BIRTH.month, BIRTH.day))
    facts = page.get_by_test_id("patient-facts")
    expect(facts).to_contain_text(words["years"].format(age=age))
    expect(facts).to_contain_text(words["sex"])
    on_collection = 2026 - BIRTH.year - ((BIRTH.month, BIRTH.day) > (11, 20))
    recomputed = ckd_epi_2021(88 / CREATININE_UMOL_PER_MG_DL, on_collection, female=False)
    egfr = page.get_by_test_id("file").first.get_by_test_id("egfr")
    expect(egfr).to_contain_text(words["printed"])
    expect(egfr.get_by_test_id("egfr-printed")).to_contain_text("81")
    expect(egfr).to_contain_text(words["recomputed"])
    expect(egfr.get_by_test_id("egfr-recomputed")).to_contain_text(f"{recomputed:.1f}")
    _check(page, chinese=language != "en")
    _pages_loaded(page)
    page.screenshot(path=str(shots / f"screening-review-case-{screen}-{language}.png"), full_page=True)

    # 4. The same page in the other language fits as well.
    context.add_cookies([{"name": "django_language", "value": other_language, "url": live_server.url}])
    page.reload()
    _check(page, chinese=other_language != "en")
    _pages_loaded(page)
    page.screenshot(path=str(shots / f"screening-review-case-{screen}-{other_language}.png"), full_page=True)
    if screen == "tablet":  # the tablet held the other way: 1024 px wide
        page.set_viewport_size({"width": 1024, "height": 768})
        assert not horizontal_scroll(page), "horizontal scroll at 1024 px"
        page.set_viewport_size(viewport)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.reload()

    # 5. Decline with a reason and a correction typed on the second file.
    second = page.get_by_test_id("file").nth(1)
    second.locator('input[name="fix_1/analyte:creatinine"]').fill("89")
    page.get_by_role("radio", name=words["decline"]).check()
    page.get_by_label(words["reason"], exact=True).fill(words["why"])
    page.get_by_role("button", name=words["save"]).click()
    expect(page.locator(".messages")).to_contain_text(words["saved"])
    expect(page.locator(f'[data-testid=queue-row][data-case="{case.pk}"]')).to_have_count(0)

    # 6. The history, linked from the queue: who decided, when, the decision and why; found by card number.
    page.get_by_test_id("history-link").click()
    row = page.locator(f'[data-testid=history-row][data-case="{case.pk}"]')
    expect(row).to_contain_text(words["declined"])
    expect(row.get_by_test_id("decided-by")).to_have_text(words["by"])
    expect(row.get_by_test_id("history-reason")).to_contain_text(words["why"])
    _check(page, chinese=language != "en")
    card = factories.verified_patient_of(case.booking.account).cards.get().number
    page.get_by_label(words["card"]).fill(card)
    page.get_by_role("button", name=words["search"]).click()
    expect(page.get_by_test_id("history-row")).to_have_count(1)
    expect(row).to_be_visible()
    _check(page, chinese=language != "en")
    page.screenshot(path=str(shots / f"screening-review-history-{screen}-{language}.png"), full_page=True)
    context.add_cookies([{"name": "django_language", "value": other_language, "url": live_server.url}])
    page.reload()
    _check(page, chinese=other_language != "en")
    watch.assert_clean()
    context.close()

    review = ScreeningReview.objects.get(case=case)
    assert (review.staff, review.decision, review.reason) == (clinician, "decline", words["why"])
    correction = FieldCorrection.objects.get(review=review)
    assert (correction.field_key, correction.corrected_value) == ("1/analyte:creatinine", "89")
    assert AuditEvent.objects.filter(
        actor=clinician, action=AuditEvent.Action.SCREENING_DECIDED, target=f"screening case {case.pk}"
    ).exists()

    # 7. The front desk cannot open the case (nor, so, decide it).
    desk = factories.staff(role=roles.FRONT_DESK, username="desk-review")
    desk_context = _signed_in(browser, desk, live_server.url, viewport, language)
    desk_page = desk_context.new_page()
    response = desk_page.goto(f"{live_server.url}/screening/staff/cases/{case.pk}/")
    assert response is not None and response.status == 404
    desk_context.close()
