"""Issue #11, screened exams, server side: what the patient is asked, told and given after each decision.

- the first decision from the answers runs with the hold (no worker needed): the first page names the result;
- pregnancy is not required (and recorded as "does not apply") for men and children under 12;
- a staff approval leaves hours to pay, bounded by the booking cut-off, and the message says until when and
  carries the reviewer's note;
- "upload again" after a decline waits for the new report instead of putting the case with staff;
- a decline's message says the appointment is cancelled, why, and that nothing was charged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from core.errors import AppError
from hospital.celery import app as celery_app
from medcard.models import User
from reservations import notifications, schedules
from reservations import services as reservations
from reservations.models import Booking
from screening import services
from screening.models import ScreeningCase
from screening.services import cases, notify
from tests import factories
from tests.screening.test_cases import NO, RISK, hold, screened_session, send_report, stub_reader

WITHOUT_PREGNANCY = {k: v for k, v in NO.items() if k != "possible_pregnancy"}


@pytest.fixture
def no_worker() -> Any:
    """Tasks are sent to the broker and never run (no worker): what runs, runs in the request."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = eager


@pytest.mark.django_db
@pytest.mark.usefixtures("no_worker")
def test_the_first_decision_runs_with_the_hold_so_the_first_page_names_the_result(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    monkeypatch.setattr("medcard.services.outbox._publish", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), RISK)
    case = ScreeningCase.objects.get(booking=booking)
    assert case.status == "awaiting_upload"
    assert case.reason_codes == ["missing_renal_function"]  # decided here, not by a worker
    assert not [s for s in sent if dict(s).get("task") == "screening.decide_case"]


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_man_is_not_asked_about_pregnancy_and_it_is_recorded_as_not_applying(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), {**WITHOUT_PREGNANCY, "possible_pregnancy": True})
    case = ScreeningCase.objects.get(booking=booking)
    assert case.answers["possible_pregnancy"] is False  # does not apply, whatever was sent
    assert case.status == "approved"  # no risk factor: no test, and no "questionnaire incomplete" review


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_child_under_12_is_not_asked_about_pregnancy(django_capture_on_commit_callbacks: Any) -> None:
    account = factories.patient_account()
    girl = factories.add_patient(
        account, name="王小红", birth=timezone.localdate() - timedelta(days=365 * 8), relationship="child",
        male=False,
    )  # fmt: skip
    session = screened_session()
    with django_capture_on_commit_callbacks(execute=True):
        booking = services_hold(account, girl.pk, session, WITHOUT_PREGNANCY)
    case = ScreeningCase.objects.get(booking=booking)
    assert (case.answers["possible_pregnancy"], case.status) == (False, "approved")


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_woman_must_answer_the_pregnancy_question_and_nothing_is_held_without_it() -> None:
    account = factories.patient_account()
    woman = factories.add_patient(
        account, name="李芳", birth=dt.date(1990, 3, 1), relationship="spouse", male=False
    )
    session = screened_session()
    with pytest.raises(AppError) as refused:
        services_hold(account, woman.pk, session, WITHOUT_PREGNANCY)
    assert refused.value.code == "screening_answers"
    assert "pregnant" in refused.value.message
    assert not Booking.objects.filter(patient=woman).exists()


def services_hold(account: User, patient_id: int, session: Any, answers: dict[str, bool]) -> Booking:
    return reservations.hold_create(
        account=account, patient_id=patient_id, slot_id=session.slots.get().pk, answers=answers
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks", "private_media")
def test_a_staff_approval_leaves_hours_to_pay_and_the_message_says_until_when_with_the_note(
    patient: User,
    clinician: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    stub_reader(monkeypatch)
    session = screened_session()
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, session, RISK)
    send_report(patient, booking, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.case_confirm(account=patient, booking_id=booking.pk, correct=False)
    case = ScreeningCase.objects.get(booking=booking)
    notifications.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.review_decide(
            staff=clinician, case=case, decision="approve", reason="Hydrate before and after the scan."
        )
    booking.refresh_from_db()
    closes_at = schedules.slot_booking_closes_at(
        slot=booking.slot, rule=schedules.booking_rule_for(department=booking.department)
    )
    assert booking.hold_expires_at is not None
    assert timezone.now() + timedelta(hours=1) < booking.hold_expires_at <= closes_at
    (message,) = notifications.sandbox_messages(kind="screening_approved", channel="sms")
    deadline = timezone.localtime(booking.hold_expires_at)
    assert f"{deadline:%Y-%m-%d %H:%M}" in message.text
    assert "Hydrate before and after the scan." in message.text


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_the_approval_window_never_passes_the_booking_cut_off(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any], settings: Any
) -> None:
    settings.SCREENING_PAYMENT_HOURS = 24 * 10
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), NO)  # approved at once: no risk factor
    booking.refresh_from_db()
    closes_at = schedules.slot_booking_closes_at(
        slot=booking.slot, rule=schedules.booking_rule_for(department=booking.department)
    )
    assert booking.hold_expires_at == closes_at


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_upload_again_after_a_decline_waits_for_the_report_not_for_staff(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), RISK)
    ScreeningCase.objects.filter(booking=booking).update(
        status="declined", decided_by="system", decided_at=timezone.now(), reason_codes=["result_expired"]
    )
    Booking.objects.filter(pk=booking.pk).update(status="cancelled", cancel_reason="screening_declined")
    services.case_review_request(account=patient, booking_id=booking.pk, then_upload=True)
    case = ScreeningCase.objects.get(booking=booking)
    assert case.status == "awaiting_upload"
    assert Booking.objects.get(pk=booking.pk).status == "held"


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_staff_decline_message_says_cancelled_why_and_what_happens_with_the_money(
    patient: User, clinician: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), {**RISK, "dialysis": True})
    case = ScreeningCase.objects.get(booking=booking)
    ScreeningCase.objects.filter(pk=case.pk).update(status="review")
    case.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        services.review_decide(
            staff=clinician, case=case, decision="decline", reason="Contrast is not safe with your dialysis."
        )
    case.refresh_from_db()
    with timezone.override("Asia/Shanghai"):
        _title, text = notify.message_render(case=case, kind="declined")
    assert "appointment is cancelled" in text
    assert "Contrast is not safe with your dialysis." in text
    assert "Nothing was charged" in text


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_lost_first_decision_is_made_when_the_page_opens_else_the_page_says_the_answers_are_checked(
    patient: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking = hold(patient, screened_session(), RISK)  # the hold's after-commit decision does not run here
    assert ScreeningCase.objects.get(booking=booking).decision == {}
    client = Client()
    client.force_login(patient)
    with monkeypatch.context() as patch:
        patch.setattr(cases, "decide_now", lambda case_id: None)  # deciding fails here too
        html = client.get(f"/screening/bookings/{booking.pk}/uploads/").content.decode()
    assert "Checking your answers…" in html and "Check again" in html
    assert f'data-poll-url="/screening/bookings/{booking.pk}/status/"' in html  # with JavaScript: polls
    assert 'http-equiv="refresh"' not in html  # no timed reload (an accessibility barrier)
    html = client.get(f"/screening/bookings/{booking.pk}/uploads/").content.decode()
    assert 'data-code="missing_renal_function"' in html  # decided when the page opened
    assert ScreeningCase.objects.get(booking=booking).reason_codes == ["missing_renal_function"]


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_the_hold_page_refuses_a_woman_without_the_pregnancy_answer_and_holds_nothing() -> None:
    account = factories.patient_account()
    woman = factories.add_patient(
        account, name="李芳", birth=dt.date(1990, 3, 1), relationship="spouse", male=False
    )
    session = screened_session()
    client = Client()
    client.force_login(account)
    slot_id = session.slots.get().pk
    page = client.get(f"/booking/hold/?slot_id={slot_id}").content.decode()
    assert f'value="{woman.pk}" data-pregnancy="yes"' in page
    assert 'data-pregnancy="no"' in page  # the account holder, a man
    assert "Please answer this question" not in page  # nothing answered yet: no errors
    answers = {f"q_{k}": "no" for k in WITHOUT_PREGNANCY}
    response = client.post("/booking/hold/", {"slot_id": slot_id, "patient_id": woman.pk, **answers})
    assert response.status_code == 409
    assert "Please answer whether the patient could be pregnant." in response.content.decode()
    assert not Booking.objects.filter(patient=woman).exists()
