"""Screened exams of issue #11 walked on a 360 x 640 phone, in Chinese and English (and without JavaScript
where the page must refresh or be complete by itself).

No Celery worker runs here (tasks are sent to the broker and stay there): whatever the patient sees, the
request itself produced. Every page reached passes the shared patient-page checks (console errors, failed
requests, dead ends, horizontal scroll, axe serious/critical, English or ASCII punctuation on Chinese pages).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone, translation
from playwright.sync_api import Page, expect

from medcard.models import Patient, User
from reservations import services as reservations
from reservations.models import Booking, ClinicType, Department, Session
from screening import services as screening_services
from screening import tasks
from screening.models import ScreeningCase, ScreeningExamSetting
from screening.services import cases, notify
from tests import factories
from tests.browser.conftest import JourneyPhone
from tests.browser.journey_checks import check_patient_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_RISK = {
    "diabetes": False,
    "kidney_disease": False,
    "metformin": False,
    "hypertension_medication": False,
    "dialysis": False,
    "prior_contrast_reaction": False,
}
SHOTS = settings.VAR_DIR / "screenshots"
ZH_EN = pytest.mark.parametrize("journey_phone", ["zh", "en"], indirect=True)


def _t(phone: JourneyPhone, zh: str, en: str) -> str:
    return zh if phone.chinese else en


def _sign_in(phone: JourneyPhone, account: User, base: str) -> None:
    client = Client()
    client.force_login(account)
    phone.page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}]
    )


def _contrast_ct(*, fee: str = "300.00", days_ahead: int = 3) -> Session:
    session = factories.clinic_session(
        capacity=4, fee=fee, days_ahead=days_ahead, department_code="radiology"
    )
    ClinicType.objects.filter(pk=session.clinic_type_id).update(
        screening_exam="ct_contrast", name_zh="增强CT", name_en="Contrast CT"
    )
    Department.objects.filter(pk=session.department_id).update(name_zh="放射科", name_en="Radiology")
    ScreeningExamSetting.objects.update_or_create(exam_code="ct_contrast", defaults={"mode": "live"})
    session.refresh_from_db()
    return session


def _check(phone: JourneyPhone) -> None:
    check_patient_page(phone.page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)


def _message(booking: Booking, kind: str) -> str:
    """The text of the screening message ``kind`` as sent (in Chinese, like every patient message)."""
    case = ScreeningCase.objects.select_related("booking__slot", "booking__patient").get(booking=booking)
    with translation.override(notify.MESSAGE_LANGUAGE):
        return notify.message_render(case=case, kind=kind)[1]


def _answer(page: Page, question: str, answer: str) -> None:
    page.get_by_role("group", name=question).get_by_label(answer, exact=True).check()


def _held(account: User, session: Session, *, patient: Patient | None = None, **answers: bool) -> Booking:
    """A screened number held through the service, its first decision run (as the hold's request does)."""
    return reservations.hold_create(
        account=account,
        patient_id=(patient or factories.verified_patient_of(account)).pk,
        slot_id=session.slots.get().pk,
        answers={**NO_RISK, **answers},
    )


def test_the_first_screen_names_the_result_to_send_and_asks_no_man_about_pregnancy(
    live_server: Any, journey_phone: JourneyPhone
) -> None:
    """Holding a contrast CT: no errors before answering, no pregnancy question for a man, and the page
    after the hold names the kidney-function result at once (no reload, no worker, no JavaScript needed)."""
    phone, page = journey_phone, journey_phone.page
    account = factories.patient_account(name="邓荣俊")  # a man, born 1980
    session = _contrast_ct()
    _sign_in(phone, account, live_server.url)

    page.goto(f"{live_server.url}/booking/hold/?slot_id={session.slots.get().pk}")
    questionnaire = page.get_by_test_id("questionnaire")
    expect(questionnaire).to_be_visible()
    expect(page.get_by_text(_t(phone, "请回答此问题", "Please answer this question"))).to_have_count(0)
    expect(page.get_by_test_id("questionnaire-errors")).to_have_count(0)
    pregnancy = _t(phone, "您是否可能已怀孕？", "Could you be pregnant?")
    expect(page.get_by_role("group", name=pregnancy)).to_be_hidden()
    _check(phone)
    page.screenshot(path=f"{SHOTS}/screening-hold-form-{phone.variant}.png", full_page=True)

    yes, no = _t(phone, "是", "Yes"), _t(phone, "否", "No")
    _answer(page, _t(phone, "您是否患有糖尿病？", "Do you have diabetes?"), yes)
    for group in questionnaire.get_by_role("group").all():
        if group.is_visible() and not group.get_by_role("radio", checked=True).count():
            group.get_by_label(no, exact=True).check()
    page.get_by_role("button", name=_t(phone, "确认预约", "Hold this number")).click()

    expect(page).to_have_url(re.compile(r"/screening/bookings/\d+/uploads/$"))
    card = page.get_by_test_id("screening-status")
    expect(card).to_have_attribute("data-state", "awaiting_upload")
    expect(card.locator("[data-code=missing_renal_function]")).to_contain_text(
        _t(phone, "肾功能", "kidney function")
    )
    expect(card).to_contain_text("30")
    _check(phone)
    case = ScreeningCase.objects.get()
    assert case.answers["possible_pregnancy"] is False  # not asked: does not apply to him
    page.screenshot(path=f"{SHOTS}/screening-first-screen-{phone.variant}.png", full_page=True)


@ZH_EN
def test_a_staff_approval_leaves_hours_to_pay_and_the_reviewers_note_reaches_the_patient(
    live_server: Any, journey_phone: JourneyPhone, clinician: User
) -> None:
    phone, page = journey_phone, journey_phone.page
    account = factories.patient_account(name="邓荣俊")
    booking = _held(account, _contrast_ct(), diabetes=True)
    case = ScreeningCase.objects.get(booking=booking)
    ScreeningCase.objects.filter(pk=case.pk).update(status="review")
    case.refresh_from_db()
    screening_services.review_decide(
        staff=clinician, case=case, decision="approve", reason="检查前后请多喝水。"
    )
    booking.refresh_from_db()
    assert booking.hold_expires_at is not None
    assert booking.hold_expires_at > timezone.now() + dt.timedelta(hours=2)  # not 15 minutes
    deadline = f"{timezone.localtime(booking.hold_expires_at):%Y-%m-%d %H:%M}"
    _sign_in(phone, account, live_server.url)

    page.goto(f"{live_server.url}/screening/bookings/{booking.pk}/uploads/")
    card = page.get_by_test_id("screening-status")
    expect(card).to_have_attribute("data-state", "approved")
    expect(card.get_by_test_id("reviewer-note")).to_contain_text("检查前后请多喝水。")
    expect(card.get_by_test_id("pay-by")).to_contain_text(deadline)
    # No report was sent here: the page does not say "your test results" were checked next to "no files".
    expect(card.get_by_test_id("decision-why")).to_contain_text(
        _t(phone, "无需检验结果", "no test results are needed")
    )
    expect(page.get_by_text(_t(phone, "还没有文件", "No files yet"))).to_have_count(0)
    _check(phone)
    page.screenshot(path=f"{SHOTS}/screening-staff-approved-{phone.variant}.png", full_page=True)

    page.get_by_role("link", name=_t(phone, "返回预约", "Back to the appointment")).click()
    expect(page.get_by_test_id("reviewer-note")).to_contain_text("检查前后请多喝水。")
    expect(page.get_by_test_id("pay-by")).to_contain_text(deadline)
    expect(page.get_by_test_id("booking-fee")).to_contain_text("¥300.00")
    _check(phone)

    text = _message(booking, "approved")  # what the patient is sent (rendered as the worker would)
    assert deadline in text and "检查前后请多喝水。" in text


@ZH_EN
def test_a_child_approved_without_a_test_is_told_why_and_a_free_exam_says_free(
    live_server: Any, journey_phone: JourneyPhone
) -> None:
    """The girl (8) has no risk factor: approved with no upload. The page says no test was needed and why,
    not "your results meet the requirements" next to "no files yet"; the free exam shows "Free"."""
    phone, page = journey_phone, journey_phone.page
    account = factories.patient_account(name="王大伟")
    girl = factories.add_patient(
        account, name="王小红", birth=timezone.localdate() - dt.timedelta(days=365 * 8 + 30),
        relationship="child", male=False,
    )  # fmt: skip
    mother = factories.add_patient(
        account, name="李芳", birth=dt.date(1988, 4, 2), relationship="spouse", male=False
    )
    session = _contrast_ct(fee="0.00")
    _sign_in(phone, account, live_server.url)

    page.goto(f"{live_server.url}/booking/hold/?slot_id={session.slots.get().pk}")
    pregnancy = page.get_by_role("group", name=_t(phone, "您是否可能已怀孕？", "Could you be pregnant?"))
    expect(pregnancy).to_be_hidden()  # the account holder, a man, is chosen first
    page.locator(f"input[name=patient_id][value='{mother.pk}']").check()
    expect(pregnancy).to_be_visible()  # asked of a woman
    page.locator(f"input[name=patient_id][value='{girl.pk}']").check()
    expect(pregnancy).to_be_hidden()  # hidden for a child, by the stylesheet (no script needed)
    no = _t(phone, "否", "No")
    for group in page.get_by_test_id("questionnaire").get_by_role("group").all():
        if group.is_visible():
            group.get_by_label(no, exact=True).check()
    page.get_by_role("button", name=_t(phone, "确认预约", "Hold this number")).click()

    card = page.get_by_test_id("screening-status")
    expect(card).to_have_attribute("data-state", "approved")
    expect(card.get_by_test_id("decision-why")).to_contain_text(
        _t(
            phone,
            "无需检验：患者没有任何需要检验的风险因素",
            "No test needed: the patient has none of the risk factors",
        )
    )
    expect(page.get_by_text(_t(phone, "符合此项检查的要求", "meet the requirements"))).to_have_count(0)
    expect(page.get_by_text(_t(phone, "还没有文件", "No files yet"))).to_have_count(0)
    _check(phone)
    page.screenshot(path=f"{SHOTS}/screening-no-test-needed-{phone.variant}.png", full_page=True)

    page.get_by_role("link", name=_t(phone, "查看预约", "See the appointment")).click()
    expect(page.get_by_test_id("booking-fee")).to_contain_text(_t(phone, "费用：免费", "Fee: Free"))
    expect(page.locator("main")).not_to_contain_text("0.00")
    _check(phone)


def test_upload_again_waits_for_the_new_report_instead_of_saying_staff_are_checking(
    live_server: Any, journey_phone: JourneyPhone
) -> None:
    phone, page = journey_phone, journey_phone.page
    account = factories.patient_account(name="邓荣俊")
    booking = _held(account, _contrast_ct(), diabetes=True)
    ScreeningCase.objects.filter(booking=booking).update(
        status="declined", decided_by="system", decided_at=timezone.now(), reason_codes=["result_expired"],
        decision={"reasons": [{"code": "result_expired", "params": {"max_age_days": 30}, "fixable": True}]},
    )  # fmt: skip
    Booking.objects.filter(pk=booking.pk).update(status="cancelled", cancel_reason="screening_declined")
    _sign_in(phone, account, live_server.url)

    page.goto(f"{live_server.url}/screening/bookings/{booking.pk}/uploads/")
    card = page.get_by_test_id("screening-status")
    expect(card.get_by_test_id("decline-released")).to_be_visible()
    expect(card.get_by_test_id("decline-money")).to_contain_text(
        _t(phone, "未收取任何费用", "Nothing was charged")
    )
    _check(phone)
    card.get_by_role("button", name=_t(phone, "重新上传", "Upload again")).click()

    card = page.get_by_test_id("screening-status")
    expect(card).to_have_attribute("data-state", "awaiting_upload")
    expect(card).not_to_contain_text(_t(phone, "工作人员正在核对", "A member of staff is checking"))
    expect(page.get_by_test_id("upload-form")).to_be_visible()
    _check(phone)
    assert ScreeningCase.objects.get(booking=booking).status == "awaiting_upload"


@ZH_EN
def test_a_staff_decline_says_so_why_and_what_happens_with_the_money(
    live_server: Any, journey_phone: JourneyPhone, clinician: User
) -> None:
    phone, page = journey_phone, journey_phone.page
    account = factories.patient_account(name="邓荣俊")
    booking = _held(account, _contrast_ct(), diabetes=True, dialysis=True)
    case = ScreeningCase.objects.get(booking=booking)
    ScreeningCase.objects.filter(pk=case.pk).update(status="review")
    case.refresh_from_db()
    screening_services.review_decide(
        staff=clinician, case=case, decision="decline", reason="请先与透析室约定检查时间。"
    )
    _sign_in(phone, account, live_server.url)

    page.goto(f"{live_server.url}/booking/appointments/{booking.pk}/")
    summary = page.get_by_test_id("screening-summary")
    expect(summary.get_by_test_id("decline-released")).to_be_visible()
    expect(summary.get_by_test_id("decline-reason")).to_contain_text("请先与透析室约定检查时间。")
    expect(summary.get_by_test_id("decline-money")).to_contain_text(
        _t(phone, "未收取任何费用", "Nothing was charged")
    )
    _check(phone)
    page.screenshot(path=f"{SHOTS}/screening-declined-{phone.variant}.png", full_page=True)
    summary.get_by_role("link").first.click()
    expect(page.get_by_test_id("screening-status").get_by_test_id("decline-reason")).to_be_visible()
    _check(phone)

    text = _message(booking, "declined")
    assert "请先与透析室约定检查时间。" in text and "预约已取消" in text and "未收取任何费用" in text


@ZH_EN
def test_an_unscreened_booking_has_no_upload_link_and_the_fee_is_written_once_one_way(
    live_server: Any, journey_phone: JourneyPhone
) -> None:
    phone, page = journey_phone, journey_phone.page
    account = factories.patient_account(name="孙丽")
    session = factories.clinic_session(capacity=3, fee="50.00", days_ahead=2)
    _sign_in(phone, account, live_server.url)
    page.goto(f"{live_server.url}/booking/hold/?slot_id={session.slots.first().pk}")
    expect(page.locator("main")).to_contain_text("¥50.00")
    expect(page.locator("h1")).not_to_contain_text("锁定")
    _check(phone)
    page.get_by_role("button", name=_t(phone, "确认预约", "Hold this number")).click()
    expect(page.get_by_test_id("booking-fee")).to_contain_text("¥50.00")
    expect(page.locator("main")).not_to_contain_text(_t(phone, "元", "yuan"))
    expect(page.locator("a[href*='/screening/']")).to_have_count(0)
    _check(phone)


@pytest.mark.parametrize("journey_phone", ["zh-no-js", "en"], indirect=True)
def test_until_the_answers_are_decided_the_page_says_so_and_then_names_the_result(
    live_server: Any, journey_phone: JourneyPhone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the first decision could not run with the hold (nor when the page opened), the page does not ask
    for unnamed "results": it says the answers are being checked, with "check again" (no meta refresh, which
    axe counts as a critical barrier); with JavaScript the card polls and updates itself."""
    phone, page = journey_phone, journey_phone.page
    account = factories.patient_account(name="邓荣俊")
    monkeypatch.setattr(cases, "decide_now", lambda case_id: None)  # every in-process decision fails
    booking = _held(account, _contrast_ct(), diabetes=True)
    case = ScreeningCase.objects.get(booking=booking)
    assert case.decision == {}
    _sign_in(phone, account, live_server.url)

    page.goto(f"{live_server.url}/screening/bookings/{booking.pk}/uploads/")
    card = page.get_by_test_id("screening-status")
    expect(card).to_contain_text(_t(phone, "正在核对您的回答", "Checking your answers"))
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    _check(phone)
    monkeypatch.undo()
    needs = page.get_by_test_id("screening-status").locator("[data-code=missing_renal_function]")
    if phone.javascript:
        tasks.decide_case.apply(args=(case.pk,))  # the worker's delivery; the card polls for it
    else:
        card.get_by_test_id("check-again").click()  # the page decides what is still undecided
    expect(needs).to_be_visible(timeout=15_000)
    _check(phone)
