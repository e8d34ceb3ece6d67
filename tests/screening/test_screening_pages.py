"""The screening pages through HTTP: the hold's questionnaire, the patient's status card in every state, the
confirmation, and the staff queue, case page and decisions, with who may see what."""

from __future__ import annotations

import datetime as dt
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image

from medcard.models import AuditEvent, User
from reservations import services as reservations
from reservations.models import Booking, ClinicType, Session
from screening.models import FieldCorrection, ScreeningCase, ScreeningReview, ScreeningRun
from screening.pipeline.types import Analyte, Box, Extraction, Field, to_json
from tests import factories
from tests.screening import samples

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.screening.screening_test_urls")]

NO_RISK = {
    "diabetes": False,
    "kidney_disease": False,
    "metformin": False,
    "hypertension_medication": False,
    "possible_pregnancy": False,
    "prior_contrast_reaction": False,
    "dialysis": False,
}
# As the decision step records them (screening.pipeline.decide.CriticalField): two values read, one derived.
CRITICAL = [
    {"name": "creatinine", "value": 88.0, "unit": "umol/L", "collected_on": "2026-11-20",
     "sources": ["0/analyte:creatinine", "0/collected_on"], "upload": 0, "confidence": 0.99},
    {"name": "egfr_recomputed", "value": 79.5, "unit": "mL/min/1.73m2", "collected_on": "2026-11-20",
     "sources": ["0/analyte:creatinine", "0/collected_on", "patient:age_years", "patient:sex"], "upload": 0,
     "confidence": 0.99},
]  # fmt: skip


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def screened_session(*, fee: str = "300.00", exam: str = "ct_contrast", days_ahead: int = 3) -> Session:
    session = factories.clinic_session(
        capacity=5, fee=fee, days_ahead=days_ahead, department_code="radiology"
    )
    ClinicType.objects.filter(pk=session.clinic_type_id).update(screening_exam=exam, name_en="Contrast CT")
    session.refresh_from_db()
    return session


def screened_booking(account: User, *, days_ahead: int = 3, **answers: bool) -> Booking:
    session = screened_session(days_ahead=days_ahead)
    return reservations.hold_create(
        account=account,
        patient_id=factories.verified_patient_of(account).pk,
        slot_id=session.slots.get().pk,
        answers={**NO_RISK, **answers},
    )


def case_in(booking: Booking, status: str, **fields: Any) -> ScreeningCase:
    """Put the booking's case in ``status`` (the pipeline's own transitions are tested with the services)."""
    if status in ("approved", "declined"):
        fields.setdefault("decided_at", timezone.now())
        fields.setdefault("decided_by", "system")
    ScreeningCase.objects.filter(booking=booking).update(status=status, **fields)
    return ScreeningCase.objects.get(booking=booking)


def _uploads_page(client: Client, booking: Booking) -> str:
    response = client.get(f"/screening/bookings/{booking.pk}/uploads/")
    assert response.status_code == 200
    return response.content.decode()


# --- The hold's questionnaire -------------------------------------------------------------------------------


def test_the_hold_form_of_a_screened_exam_asks_each_question_with_yes_and_no(
    patient_client: Client,
) -> None:
    slot = screened_session().slots.get()
    html = patient_client.get(f"/booking/hold/?slot_id={slot.pk}").content.decode()
    for item in NO_RISK:
        assert f'name="q_{item}" value="yes"' in html and f'name="q_{item}" value="no"' in html
    assert "Do you have diabetes?" in html and "Could you be pregnant?" in html


def test_the_hold_form_of_an_unscreened_session_has_no_questionnaire(patient_client: Client) -> None:
    slot = factories.clinic_session(fee="50.00").slots.get()
    html = patient_client.get(f"/booking/hold/?slot_id={slot.pk}").content.decode()
    assert 'data-testid="questionnaire"' not in html and "q_diabetes" not in html


def test_a_missing_answer_is_refused_with_a_clear_error_and_nothing_is_held(
    patient_client: Client, patient: User
) -> None:
    slot = screened_session().slots.get()
    data = {f"q_{item}": "no" for item in NO_RISK if item != "metformin"}
    data.update(slot_id=str(slot.pk), patient_id=str(factories.verified_patient_of(patient).pk))
    response = patient_client.post("/booking/hold/", data)
    html = response.content.decode()
    assert response.status_code == 400
    assert "Please answer every question below." in html
    assert html.count("Please answer this question.") == 1
    assert html.count(" checked") == len(NO_RISK)  # the patient, and the answers given are kept
    assert not Booking.objects.exists()


def test_the_answers_go_with_the_hold_and_lead_to_the_upload_page(
    patient_client: Client, patient: User
) -> None:
    slot = screened_session().slots.get()
    data = {f"q_{item}": "no" for item in NO_RISK}
    data.update(
        q_diabetes="yes", slot_id=str(slot.pk), patient_id=str(factories.verified_patient_of(patient).pk)
    )
    response = patient_client.post("/booking/hold/", data)
    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/screening/bookings/{booking.pk}/uploads/"
    case = ScreeningCase.objects.get(booking=booking)
    assert case.answers == {**NO_RISK, "diabetes": True}
    assert case.status == "awaiting_upload"


# --- The patient's status card ------------------------------------------------------------------------------


def test_a_new_case_waits_for_the_report_and_says_what_to_send(patient_client: Client, patient: User) -> None:
    from screening import services as screening_services

    booking = screened_booking(patient, diabetes=True)
    screening_services.case_decide(case_id=ScreeningCase.objects.get(booking=booking).pk)  # from the answers
    html = _uploads_page(patient_client, booking)
    assert 'data-state="awaiting_upload"' in html
    assert "Waiting for your test results" in html
    assert 'data-code="missing_renal_function"' in html
    assert "Upload a kidney function (creatinine) report from the last 30 days." in html
    assert "data-poll-url" not in html


def test_while_the_report_is_read_the_card_polls_and_offers_check_again_without_javascript(
    patient_client: Client, patient: User
) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "processing")
    html = _uploads_page(patient_client, booking)
    assert "Reading your report…" in html
    assert f'data-poll-url="/screening/bookings/{booking.pk}/status/"' in html
    # No timed reload (axe: a critical barrier); without JavaScript the patient checks again by a link.
    assert 'http-equiv="refresh"' not in html
    assert f'href="/screening/bookings/{booking.pk}/uploads/" data-testid="check-again"' in html
    card = patient_client.get(f"/screening/bookings/{booking.pk}/status/")
    assert card.status_code == 200 and card["Cache-Control"].startswith("max-age=0")
    assert card.content.decode().lstrip().startswith("<section")


def test_the_values_read_are_shown_for_confirmation(patient_client: Client, patient: User) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "confirm", decision={"critical_fields": CRITICAL})
    html = _uploads_page(patient_client, booking)
    assert "Creatinine: <strong>88 µmol/L</strong>" in html
    assert "Collected on: <strong>2026-11-20</strong>" in html
    assert "79.5" not in html  # derived, not printed: nothing the patient could check
    assert 'name="correct" value="yes"' in html and 'name="correct" value="no"' in html


def test_an_approved_held_number_asks_for_payment_within_the_window(
    patient_client: Client, patient: User
) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "approved", patient_confirmed=True)
    until = timezone.now() + timedelta(hours=20)
    Booking.objects.filter(pk=booking.pk).update(hold_expires_at=until)
    html = _uploads_page(patient_client, booking)
    assert "Approved" in html
    assert f"Please pay by {timezone.localtime(until):%Y-%m-%d %H:%M}" in html
    assert f'action="/booking/appointments/{booking.pk}/pay/"' in html or "Pay with WeChat Pay" in html


def test_a_declined_case_gives_the_reason_how_to_fix_it_and_two_ways_on(
    patient_client: Client, patient: User
) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "declined", reason_codes=["result_expired"])
    html = _uploads_page(patient_client, booking)
    assert 'data-code="result_expired"' in html
    assert "How to fix it:" in html
    assert "Upload again" in html and "Ask for a manual review" in html


def test_a_case_with_staff_says_when_to_expect_an_answer(patient_client: Client, patient: User) -> None:
    booking = screened_booking(patient, diabetes=True)
    due = timezone.now() + timedelta(hours=24)
    case_in(booking, "review", review_due_at=due)
    html = _uploads_page(patient_client, booking)
    assert "With our staff for review" in html
    assert f"Expect an answer by {timezone.localtime(due):%Y-%m-%d %H:%M}" in html


def test_the_booking_page_shows_the_screening_and_holds_back_the_pay_buttons(
    patient_client: Client, patient: User
) -> None:
    booking = screened_booking(patient, diabetes=True)
    html = patient_client.get(f"/booking/appointments/{booking.pk}/").content.decode()
    assert 'data-testid="screening-summary"' in html
    assert "You can pay once your test results are approved." in html
    assert "Pay with WeChat Pay" not in html


def test_an_unscreened_booking_has_no_status_card(patient_client: Client, patient: User) -> None:
    slot = factories.clinic_session(fee="50.00").slots.get()
    booking = reservations.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=slot.pk
    )
    assert 'id="screening-status"' not in _uploads_page(patient_client, booking)
    assert patient_client.get(f"/screening/bookings/{booking.pk}/status/").status_code == 404


# --- Confirmation -------------------------------------------------------------------------------------------


def test_confirming_the_values_approves_the_case(patient_client: Client, patient: User) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "confirm", decision={"critical_fields": CRITICAL})
    response = patient_client.post(f"/screening/bookings/{booking.pk}/confirm/", {"correct": "yes"})
    assert response.status_code == 302
    case = ScreeningCase.objects.get(booking=booking)
    assert case.patient_confirmed is True
    assert case.status == "approved"


def test_saying_the_values_are_wrong_sends_the_case_to_staff(patient_client: Client, patient: User) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "confirm", decision={"critical_fields": CRITICAL})
    response = patient_client.post(
        f"/screening/bookings/{booking.pk}/confirm/", {"correct": "no"}, follow=True
    )
    case = ScreeningCase.objects.get(booking=booking)
    assert case.patient_confirmed is False
    assert case.status == "review"
    assert "With our staff for review" in response.content.decode()


def test_an_outsider_can_neither_see_nor_confirm_a_case(outsider: User, patient: User) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "confirm", decision={"critical_fields": CRITICAL})
    client = _client(outsider)
    assert client.get(f"/screening/bookings/{booking.pk}/status/").status_code == 404
    assert client.post(f"/screening/bookings/{booking.pk}/confirm/", {"correct": "yes"}).status_code == 404
    assert client.post(f"/screening/bookings/{booking.pk}/review/").status_code == 404
    assert ScreeningCase.objects.get(booking=booking).status == "confirm"


def test_staff_accounts_are_sent_to_the_patient_sign_in_from_patient_pages(
    clinician: User, patient: User
) -> None:
    booking = screened_booking(patient, diabetes=True)
    response = _client(clinician).get(f"/screening/bookings/{booking.pk}/status/")
    assert response.status_code == 302 and "/accounts/" in response["Location"]


# --- Staff --------------------------------------------------------------------------------------------------


def _review_case(account: User, *, days_ahead: int, codes: list[str]) -> ScreeningCase:
    booking = screened_booking(account, days_ahead=days_ahead, diabetes=True)
    decision = {
        "outcome": "review",
        "critical_fields": CRITICAL,
        "reasons": [{"code": code, "params": {}, "fields": ["0/analyte:creatinine"]} for code in codes],
    }
    return case_in(booking, "review", reason_codes=codes, decision=decision,
                   review_due_at=timezone.now() + timedelta(hours=24))  # fmt: skip


def _with_extraction(case: ScreeningCase) -> ScreeningRun:
    """An uploaded photo and the reading of it, as the pipeline stores them."""
    from screening import services as screening_services

    upload = screening_services.upload_accept(
        account=case.booking.account, booking_id=case.booking_id, filename="report.jpg",
        data=samples.jpeg((800, 600)),
    )  # fmt: skip
    creatinine = Analyte(
        code="creatinine", loinc="2160-0", name_en="Creatinine", name_zh="肌酐", raw_name="肌酐", value=88.0,
        value_raw="88", unit="umol/L", unit_raw="μmol/L", value_canonical=88.0, unit_canonical="umol/L",
        score=0.91, box=Box(page=1, x0=400, y0=150, x1=480, y1=180),
    )  # fmt: skip
    collected = Field(value=dt.date(2026, 11, 20), raw="2026-11-20", score=0.99, box=Box(1, 80, 60, 240, 90))
    extraction = to_json(Extraction(analytes=(creatinine,), collected_on=collected))
    return ScreeningRun.objects.create(
        case=case, upload=upload, step="extract", key=f"extract:{case.pk}:{upload.sha256}",
        input_sha256=upload.sha256,
        outputs={"extraction": extraction,
                 "text": {"pages": [{"number": 1, "width_px": 800, "height_px": 600}]}},
    )  # fmt: skip


def test_the_queue_lists_cases_soonest_visit_first_with_staff_reasons(clinician: User) -> None:
    later = _review_case(factories.patient_account(), days_ahead=5, codes=["egfr_30_44"])
    sooner = _review_case(factories.patient_account(), days_ahead=2, codes=["result_expired"])
    ScreeningCase.objects.filter(pk=later.pk).update(updated_at=timezone.now() - timedelta(hours=6))
    response = _client(clinician).get("/screening/staff/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index(f'data-case="{sooner.pk}"') < html.index(f'data-case="{later.pk}"')
    assert "waiting-long" in html
    assert sooner.booking.patient.masked_name in html


def test_the_case_page_shows_the_image_with_the_fields_boxed_and_audits_the_read(clinician: User) -> None:
    case = _review_case(factories.patient_account(), days_ahead=2, codes=["egfr_mismatch"])
    run = _with_extraction(case)
    response = _client(clinician).get(f"/screening/staff/cases/{case.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'src="/screening/uploads/{run.upload_id}/file/"' in html
    # 400/800 = 50 %, 150/600 = 25 %, 80/800 = 10 %, 30/600 = 5 %
    assert "left: 50.000%; top: 25.000%; width: 10.000%; height: 5.000%" in html
    assert 'class="box low"' in html  # score 0.91 and a failed check
    assert "Printed eGFR differs from CKD-EPI 2021" in html and "0.91" in html
    assert 'name="fix_0/analyte:creatinine"' in html
    assert AuditEvent.objects.filter(actor=clinician, patient=case.booking.patient).exists()
    image = _client(clinician).get(f"/screening/uploads/{run.upload_id}/file/")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"


def test_staff_approve_with_a_correction_and_it_is_recorded(clinician: User) -> None:
    case = _review_case(factories.patient_account(), days_ahead=2, codes=["egfr_mismatch"])
    _with_extraction(case)
    response = _client(clinician).post(
        f"/screening/staff/cases/{case.pk}/",
        {
            "decision": "approve",
            "reason": "Creatinine read correctly on the photo",
            "fix_0/analyte:creatinine": "86",
        },
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "approved" and case.decided_by == "staff"
    review = ScreeningReview.objects.get(case=case)
    assert (review.staff, review.decision) == (clinician, "approve")
    correction = FieldCorrection.objects.get(review=review)
    assert (correction.field_key, correction.corrected_value) == ("0/analyte:creatinine", "86")


def test_a_decision_without_a_reason_is_refused(clinician: User) -> None:
    case = _review_case(factories.patient_account(), days_ahead=2, codes=["egfr_30_44"])
    response = _client(clinician).post(
        f"/screening/staff/cases/{case.pk}/", {"decision": "decline", "reason": " "}
    )
    assert response.status_code == 400
    assert "Give a reason for the decision." in response.content.decode()
    case.refresh_from_db()
    assert case.status == "review" and not ScreeningReview.objects.exists()


def test_a_staff_decline_reaches_the_patient_with_its_reason(clinician: User, patient: User) -> None:
    booking = screened_booking(patient, diabetes=True)
    case = case_in(booking, "review", reason_codes=["egfr_lt_30"])
    _client(clinician).post(
        f"/screening/staff/cases/{case.pk}/",
        {"decision": "decline", "reason": "Please see your nephrologist first"},
    )
    html = _uploads_page(_client(patient), booking)
    assert 'data-state="declined"' in html
    assert "Please see your nephrologist first" in html


@pytest.mark.parametrize(
    "path", ["/screening/staff/", "/screening/staff/audit/", "/screening/staff/cases/{case}/"]
)
def test_staff_pages_are_404_for_patients_and_other_staff_and_ask_visitors_to_sign_in(
    path: str, patient: User, outsider: User, pharmacist: User
) -> None:
    case = _review_case(patient, days_ahead=2, codes=["egfr_30_44"])
    url = path.format(case=case.pk)
    for user in (patient, outsider, pharmacist):
        assert _client(user).get(url).status_code == 404
    assert _client(pharmacist).post(url, {"decision": "approve", "reason": "x"}).status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/staff-login/" in anonymous["Location"]
    case.refresh_from_db()
    assert case.status == "review"


def test_the_blind_audit_lists_sampled_automatic_decisions_without_their_outcome(clinician: User) -> None:
    booking = screened_booking(factories.patient_account(), diabetes=True)
    case = case_in(booking, "approved", blind_audit=True, reason_codes=[])
    html = _client(clinician).get("/screening/staff/audit/").content.decode()
    assert f'href="/screening/staff/cases/{case.pk}/"' in html
    page = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    assert 'data-testid="case-reasons"' not in page and 'data-testid="case-status"' not in page
    assert 'data-testid="decision-form"' in page


def test_a_blind_audit_is_recorded_without_changing_the_decision(clinician: User) -> None:
    booking = screened_booking(factories.patient_account(), diabetes=True)
    case = case_in(booking, "approved", blind_audit=True, decision={"outcome": "approve"})
    response = _client(clinician).post(
        f"/screening/staff/cases/{case.pk}/", {"decision": "decline", "reason": "Report is not the patient's"}
    )
    assert response.status_code == 302 and response["Location"] == "/screening/staff/audit/"
    review = ScreeningReview.objects.get(case=case)
    assert review.blind_audit and review.decision == "decline"
    assert ScreeningCase.objects.get(pk=case.pk).status == "approved"
    assert (
        f"/screening/staff/cases/{case.pk}/"
        not in _client(clinician).get("/screening/staff/audit/").content.decode()
    )


def test_a_pdf_page_is_shown_to_staff_as_an_image_and_each_read_is_audited(
    clinician: User, pharmacist: User
) -> None:
    case = _review_case(factories.patient_account(), days_ahead=2, codes=["egfr_30_44"])
    from screening import services as screening_services

    upload = screening_services.upload_accept(
        account=case.booking.account,
        booking_id=case.booking_id,
        filename="report.pdf",
        data=samples.pdf(pages=2),
    )
    url = f"/screening/staff/uploads/{upload.pk}/pages/2/"
    response = _client(clinician).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG") and "no-store" in response["Cache-Control"]
    assert AuditEvent.objects.filter(actor=clinician, action=AuditEvent.Action.UPLOAD_VIEWED).count() == 1
    assert _client(clinician).get(f"/screening/staff/uploads/{upload.pk}/pages/3/").status_code == 404
    assert _client(pharmacist).get(url).status_code == 404
    assert _client(case.booking.account).get(url).status_code == 404


def test_a_page_declaring_a_huge_size_is_shown_to_staff_under_the_pixel_cap(clinician: User) -> None:
    """A file accepted before uploads refused pages larger than A0 still cannot make the web process render
    a 20000 x 20000 px image (issue 14, item 1)."""
    from django.core.files.storage import default_storage

    from screening import services as screening_services
    from screening.pipeline.render import PDF_RENDER_MAX_SIDE_PX

    case = _review_case(factories.patient_account(), days_ahead=2, codes=["egfr_30_44"])
    upload = screening_services.upload_accept(
        account=case.booking.account, booking_id=case.booking_id, filename="report.pdf", data=samples.pdf()
    )
    Path(default_storage.path(upload.derivative_name)).write_bytes(samples.pdf_huge_page())
    response = _client(clinician).get(f"/screening/staff/uploads/{upload.pk}/pages/1/")
    assert response.status_code == 200
    width, height = Image.open(io.BytesIO(response.content)).size
    assert (width, height) == (PDF_RENDER_MAX_SIDE_PX, PDF_RENDER_MAX_SIDE_PX)


def test_after_an_automatic_decline_the_patient_can_ask_for_a_person(
    patient_client: Client, patient: User
) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "declined", reason_codes=["result_expired"],
            decision={"reasons": [{"code": "result_expired", "params": {"max_age_days": 30}}]})  # fmt: skip
    Booking.objects.filter(pk=booking.pk).update(status="cancelled", cancel_reason="screening_declined")
    html = _uploads_page(patient_client, booking)
    assert "it must have been taken within 30 days" in html
    response = patient_client.post(
        f"/screening/bookings/{booking.pk}/review/", {"then": "review"}, follow=True
    )
    assert "Sent to our staff" in response.content.decode()
    case = ScreeningCase.objects.get(booking=booking)
    assert case.status == "review"
    assert Booking.objects.get(pk=booking.pk).status == "held"


def test_send_a_new_report_holds_the_number_again_and_opens_the_upload_form(
    patient_client: Client, patient: User
) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "declined", reason_codes=["result_expired"])
    Booking.objects.filter(pk=booking.pk).update(status="cancelled", cancel_reason="screening_declined")
    response = patient_client.post(f"/screening/bookings/{booking.pk}/review/", {"then": "upload"})
    assert response["Location"] == f"/screening/bookings/{booking.pk}/uploads/#upload-form"
    assert 'id="upload-form"' in _uploads_page(patient_client, booking)


def test_a_staff_decline_is_final_for_the_patient(patient_client: Client, patient: User) -> None:
    booking = screened_booking(patient, diabetes=True)
    case_in(booking, "declined", decided_by="staff", reason_codes=[])
    Booking.objects.filter(pk=booking.pk).update(status="cancelled", cancel_reason="screening_declined")
    html = _uploads_page(patient_client, booking)
    assert "Ask for a manual review" not in html and "Book again" in html
    patient_client.post(f"/screening/bookings/{booking.pk}/review/")
    assert ScreeningCase.objects.get(booking=booking).status == "declined"


def test_a_photo_the_reader_turned_is_shown_turned_the_same_way(clinician: User) -> None:
    case = _review_case(factories.patient_account(), days_ahead=2, codes=["egfr_mismatch"])
    run = _with_extraction(case)  # an 800 × 600 photo
    outputs = {
        **run.outputs,
        "text": {"pages": [{"number": 1, "width_px": 600, "height_px": 800, "rotation_deg": 90}]},
    }
    ScreeningRun.objects.create(  # runs are append-only: a later reading of the same file supersedes
        case=case, upload=run.upload, step="extract", key=f"{run.key}:again", input_sha256=run.input_sha256,
        outputs=outputs,
    )  # fmt: skip
    html = _client(clinician).get(f"/screening/staff/cases/{case.pk}/").content.decode()
    url = f"/screening/staff/uploads/{run.upload_id}/pages/1/?rotate=90"
    assert f'src="{url}"' in html
    image = Image.open(io.BytesIO(_client(clinician).get(url).content))
    assert image.size == (600, 800)
    assert (
        _client(clinician).get(f"/screening/staff/uploads/{run.upload_id}/pages/1/?rotate=45").status_code
        == 404
    )
    assert _client(clinician).get(f"/screening/staff/uploads/{run.upload_id}/pages/2/").status_code == 404
