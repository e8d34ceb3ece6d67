"""Patient journeys of the card and of people and sign-in, walked in Chromium on a 360 x 640 phone.

Each journey runs in the variants it must pass (Chinese, English, large text, without JavaScript) and, on
every page it reaches, checks what ``journey_checks.check_patient_page`` checks: no console error or failed
request (a missing favicon included), no horizontal scroll, no serious or critical axe violation, no English
on a Chinese page. Every QR code shown is decoded from a screenshot by a decoder that reads only full QR
codes.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from hospital.celery import app as celery_app
from medcard import services as medcard_services
from medcard import sms, tokens
from medcard.models import AuditEvent, Card, Patient, PatientLink, User
from reservations import services as reservation_services
from tests import factories
from tests.browser.conftest import JourneyPhone
from tests.browser.journey_checks import check_patient_page, qr_codes_from_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(django_settings.VAR_DIR) / "screenshots" / "journeys-card"
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def _last_code(mobile: str) -> str:
    text = sms.sandbox_last_text(mobile)
    assert text is not None
    found = re.search(r"\d{6}", text)
    assert found is not None
    return found.group(0)


def _submit(page: Page, form: str = "form.card") -> None:
    page.locator(f"{form} button[type=submit]").first.click()
    page.wait_for_load_state("load")


def _sign_in_by_sms(phone: JourneyPhone, live_url: str, mobile: str) -> None:
    """The SMS sign-in as a new patient: number, code, and a too-early request for a new code in between."""
    page = phone.page
    page.goto(live_url + "/accounts/login/")
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    page.locator("#id_mobile").fill(mobile)
    _submit(page)
    expect(page.locator("#id_code")).to_be_visible()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    wait = page.get_by_test_id("resend-wait")
    expect(wait).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / f"sign-in-code-{phone.variant}.png"), full_page=True)
    if phone.javascript:
        # The button waits for the minute to pass and counts down.
        expect(page.get_by_test_id("resend")).to_be_disabled()
        first = int(wait.locator(".seconds").inner_text())
        expect(wait.locator(".seconds")).not_to_have_text(str(first), timeout=3_000)
    else:
        # Without JavaScript a tap is possible: it brings the patient back to the code entry, with the time.
        page.get_by_test_id("resend").click()
        expect(page.get_by_test_id("too-soon")).to_be_visible()
        expect(page.locator("#id_code")).to_be_visible()
        expect(wait).to_be_visible()
        check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    page.locator("#id_code").fill(_last_code(mobile))
    _submit(page)
    expect(page.locator(".who")).to_have_text(mobile[:3] + "****" + mobile[-4:])


def _add_self(page: Page, live_url: str, *, name: str, birth: date) -> None:
    """Add the account's holder (the add form's default relationship) and wait for the verified card."""
    page.goto(live_url + "/accounts/patients/add/")
    page.locator("#id_name").fill(name)
    page.locator("#id_id_number").fill(factories.resident_id(birth, male=False))
    _submit(page)
    expect(page.get_by_test_id("card-number")).to_be_visible()


def _card_token_verifies(page: Page, *, patient: Patient) -> str:
    """Decode the card page's QR code from a screenshot; the token verifies and names the active card."""
    codes = qr_codes_from_screenshot(page)
    assert len(codes) == 1, codes
    claims = tokens.token_verify(codes[0], public_key=tokens.public_key_from_settings(), now=timezone.now())
    active = Card.objects.get(patient=patient, status=Card.Status.ACTIVE)
    assert claims.card_number == active.number
    return active.number


def test_a_new_patient_signs_in_adds_themself_and_shows_a_card_that_scans(  # type: ignore[no-untyped-def]
    live_server, journey_phone: JourneyPhone
) -> None:
    phone, page = journey_phone, journey_phone.page
    mobile = "13911120001"
    _sign_in_by_sms(phone, live_server.url, mobile)
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    assert page.locator("a[href='/api/docs/']").count() == 0  # no developer tile for patients

    # Adding the first person: 'self' is the default, so the first try goes through.
    page.goto(live_server.url + "/accounts/patients/add/")
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    expect(page.locator("#id_relationship")).to_have_value("self")
    page.locator("#id_name").fill("周文")
    page.locator("#id_id_number").fill(factories.resident_id(date(1980, 3, 14), male=True))
    _submit(page)
    expect(page.get_by_test_id("card-number")).to_have_text(re.compile(r"^\d{4} \d{4} \d{4}$"))
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    patient = Patient.objects.get(name="周文")

    # The card page's code decodes, quiet zone and all, at 360 px (and in large-text mode).
    box = page.locator("#qr svg").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    first_card = _card_token_verifies(page, patient=patient)
    if phone.javascript:
        page.reload()
    else:
        page.get_by_test_id("fresh-code").click()  # no timed reload without JavaScript: a link instead
    assert _card_token_verifies(page, patient=patient) == first_card

    # The printable card: a full QR code of the card number.
    page.locator(f"a[href='/accounts/patients/{patient.pk}/print/']").click()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    page.screenshot(path=str(SCREENSHOTS / f"card-print-{phone.variant}.png"), full_page=True)
    assert qr_codes_from_screenshot(page) == [first_card]
    page.locator(f"main a[href='/accounts/patients/{patient.pk}/']").click()

    # Who read the record: a page of its own, with the way back.
    page.locator(f"a[href='/accounts/patients/{patient.pk}/access/']").click()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    page.locator(f"main a[href='/accounts/patients/{patient.pk}/']").click()

    # Report lost asks first; "no" keeps the card, "yes" replaces it.
    lost = page.locator(f"a[href='/accounts/patients/{patient.pk}/report-lost/']")
    lost.click()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    page.screenshot(path=str(SCREENSHOTS / f"card-report-lost-{phone.variant}.png"), full_page=True)
    page.locator(f"main a[href='/accounts/patients/{patient.pk}/']").click()
    assert Card.objects.get(patient=patient, status=Card.Status.ACTIVE).number == first_card
    lost.click()
    _submit(page, "main form")
    expect(page.locator(".messages")).to_be_visible()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    second_card = _card_token_verifies(page, patient=patient)
    assert second_card != first_card
    assert Card.objects.get(number=first_card).status == Card.Status.REVOKED
    page.screenshot(path=str(SCREENSHOTS / f"card-{phone.variant}.png"), full_page=True)


@pytest.mark.parametrize("journey_phone", ["zh", "zh-no-js"], indirect=True)
def test_family_members_are_added_on_the_first_try_edited_and_removed(  # type: ignore[no-untyped-def]
    live_server, journey_phone: JourneyPhone
) -> None:
    phone, page = journey_phone, journey_phone.page
    _sign_in_by_sms(phone, live_server.url, "13911120002")
    _add_self(page, live_server.url, name="周文", birth=date(1980, 3, 14))

    # A family member: no relationship is preselected once the account has its holder.
    page.goto(live_server.url + "/accounts/patients/add/")
    expect(page.locator("#id_relationship")).to_have_value("")
    expect(page.locator("#id_relationship option[value=self]")).to_have_count(0)
    # An implausible birth date (a passport, so the date is typed) is refused with a clear message.
    page.locator("#id_name").fill("周老")
    page.locator("#id_id_type").select_option("passport")
    page.locator("#id_id_number").fill("E12345678")
    page.locator("#id_sex").select_option("M")
    page.locator("#id_birth_date").fill("1890-01-01")
    page.locator("#id_relationship").select_option("parent")
    _submit(page)
    expect(page.locator("#id_birth_date ~ .error")).to_contain_text("120")
    phone.watch.expect_status(400, "/accounts/patients/add/")  # the refusal is the expected answer
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)

    # A resident ID with a wrong check character: refused, and nothing "derived" from it is shown.
    page.locator("#id_id_type").select_option("resident_id")
    good = factories.resident_id(date(1958, 6, 12), male=False)
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    page.locator("#id_name").fill("周母")
    page.locator("#id_id_number").fill(wrong)
    page.locator("#id_sex").select_option("")
    page.locator("#id_birth_date").fill("")
    _submit(page)
    expect(page.locator("#id_id_number ~ .error")).to_be_visible()
    expect(page.locator("#derived")).to_be_hidden()
    expect(page.locator("#id_id_number")).to_have_value(wrong)  # kept, to be corrected in place
    phone.watch.expect_status(400, "/accounts/patients/add/")
    page.locator("#id_id_number").fill(good)
    if phone.javascript:
        expect(page.locator("#derived")).to_be_visible()
        expect(page.locator("#derived")).to_contain_text("1958-06-12")
    page.locator("#id_relationship").select_option("parent")
    _submit(page)
    expect(page.get_by_test_id("card-number")).to_be_visible()
    mother = Patient.objects.get(name="周母")
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)

    # Edit: the relationship and the mobile number, audited.
    page.locator(f"a[href='/accounts/patients/{mother.pk}/edit/']").click()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    page.locator("#id_relationship").select_option("other")
    page.locator("#id_mobile").fill("13911129999")
    _submit(page)
    expect(page.locator(".messages")).to_be_visible()
    link = PatientLink.objects.get(patient=mother)
    assert link.relationship == "other"
    mother.refresh_from_db()
    assert mother.mobile == "13911129999"
    edit = AuditEvent.objects.get(patient=mother, action=AuditEvent.Action.PATIENT_UPDATED)
    assert edit.changes["relationship"] == ["parent", "other"]

    # Remove: asked first, then gone from the list; the person and their card stay at the hospital.
    page.locator(f"a[href='/accounts/patients/{mother.pk}/remove/']").click()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    _submit(page, "main form")
    expect(page).to_have_url(re.compile("/accounts/patients/$"))
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    assert not PatientLink.objects.filter(patient=mother).exists()
    assert Card.objects.filter(patient=mother, status=Card.Status.ACTIVE).exists()
    assert AuditEvent.objects.filter(patient=mother, action=AuditEvent.Action.PATIENT_UNLINKED).exists()
    assert page.locator(f"a[href='/accounts/patients/{mother.pk}/']").count() == 0


@pytest.mark.parametrize("journey_phone", ["zh", "en"], indirect=True)
def test_a_correction_keeps_the_id_number_that_was_entered(  # type: ignore[no-untyped-def]
    live_server, journey_phone: JourneyPhone
) -> None:
    phone, page = journey_phone, journey_phone.page
    _sign_in_by_sms(phone, live_server.url, "13911120003")
    page.goto(live_server.url + "/accounts/patients/add/")
    number = factories.resident_id(date(1990, 1, 2), male=False)
    page.locator("#id_name").fill("李不符")  # the sandbox register answers "mismatch" for this name
    page.locator("#id_id_number").fill(number)
    _submit(page)
    expect(page.locator("#id_id_number")).to_have_value(number)
    expect(page.locator("#id_name")).to_have_value("李不符")
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)


@pytest.mark.parametrize("journey_phone", ["zh", "en"], indirect=True)
def test_a_patient_sets_a_password_with_an_sms_code_and_signs_in_with_it(  # type: ignore[no-untyped-def]
    live_server, journey_phone: JourneyPhone
) -> None:
    phone, page = journey_phone, journey_phone.page
    mobile = "13911120004"
    _sign_in_by_sms(phone, live_server.url, mobile)
    page.goto(live_server.url + "/accounts/patients/")
    page.locator("a[href='/accounts/password/']").click()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    expect(page.locator("#id_current_password")).to_have_count(0)  # SMS-only account: nothing to remember
    # The sign-in code was sent under a minute ago, but a password code is another purpose: it goes now.
    page.get_by_test_id("resend").click()
    expect(page.get_by_test_id("code-sent")).to_be_visible()
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    page.locator("#id_sms_code").fill(_last_code(mobile))
    page.locator("#id_new_password").fill("lantern-harbour-42")
    page.locator("#id_new_password_again").fill("lantern-harbour-42")
    _submit(page)
    expect(page).to_have_url(re.compile("/accounts/patients/$"))
    expect(page.locator(".messages")).to_be_visible()

    page.locator("form[action='/accounts/logout/'] button").click()
    page.goto(live_server.url + "/accounts/login/password/")
    page.locator("#id_mobile").fill(mobile)
    page.locator("#id_password").fill("lantern-harbour-42")
    _submit(page)
    expect(page.locator(".who")).to_have_text("139****0004")

    # Changing it later: the current password is the proof.
    page.goto(live_server.url + "/accounts/password/")
    page.locator("#id_current_password").fill("wrong-password-1")
    page.locator("#id_new_password").fill("meadow-lighthouse-7")
    page.locator("#id_new_password_again").fill("meadow-lighthouse-7")
    _submit(page)
    expect(page.locator("#id_current_password ~ .error")).to_be_visible()
    phone.watch.expect_status(400, "/accounts/password/")
    page.locator("#id_current_password").fill("lantern-harbour-42")
    page.locator("#id_new_password").fill("meadow-lighthouse-7")
    page.locator("#id_new_password_again").fill("meadow-lighthouse-7")
    _submit(page)
    expect(page).to_have_url(re.compile("/accounts/patients/$"))
    account = medcard_services.user_for_credentials(username=None, mobile=mobile)
    assert account is not None and account.check_password("meadow-lighthouse-7")


@pytest.mark.parametrize("journey_phone", ["zh-large-text"], indirect=True)
def test_deactivating_says_the_number_opens_a_new_empty_account_and_it_does(  # type: ignore[no-untyped-def]
    live_server, journey_phone: JourneyPhone, settings
) -> None:
    settings.SMS_CODE_MIN_INTERVAL_SECONDS = 4  # 60 in production: short, so the test sees the wait end
    phone, page = journey_phone, journey_phone.page
    mobile = "13911120005"
    _sign_in_by_sms(phone, live_server.url, mobile)
    _add_self(page, live_server.url, name="孙红", birth=date(1975, 5, 5))
    page.goto(live_server.url + "/accounts/deactivate/")
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
    expect(page.locator("main")).to_contain_text("新的空账户")
    page.locator("input[name=confirm]").check()
    _submit(page)
    expect(page.locator(".messages")).to_contain_text("新的空账户")
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)

    # What the pages said is what happens: the same number signs in to a new account with nobody on it.
    page.goto(live_server.url + "/accounts/login/")
    page.locator("#id_mobile").fill(mobile)
    _submit(page)
    if page.get_by_test_id("too-soon").count():
        # The sign-in code of a moment ago was used: the page does not claim it still works, and a new
        # code can be asked when the countdown ends.
        expect(page.get_by_test_id("too-soon")).not_to_contain_text("仍然有效")
        expect(page.get_by_test_id("resend")).to_be_enabled(timeout=10_000)
        page.get_by_test_id("resend").click()
    page.locator("#id_code").fill(_last_code(mobile))
    _submit(page)
    expect(page.locator(".who")).to_be_visible()
    page.goto(live_server.url + "/accounts/patients/")
    expect(page.locator("main .list li")).to_have_count(1)  # the "no patients yet" line
    assert page.locator("main .list a").count() == 0
    assert User.objects.filter(kind="patient", is_active=False).count() == 1


def test_the_favicon_is_served_and_named_by_every_page(live_server, journey_phone: JourneyPhone) -> None:  # type: ignore[no-untyped-def]
    page = journey_phone.page
    page.goto(live_server.url + "/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href == "/favicon.ico"
    response = page.request.get(live_server.url + href)
    assert response.status == 200 and response.headers["content-type"].startswith("image/")
    check_patient_page(
        page, journey_phone.watch, chinese=journey_phone.chinese, javascript=journey_phone.javascript
    )


@pytest.mark.parametrize("journey_phone", ["zh", "zh-large-text", "zh-no-js"], indirect=True)
def test_the_booking_voucher_is_a_full_qr_code_that_scans(  # type: ignore[no-untyped-def]
    live_server, journey_phone: JourneyPhone, monkeypatch
) -> None:
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # the booking message is sent inline
    phone, page = journey_phone, journey_phone.page
    mobile = "13911120006"
    _sign_in_by_sms(phone, live_server.url, mobile)
    account = medcard_services.user_for_credentials(username=None, mobile=mobile)
    assert account is not None
    patient = factories.add_patient(account, name="吴静", birth=date(1988, 8, 8), relationship="self")
    slot = factories.clinic_session(capacity=2, fee="0.00", days_ahead=2).slots.get()
    booking = reservation_services.hold_create(account=account, patient_id=patient.pk, slot_id=slot.pk)
    assert booking.status == "booked"  # a free clinic: booked at once
    page.goto(f"{live_server.url}/booking/appointments/{booking.pk}/")
    card = Card.objects.get(patient=patient, status=Card.Status.ACTIVE)
    assert qr_codes_from_screenshot(page) == [f"BK:{booking.pk}:{card.number}"]
    check_patient_page(page, phone.watch, chinese=phone.chinese, javascript=phone.javascript)
