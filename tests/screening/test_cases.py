"""Screening cases and the held number: opened at hold time, paid for only once approved, released on decline.

The pipeline's reading step is replaced by a stored extraction here (OCR is tested in test_tasks and
test_commands); everything after it (scores, rules, decision, case, booking, messages) is the real thing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.http import Http404
from django.utils import timezone

from core.errors import AppError
from medcard.models import AuditEvent, User
from reservations import notifications, schedules
from reservations import services as reservations
from reservations.models import Booking, Session, Slot
from reservations.services.gates import booking_payment_check
from screening import selectors, services
from screening.models import ScreeningCase, ScreeningExamSetting, ScreeningRun, Upload
from screening.pipeline.types import Analyte, Extraction, Field, TextResult, to_json
from screening.services import pipeline
from tests import factories

NO = {
    "diabetes": False,
    "kidney_disease": False,
    "metformin": False,
    "hypertension_medication": False,
    "dialysis": False,
    "possible_pregnancy": False,
    "prior_contrast_reaction": False,
}
RISK = {**NO, "diabetes": True}


pytestmark = pytest.mark.usefixtures("eager_tasks")


def screened_session(
    *,
    mode: str = "live",
    fee: str = "50.00",
    capacity: int = 2,
    exam: str = "ct_contrast",
    days_ahead: int = 1,
) -> Session:
    """An open session ``days_ahead`` days ahead, its clinic type the screened exam ``exam`` in ``mode``."""
    session = factories.clinic_session(capacity=capacity, fee=fee, days_ahead=days_ahead)
    clinic_type = session.clinic_type
    clinic_type.screening_exam = exam
    clinic_type.save(update_fields=["screening_exam"])
    ScreeningExamSetting.objects.update_or_create(exam_code=exam, defaults={"mode": mode, "review_hours": 4})
    return session


def hold(account: User, session: Session, answers: dict[str, Any] | None = None, **kwargs: Any) -> Booking:
    return reservations.hold_create(
        account=account,
        patient_id=factories.verified_patient_of(account).pk,
        slot_id=session.slots.get().pk,
        answers=answers,
        **kwargs,
    )


def renal_report(
    *,
    creatinine: float = 88.0,
    collected: dt.date = dt.date(2026, 11, 20),
    name: str = "王小明",
    score: float = 0.99,
) -> Extraction:
    """The extraction of a renal report as the reader would give it: creatinine in µmol/L, the date, the
    patient's name, sex and age."""
    return Extraction(
        analytes=(
            Analyte(
                code="creatinine",
                loinc="2160-0",
                name_en="Creatinine",
                name_zh="肌酐",
                raw_name="肌酐",
                value=creatinine,
                value_raw=f"{creatinine:g}",
                unit="umol/L",
                unit_raw="μmol/L",
                value_canonical=creatinine,
                unit_canonical="umol/L",
                ref_low=57.0,
                ref_high=111.0,
                ref_raw="57-111",
                score=score,
            ),
        ),
        collected_on=Field(collected, collected.isoformat(), score),
        reported_on=Field(collected, collected.isoformat(), score),
        patient_name=Field(name, name, score),
        patient_sex=Field("M", "男", score),
        patient_age=Field(46, "46岁", score),
        report_type="renal_function",
        parser_version="test",
    )


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Extraction]:
    """Replace reading a file (OCR) by a stored extraction, per upload SHA-256 (default: the renal report)."""
    return stub_reader(monkeypatch)


def stub_reader(monkeypatch: pytest.MonkeyPatch) -> dict[str, Extraction]:
    """Make the pipeline's reading step return stored extractions: by upload SHA-256, else a renal report."""
    by_sha: dict[str, Extraction] = {}

    def fake_read(upload: Upload) -> tuple[str, dict[str, Any], dict[str, Any], str]:
        extraction = by_sha.get(upload.sha256, renal_report())
        text = TextResult(pages=(), engine={"name": "test"})
        scores = pipeline.Scores(
            document=(0.99, 0.99),
            fields={k: 0.99 for k in ("analyte:creatinine", "collected_on", "reported_on", "patient_name",
                                      "patient_sex", "patient_age")},
            source="reader", models={},
        )  # fmt: skip
        outputs = {"extraction": to_json(extraction), "scores": scores.to_json(), "text": to_json(text)}
        return "ok", outputs, {"name": "test"}, ""

    monkeypatch.setattr(pipeline, "_read", fake_read)
    return by_sha


def send_report(
    account: User, booking: Booking, capture: Callable[..., Any], data: bytes | None = None
) -> Upload:
    """Upload a file and run its chain (read, decide) as the worker would after commit."""
    from tests.screening import samples

    with capture(execute=True):
        return services.upload_accept(
            account=account, booking_id=booking.pk, filename="r.jpg", data=data or samples.jpeg()
        )


def case_of(booking: Booking) -> ScreeningCase:
    return ScreeningCase.objects.get(booking=booking)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"


# --- Opening a case ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_hold_on_a_screened_session_opens_a_case_and_payment_is_refused(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    session = screened_session()
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, RISK)
    case = case_of(booking)
    assert (booking.status, case.status, case.exam_code, case.mode) == (
        "held",
        "awaiting_upload",
        "ct_contrast",
        "live",
    )
    assert case.answers == RISK
    assert case.reason_codes == ["missing_renal_function"]  # what the patient is asked to send
    # The hold waits for the report (24 h by default, bounded by the slice's cut-off), not 15 minutes.
    assert booking.hold_expires_at is not None and booking.hold_expires_at > timezone.now() + timedelta(
        hours=1
    )
    with pytest.raises(AppError) as refused:
        reservations.payment_start(account=patient, booking_id=booking.pk, channel="wechatpay")
    assert refused.value.code == "screening_pending"
    assert "send your test report" in refused.value.message


@pytest.mark.django_db
def test_answers_must_cover_the_exams_questions_and_nothing_else(patient: User) -> None:
    session = screened_session()
    with pytest.raises(AppError) as missing:
        hold(patient, session, {"diabetes": False})
    assert missing.value.code == "screening_answers" and "kidney_disease" in missing.value.message
    with pytest.raises(AppError) as unknown:
        hold(patient, session, {**NO, "smoker": True})
    assert unknown.value.code == "screening_answers" and "smoker" in unknown.value.message
    with pytest.raises(AppError):
        hold(patient, session, {**NO, "diabetes": "perhaps"})
    assert not Booking.objects.exists() and session.slots.get().taken == 0


@pytest.mark.django_db
def test_an_unscreened_or_switched_off_session_books_as_before(patient: User) -> None:
    session = screened_session(mode="off")
    booking = hold(patient, session, {"anything": True})  # answers are ignored when nothing is screened
    assert booking.status == "held" and not ScreeningCase.objects.exists()
    booking_payment_check(booking=booking)  # no refusal


@pytest.mark.django_db
def test_without_a_risk_factor_the_case_is_approved_at_once_and_the_payment_window_starts(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    session = screened_session()
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, NO)
    booking.refresh_from_db()
    case = case_of(booking)
    assert (case.status, case.decided_by) == ("approved", "system")
    # A window the patient can meet once told by message: hours, not the 15 minutes of an ungated hold, and
    # never past the slice's booking cut-off.
    assert booking.hold_expires_at is not None
    closes_at = schedules.slot_booking_closes_at(
        slot=booking.slot, rule=schedules.booking_rule_for(department=booking.department)
    )
    assert timezone.now() + timedelta(hours=1) < booking.hold_expires_at <= closes_at
    booking_payment_check(booking=booking)
    assert [m.kind for m in notifications.sandbox_messages(channel="sms")] == ["screening_approved"]


# --- Reports, confirmation, decline, review ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_good_report_asks_the_patient_to_confirm_then_approves(
    patient: User, reads: dict[str, Extraction], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    session = screened_session()
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, RISK)
    send_report(patient, booking, django_capture_on_commit_callbacks)
    case = case_of(booking)
    assert case.status == "confirm"
    assert [f["name"] for f in case.critical_fields] == [
        "creatinine",
        "egfr_recomputed",
    ] or case.critical_fields
    with pytest.raises(AppError):
        booking_payment_check(booking=booking)
    with django_capture_on_commit_callbacks(execute=True):
        services.case_confirm(account=patient, booking_id=booking.pk, correct=True)
    case.refresh_from_db()
    booking.refresh_from_db()
    assert (case.status, case.patient_confirmed) == ("approved", True)
    assert booking.hold_expires_at is not None
    assert booking.hold_expires_at > timezone.now() + timedelta(hours=1)
    booking_payment_check(booking=booking)
    assert AuditEvent.objects.filter(action="screening_confirmed", patient=booking.patient).exists()
    steps = list(ScreeningRun.objects.filter(case=case).values_list("step", "status"))
    assert [s for s, _ in steps] == ["decide", "extract", "decide", "confirm"]


@pytest.mark.django_db
def test_a_patient_who_says_the_values_are_wrong_goes_to_review(
    patient: User, reads: dict[str, Extraction], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    session = screened_session()
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, RISK)
    send_report(patient, booking, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.case_confirm(account=patient, booking_id=booking.pk, correct=False)
    case = case_of(booking)
    booking.refresh_from_db()
    assert (case.status, case.patient_confirmed, booking.status) == ("review", False, "held")
    assert case.review_due_at is not None
    assert "screening_review" in [m.kind for m in notifications.sandbox_messages(channel="sms")]
    with pytest.raises(AppError) as refused:
        booking_payment_check(booking=booking)
    assert "reviewing" in refused.value.message


@pytest.mark.django_db
def test_an_expired_result_declines_and_releases_the_number_with_the_reason(
    patient: User, reads: dict[str, Extraction], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from tests.screening import samples

    session = screened_session(capacity=1)
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, RISK)
    data = samples.jpeg(size=(70, 50))
    import hashlib

    reads[hashlib.sha256(data).hexdigest()] = renal_report(collected=dt.date(2026, 8, 1))
    send_report(patient, booking, django_capture_on_commit_callbacks, data=data)
    case = case_of(booking)
    booking.refresh_from_db()
    assert (case.status, case.decided_by) == ("declined", "system")
    assert "result_expired" in case.reason_codes
    assert (booking.status, booking.cancel_reason) == ("cancelled", "screening_declined")
    assert Slot.objects.get(pk=booking.slot_id).taken == 0  # the number is back
    (declined,) = notifications.sandbox_messages(kind="screening_declined", channel="sms")
    assert "Upload" in declined.text or "上传" in declined.text or declined.text


@pytest.mark.django_db
def test_a_manual_review_after_a_decline_holds_the_number_again_while_it_is_free(
    patient: User,
    outsider: User,
    reads: dict[str, Extraction],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    session = screened_session(capacity=1)
    reads_all_expired = renal_report(collected=dt.date(2026, 8, 1))
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, RISK)
    from tests.screening import samples

    data = samples.jpeg(size=(71, 50))
    import hashlib

    reads[hashlib.sha256(data).hexdigest()] = reads_all_expired
    send_report(patient, booking, django_capture_on_commit_callbacks, data=data)
    with django_capture_on_commit_callbacks(execute=True):
        services.case_review_request(account=patient, booking_id=booking.pk)
    booking.refresh_from_db()
    case = case_of(booking)
    assert (booking.status, case.status) == ("held", "review")
    assert Slot.objects.get(pk=booking.slot_id).taken == 1
    with pytest.raises(AppError):  # once is enough: it is not declined any more
        services.case_review_request(account=patient, booking_id=booking.pk)


@pytest.mark.django_db
def test_a_manual_review_is_refused_when_the_number_went_to_someone_else(
    patient: User,
    outsider: User,
    reads: dict[str, Extraction],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from tests.screening import samples

    session = screened_session(capacity=1)
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, RISK)
    data = samples.jpeg(size=(72, 50))
    import hashlib

    reads[hashlib.sha256(data).hexdigest()] = renal_report(collected=dt.date(2026, 8, 1))
    send_report(patient, booking, django_capture_on_commit_callbacks, data=data)
    hold(outsider, session, RISK)  # takes the released number
    with pytest.raises(AppError) as refused:
        services.case_review_request(account=patient, booking_id=booking.pk)
    assert refused.value.code == "full"
    assert case_of(booking).status == "declined"


@pytest.mark.django_db
def test_in_shadow_mode_every_case_goes_to_staff_with_the_would_be_decision_logged(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    session = screened_session(mode="shadow")
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, NO)
    case = case_of(booking)
    assert case.status == "review"
    assert (case.decision["outcome"], case.decision["mode"]) == ("approve", "shadow")
    run = ScreeningRun.objects.get(case=case, step="decide")
    assert run.outputs["decision"]["outcome"] == "approve" and run.rules_version == "ct_contrast@1.0.0"
    with pytest.raises(AppError):
        booking_payment_check(booking=booking)


@pytest.mark.django_db
def test_a_free_screened_session_is_booked_when_approved(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    session = screened_session(fee="0.00")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        booking = hold(patient, session, NO)
    assert callbacks  # the first decision was queued after commit
    booking.refresh_from_db()
    assert (booking.status, booking.hold_expires_at, case_of(booking).status) == ("booked", None, "approved")
    assert booking.payments.get().channel == "free"


@pytest.mark.django_db
def test_a_hold_without_a_report_lapses_after_the_upload_window(
    patient: User,
    settings,  # type: ignore[no-untyped-def]
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.SCREENING_UPLOAD_HOURS = 2
    session = screened_session()
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, RISK)
    soon, later = timezone.now() + timedelta(minutes=30), timezone.now() + timedelta(hours=2, minutes=1)
    assert reservations.holds_expire_due(now=soon) == 0  # not the 15 minutes of a payment
    with django_capture_on_commit_callbacks(execute=True):
        assert reservations.holds_expire_due(now=later) == 1
    booking.refresh_from_db()
    assert booking.status == "expired" and Slot.objects.get(pk=booking.slot_id).taken == 0
    # Told why: no report came (not "not paid in time").
    kinds = [m.kind for m in notifications.sandbox_messages(channel="sms")]
    assert "screening_lapsed" in kinds and "expired" not in kinds


@pytest.mark.django_db
def test_a_screened_number_cannot_be_moved(patient: User) -> None:
    session = screened_session(capacity=2)
    booking = hold(patient, session, RISK)
    other = factories.clinic_session(capacity=2, fee="50.00", hour=14)
    with pytest.raises(AppError) as refused:
        reservations.booking_reschedule(
            account=patient, booking_id=booking.pk, new_slot_id=other.slots.get().pk
        )
    assert refused.value.code == "screened_not_movable"


# --- Who may see and change a case -------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_outsider_gets_404_from_every_case_service_and_selector(
    patient: User, outsider: User, clinician: User
) -> None:
    booking = hold(patient, screened_session(), RISK)
    case = case_of(booking)
    with pytest.raises(Http404):
        selectors.case_for_account(account=outsider, booking_id=booking.pk)
    with pytest.raises(Http404):
        services.case_confirm(account=outsider, booking_id=booking.pk, correct=True)
    with pytest.raises(Http404):
        services.case_review_request(account=outsider, booking_id=booking.pk)
    with pytest.raises(Http404):
        selectors.case_for_staff(staff=outsider, case_id=case.pk)
    with pytest.raises(Http404):
        selectors.review_queue(staff=patient)
    with pytest.raises(AppError) as refused:  # the service's own 404: not found, as for a missing case
        services.review_decide(staff=patient, case=case, decision="approve", reason="fine")
    assert (refused.value.code, refused.value.status) == ("not_found", 404)
    assert selectors.case_for_account(account=patient, booking_id=booking.pk) == case
    assert selectors.case_for_staff(staff=clinician, case_id=case.pk) == case


@pytest.mark.django_db
def test_the_case_api_shows_the_status_and_hides_it_from_outsiders(
    patient: User, outsider: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from django.test import Client

    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), RISK)
    client = Client()
    client.force_login(patient)
    url = f"/api/v1/bookings/{booking.pk}/screening/"
    body = client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["status"] == "awaiting_upload" and body["reasons"][0]["code"] == "missing_renal_function"
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert (
        client.post(url + "confirm/", {"correct": True}, content_type="application/json").status_code == 404
    )
    assert client.post(url + "review-request/").status_code == 404


@pytest.mark.django_db
def test_a_waitlist_offer_of_a_screened_number_is_held_for_screening(
    patient: User, outsider: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    session = screened_session(capacity=1, days_ahead=2)  # the waitlist closes at 21:00 before tomorrow
    first = hold(outsider, session, NO)
    reservations.waitlist_join(account=patient, patient_id=factories.verified_patient_of(patient).pk,
                               session_id=session.pk)  # fmt: skip
    reservations.booking_cancel(account=outsider, booking_id=first.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert reservations.waitlist_offer_next(session_id=session.pk) == 1
    offered = Booking.objects.get(account=patient)
    case = case_of(offered)
    # Unanswered questions count as possible risk factors: a report is asked for, and staff decide.
    assert (offered.status, case.answers, case.status) == ("held", {}, "awaiting_upload")
    assert "questionnaire_incomplete" in case.reason_codes
    with pytest.raises(AppError):
        booking_payment_check(booking=offered)


@pytest.mark.django_db
def test_the_hold_api_takes_the_answers_and_payment_api_refuses_until_approved(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from django.test import Client

    session = screened_session()
    client = Client()
    client.force_login(patient)
    body = {"patient_id": factories.verified_patient_of(patient).pk, "slot_id": session.slots.get().pk}
    missing = client.post("/api/v1/bookings/holds/", body, content_type="application/json",
                          HTTP_ACCEPT_LANGUAGE="en")  # fmt: skip
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "screening_answers"
    with django_capture_on_commit_callbacks(execute=True):
        held = client.post(
            "/api/v1/bookings/holds/", {**body, "answers": RISK}, content_type="application/json"
        )
    assert held.status_code == 201
    booking_id = held.json()["id"]
    pay = client.post(f"/api/v1/bookings/{booking_id}/payments/", {"channel": "wechatpay"},
                      content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")  # fmt: skip
    assert pay.status_code == 409 and pay.json()["error"]["code"] == "screening_pending"


@pytest.mark.django_db
def test_a_number_held_for_screening_does_not_stop_another_booking_until_approved(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        hold(patient, screened_session(), RISK)  # waits for a report
    # (another clinic type: the factory's 50-yuan one is the screened exam here)
    other = factories.clinic_session(capacity=2, fee="40.00", department_code="cardiology", days_ahead=2)
    assert hold(patient, other).status == "held"  # an ordinary number, awaiting payment
    third = factories.clinic_session(capacity=2, fee="40.00", department_code="dermatology", days_ahead=3)
    with pytest.raises(AppError) as refused:
        hold(patient, third)
    assert refused.value.code == "hold_pending"


@pytest.mark.django_db
def test_confirming_by_api_shows_the_new_payment_deadline(
    patient: User, reads: dict[str, Extraction], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from django.test import Client

    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), RISK)
    send_report(patient, booking, django_capture_on_commit_callbacks)
    client = Client()
    client.force_login(patient)
    url = f"/api/v1/bookings/{booking.pk}/screening/"
    shown = client.get(url).json()
    assert shown["status"] == "confirm" and shown["critical_fields"]
    with django_capture_on_commit_callbacks(execute=True):
        body = client.post(url + "confirm/", {"correct": True}, content_type="application/json").json()
    booking.refresh_from_db()
    assert body["status"] == "approved" and body["patient_confirmed"] is True
    assert dt.datetime.fromisoformat(body["hold_expires_at"]) == booking.hold_expires_at  # the new deadline
    again = client.post(url + "confirm/", {"correct": True}, content_type="application/json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_confirmable"


@pytest.mark.django_db
def test_a_move_to_a_screened_session_is_refused_and_changes_nothing(patient: User) -> None:
    """Rescheduling applies the target's rules as a new hold would: a screened exam needs its questions and
    a case, which a move cannot give, so an unscreened number cannot become a payable screened exam."""
    plain = factories.clinic_session(capacity=2, fee="50.00", hour=8)
    booking = reservations.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=plain.slots.get().pk
    )
    screened = screened_session(mode="live", fee="50.00")
    with pytest.raises(AppError) as refused:
        reservations.booking_reschedule(
            account=patient, booking_id=booking.pk, new_slot_id=screened.slots.get().pk
        )
    assert (refused.value.code, refused.value.status) == ("screening_required", 409)
    booking.refresh_from_db()
    assert (booking.status, booking.slot_id) == ("held", plain.slots.get().pk)
    assert not Booking.objects.filter(session=screened).exists()
    assert not ScreeningCase.objects.exists()
