"""The Celery chain of an upload: read (idempotent, bounded retries, never lost), then decide (idempotent).

One test reads a real PDF (its text layer: no OCR); the others stub the reader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Retry
from django.db import IntegrityError, connection, transaction

from medcard.models import User
from reservations.models import Booking
from screening import selectors, tasks
from screening.models import ScreeningCase, ScreeningRun, Upload
from screening.pipeline.text import TextError
from screening.services import pipeline
from screening.services.upload import upload_accept
from tests.conftest import require_or_skip
from tests.screening import samples
from tests.screening.test_cases import RISK, hold, screened_session, stub_reader

FIXTURES = Path(__file__).parent / "fixtures"


pytestmark = pytest.mark.usefixtures("eager_tasks", "private_media")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Any:
    return stub_reader(monkeypatch)


def _held(patient: User, capture: Callable[..., Any]) -> Booking:
    with capture(execute=True):
        return hold(patient, screened_session(), RISK)


def _upload(patient: User, booking: Booking, data: bytes | None = None) -> Upload:
    """Accept an upload without running its chain (the test runs the tasks itself)."""
    return upload_accept(
        account=patient, booking_id=booking.pk, filename="r.jpg", data=data or samples.jpeg()
    )


@pytest.mark.django_db
def test_the_chain_is_queued_only_once_the_upload_is_committed(
    patient: User, reads: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    booking = _held(patient, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _upload(patient, booking)
    assert callbacks  # queued on commit, not before
    assert not ScreeningRun.objects.filter(step="extract").exists()
    assert ScreeningCase.objects.get(booking=booking).status == "processing"
    for callback in callbacks:
        callback()
    assert ScreeningRun.objects.filter(step="extract").count() == 1
    assert ScreeningCase.objects.get(booking=booking).status == "confirm"


@pytest.mark.django_db
def test_a_duplicate_delivery_of_either_task_does_nothing(
    patient: User, reads: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    booking = _held(patient, django_capture_on_commit_callbacks)
    upload = _upload(patient, booking)
    case = ScreeningCase.objects.get(booking=booking)
    assert tasks.extract.apply(args=[upload.pk]).get() is not None
    assert tasks.extract.apply(args=[upload.pk]).get() is None  # redelivered: already read
    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.decide_case.apply(args=[case.pk]).get()
        second = tasks.decide_case.apply(args=[case.pk]).get()
    assert first is not None and second is None
    assert ScreeningRun.objects.filter(case=case, step="extract").count() == 1
    assert ScreeningRun.objects.filter(case=case, step="decide").count() == 2  # at hold time, then this one
    # The same file sent again is not read again either.
    again = _upload(patient, booking, samples.jpeg())
    assert again.sha256 == upload.sha256
    assert tasks.extract.apply(args=[again.pk]).get() is None


@pytest.mark.django_db
def test_an_unreadable_file_is_a_failed_run_and_a_fixable_decline(
    patient: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    def unreadable(data: bytes, kind: str, **kwargs: Any) -> Any:
        raise TextError("unreadable", "The image could not be decoded.")

    monkeypatch.setattr("screening.services.pipeline.read_file", unreadable)
    booking = _held(patient, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        _upload(patient, booking)
    run = ScreeningRun.objects.get(step="extract")
    assert (run.status, run.error_code) == ("failed", "unreadable")
    case = ScreeningCase.objects.get(booking=booking)
    assert case.status == "declined" and "unreadable" in case.reason_codes
    assert {r["code"] for r in case.decision["reasons"] if r["fixable"]} >= {"unreadable"}


@pytest.mark.django_db
def test_a_reader_crash_is_recorded_and_the_case_is_still_decided(
    patient: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    def crash(data: bytes, kind: str, **kwargs: Any) -> Any:
        raise RuntimeError("bug in the reader")

    monkeypatch.setattr("screening.services.pipeline.read_file", crash)
    booking = _held(patient, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        _upload(patient, booking)
    run = ScreeningRun.objects.get(step="extract")
    assert (run.status, run.error_code) == ("failed", "extract_error")
    assert "bug in the reader" in run.outputs["message"]
    assert ScreeningCase.objects.get(booking=booking).status != "processing"


@pytest.mark.django_db
def test_storage_errors_are_retried_then_recorded_as_failed(
    patient: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    booking = _held(patient, django_capture_on_commit_callbacks)
    upload = _upload(patient, booking)
    calls = []

    def broken(*, upload: Upload) -> bytes:
        calls.append(upload.pk)
        raise OSError("storage down")

    monkeypatch.setattr(selectors, "upload_derivative_bytes", broken)
    for attempt in range(tasks.EXTRACT_RETRIES):
        with pytest.raises(Retry):
            tasks.extract.apply(args=[upload.pk], retries=attempt)
    assert not ScreeningRun.objects.filter(step="extract").exists()
    tasks.extract.apply(args=[upload.pk], retries=tasks.EXTRACT_RETRIES)  # the last try gives up
    assert len(calls) == tasks.EXTRACT_RETRIES + 1
    run = ScreeningRun.objects.get(step="extract")
    assert (run.status, run.error_code) == ("failed", "storage_error")


@pytest.mark.django_db
def test_a_file_that_keeps_killing_its_worker_is_given_up(
    patient: User, reads: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from django.core.cache import cache

    booking = _held(patient, django_capture_on_commit_callbacks)
    upload = _upload(patient, booking)
    # Redelivered after each hard time limit (acks_late): the counter outlives the killed processes.
    cache.set(
        f"screening:extract-deliveries:{upload.pk}", tasks.EXTRACT_MAX_DELIVERIES + tasks.EXTRACT_RETRIES
    )
    tasks.extract.apply(args=[upload.pk])
    run = ScreeningRun.objects.get(step="extract")
    assert (run.status, run.error_code) == ("failed", "too_many_attempts")


@pytest.mark.django_db
def test_a_real_pdf_goes_through_the_whole_pipeline(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    booking = _held(patient, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        _upload(patient, booking, (FIXTURES / "renal-70m.pdf").read_bytes())
    run = ScreeningRun.objects.get(step="extract")
    assert run.status == "ok" and run.pipeline_version == pipeline.pipeline_version()
    assert run.ocr_engine["name"] == "pypdf" and run.parser_version
    creatinine = next(a for a in run.outputs["extraction"]["analytes"] if a["code"] == "creatinine")
    assert (creatinine["value"], creatinine["loinc"]) == (88.0, "2160-0")
    case = ScreeningCase.objects.get(booking=booking)
    decision = ScreeningRun.objects.filter(case=case, step="decide").latest("id")
    assert decision.input_sha256 and decision.rules_version == "ct_contrast@1.0.0"
    # The report is a 70-year-old man's, the booking's patient is 46: not auto-approved.
    assert case.status in ("review", "declined") and case.reason_codes


def test_extraction_json_round_trips() -> None:
    from tests.screening.test_cases import renal_report

    extraction = renal_report(collected=dt.date(2026, 11, 1))
    from screening.pipeline.types import to_json

    assert pipeline.extraction_from_json(to_json(extraction)) == extraction


@pytest.mark.django_db(transaction=True)
def test_runs_reviews_and_corrections_are_append_only_in_the_database(
    patient: User, reads: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    require_or_skip(connection.vendor == "postgresql", "the append-only triggers are PostgreSQL's")
    booking = hold(patient, screened_session(), RISK)
    case = ScreeningCase.objects.get(booking=booking)
    pipeline.case_decide(case_id=case.pk)
    run = ScreeningRun.objects.get(case=case)
    for sql in ("UPDATE screening_screeningrun SET status = 'failed' WHERE id = %s",
                "DELETE FROM screening_screeningrun WHERE id = %s"):  # fmt: skip
        with (
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [run.pk])
    with pytest.raises(PermissionError):
        run.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        ScreeningRun.objects.create(case=case, step="decide", key=run.key, input_sha256=run.input_sha256)


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_deliveries_of_a_decision_write_it_once(
    patient: User, reads: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from django.db import connections

    from screening.services import cases

    require_or_skip(connection.vendor == "postgresql", "concurrent connections need PostgreSQL")
    monkeypatch.setattr(cases, "decide_enqueue", lambda case_id: None)  # the two deliveries below instead
    monkeypatch.setattr(cases, "decide_now", lambda case_id: None)
    booking = hold(patient, screened_session(), RISK)
    case = ScreeningCase.objects.get(booking=booking)
    barrier, results = threading.Barrier(2), []

    def deliver() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(pipeline.case_decide(case_id=case.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r is None for r in results) == [False, True]
    assert ScreeningRun.objects.filter(case=case, step="decide").count() == 1
    assert ScreeningCase.objects.get(pk=case.pk).revision == 1


@pytest.mark.django_db
def test_a_lost_chain_or_first_decision_is_queued_again(
    patient: User, reads: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    with django_capture_on_commit_callbacks(execute=False):  # the broker was down: nothing was queued
        booking = hold(patient, screened_session(), RISK)
    later = timezone.now() + timedelta(minutes=11)
    assert pipeline.cases_resume_stuck(now=timezone.now()) == 0  # not yet: it may just be slow
    assert pipeline.cases_resume_stuck(now=later) == 1
    case = ScreeningCase.objects.get(booking=booking)
    assert ScreeningRun.objects.filter(case=case, step="decide").count() == 1
    with django_capture_on_commit_callbacks(execute=False):
        _upload(patient, booking)  # its chain is lost too
    assert ScreeningCase.objects.get(pk=case.pk).status == "processing"
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.cases_resume_stuck(now=later) == 1
    assert ScreeningCase.objects.get(pk=case.pk).status == "confirm"
    assert pipeline.cases_resume_stuck(now=later) == 0


@pytest.mark.django_db
def test_the_same_file_for_another_booking_of_the_same_patient_is_not_read_again(
    patient: User,
    outsider: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from tests import factories

    stub_reader(monkeypatch)
    reading = pipeline._read
    calls: list[int] = []

    def counted(upload: Upload) -> Any:
        calls.append(upload.pk)
        return reading(upload)

    monkeypatch.setattr(pipeline, "_read", counted)
    data = samples.jpeg(size=(80, 60))
    first = _held(patient, django_capture_on_commit_callbacks)
    other = factories.clinic_session(capacity=2, fee="50.00", department_code="radiology-2", days_ahead=3)
    with django_capture_on_commit_callbacks(execute=True):
        second = hold(patient, other, RISK)
        third = hold(outsider, other, RISK)
    for account, booking in ((patient, first), (patient, second), (outsider, third)):
        with django_capture_on_commit_callbacks(execute=True):
            _upload(account, booking, data)
    assert len(calls) == 2  # once for the patient, once for the other patient
    reused = ScreeningRun.objects.get(case__booking=second, step="extract")
    original = ScreeningRun.objects.get(case__booking=first, step="extract")
    assert reused.outputs["reused_from_run"] == original.pk
    assert "reused_from_run" not in ScreeningRun.objects.get(case__booking=third, step="extract").outputs
