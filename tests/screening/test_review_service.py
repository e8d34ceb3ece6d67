"""Staff review: decisions with reasons and corrections, the queue, the blind audit, audited reads, models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from core.errors import AppError
from medcard.models import AuditEvent, User
from reservations import notifications
from reservations.models import Booking, Slot
from reservations.services.gates import booking_payment_check
from screening import selectors, services
from screening.models import (
    FieldCorrection,
    ScreeningCase,
    ScreeningModelVersion,
    ScreeningReview,
    ScreeningRun,
)
from screening.services import registry
from tests import factories
from tests.screening.test_cases import NO, RISK, hold, screened_session, send_report, stub_reader

pytestmark = pytest.mark.usefixtures("eager_tasks", "private_media")


@pytest.fixture
def in_review(
    patient: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]
) -> ScreeningCase:
    """A live case with a report read, that the patient disputed: waiting for staff."""
    stub_reader(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), RISK)
    send_report(patient, booking, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.case_confirm(account=patient, booking_id=booking.pk, correct=False)
    case = ScreeningCase.objects.get(booking=booking)
    assert case.status == "review"
    return case


@pytest.mark.django_db
def test_a_reviewer_approves_with_a_correction_and_the_payment_window_starts(
    in_review: ScreeningCase, clinician: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        review = services.review_decide(
            staff=clinician, case=in_review, decision="approve", reason="Creatinine 86, not 88; fine.",
            corrections={"analyte:creatinine": "86"},
        )  # fmt: skip
    in_review.refresh_from_db()
    booking = Booking.objects.get(pk=in_review.booking_id)
    assert (in_review.status, in_review.decided_by) == ("approved", "staff")
    # Hours to pay (the patient is told by message), not the 15 minutes of an ungated hold.
    assert booking.hold_expires_at is not None and booking.hold_expires_at > timezone.now() + timedelta(
        hours=1
    )
    booking_payment_check(booking=booking)
    (correction,) = FieldCorrection.objects.all()
    assert (correction.field_key, correction.read_value, correction.corrected_value) == (
        "analyte:creatinine",
        "88",
        "86",
    )
    assert correction.run is not None and correction.run.step == "extract" and correction.staff == clinician
    assert (review.system_outcome, review.blind_audit) == ("approve", False)
    run = ScreeningRun.objects.filter(case=in_review).latest("id")
    assert (run.step, run.actor) == ("review", clinician)
    assert AuditEvent.objects.filter(
        action="screening_decided", actor=clinician, patient=booking.patient
    ).exists()
    assert "screening_approved" in [m.kind for m in notifications.sandbox_messages(channel="sms")]


@pytest.mark.django_db
def test_a_reviewer_declines_and_the_number_is_released_with_their_reason(
    in_review: ScreeningCase, clinician: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.review_decide(
            staff=clinician, case=in_review, decision="decline", reason="Report is not yours."
        )
    in_review.refresh_from_db()
    booking = Booking.objects.get(pk=in_review.booking_id)
    assert (in_review.status, booking.status, booking.cancel_reason) == (
        "declined",
        "cancelled",
        "screening_declined",
    )
    assert Slot.objects.get(pk=booking.slot_id).taken == 0
    assert in_review.decline_note == "Report is not yours."
    (message,) = notifications.sandbox_messages(kind="screening_declined", channel="sms")
    assert "Report is not yours." in message.text
    with pytest.raises(AppError) as refused:  # a reviewer's decline is final
        services.case_review_request(account=booking.account, booking_id=booking.pk)
    assert refused.value.code == "not_reviewable"


@pytest.mark.django_db
def test_a_decision_needs_a_reason_and_an_open_case(in_review: ScreeningCase, clinician: User) -> None:
    with pytest.raises(AppError) as no_reason:
        services.review_decide(staff=clinician, case=in_review, decision="approve", reason="  ")
    assert no_reason.value.code == "reason_required"
    services.review_decide(staff=clinician, case=in_review, decision="approve", reason="ok")
    with pytest.raises(AppError) as decided:
        services.review_decide(staff=clinician, case=in_review, decision="decline", reason="changed my mind")
    assert decided.value.code == "not_open"
    assert ScreeningReview.objects.count() == 1


@pytest.mark.django_db
def test_only_clinicians_review(
    in_review: ScreeningCase, patient: User, pharmacist: User, desk: User
) -> None:
    """The front desk sells numbers; it does not decide whether a patient may have contrast."""
    for user in (patient, pharmacist, desk):
        with pytest.raises(AppError) as refused:  # told nothing about the case, as for a missing one
            services.review_decide(staff=user, case=in_review, decision="approve", reason="ok")
        assert (refused.value.code, refused.value.status) == ("not_found", 404)
        with pytest.raises(Http404):
            selectors.case_for_staff(staff=user, case_id=in_review.pk)
    assert ScreeningReview.objects.count() == 0


@pytest.mark.django_db
def test_the_queue_lists_held_cases_in_review_soonest_visit_first(
    clinician: User,
    outsider: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    later = screened_session(mode="shadow")
    sooner = factories.clinic_session(capacity=2, fee="50.00", days_ahead=1, hour=8)
    sooner.clinic_type.screening_exam = "ct_contrast"
    sooner.clinic_type.save()
    later.date, later.starts_at = later.date + timedelta(days=2), later.starts_at + timedelta(days=2)
    later.save()
    Slot.objects.filter(session=later).update(
        starts_at=later.starts_at, ends_at=later.starts_at + timedelta(minutes=30)
    )
    first = factories.patient_account(name="张三")
    with django_capture_on_commit_callbacks(execute=True):
        b_later = hold(first, later, NO)
        b_sooner = hold(outsider, sooner, NO)
    rows = selectors.review_queue(staff=clinician)
    assert [row.case.booking_id for row in rows] == [b_sooner.pk, b_later.pk]
    assert all(row.reason_codes == [] and not row.blind_audit for row in rows)


@pytest.mark.django_db
def test_a_sample_of_automatic_decisions_goes_to_a_blind_audit_that_changes_nothing(
    patient: User,
    clinician: User,
    settings,
    django_capture_on_commit_callbacks: Callable[..., Any],  # type: ignore[no-untyped-def]
) -> None:
    settings.SCREENING_AUDIT_SAMPLE = 1.0
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), NO)
    case = ScreeningCase.objects.get(booking=booking)
    assert (case.status, case.decided_by, case.blind_audit) == ("approved", "system", True)
    (row,) = selectors.review_queue(staff=clinician)
    assert row.blind_audit and row.case == case
    assert selectors.review_queue(staff=clinician, include_audits=False) == []
    review = services.review_decide(
        staff=clinician, case=case, decision="decline", reason="would ask for a lab"
    )
    case.refresh_from_db()
    assert review.blind_audit and review.system_outcome == "approve"
    assert case.status == "approved"  # the audit is a label, not a decision
    assert selectors.review_queue(staff=clinician) == []
    figures = selectors.screening_figures(since=timezone.now() - timedelta(days=30))
    assert (figures.cases, figures.auto_approved, figures.blind_audits, figures.audit_disagreements) == (
        1,
        1,
        1,
        1,
    )
    assert figures.audit_disagreement_rate == 1.0


@pytest.mark.django_db
def test_no_blind_audit_without_sampling(
    patient: User, settings, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:  # type: ignore[no-untyped-def]
    settings.SCREENING_AUDIT_SAMPLE = 0.0
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), NO)
    assert ScreeningCase.objects.get(booking=booking).blind_audit is False


@pytest.mark.django_db
def test_a_staff_read_of_a_case_is_audited(in_review: ScreeningCase, clinician: User) -> None:
    case = selectors.case_for_staff(staff=clinician, case_id=in_review.pk)
    services.case_staff_read_record(staff=clinician, case=case)
    event = AuditEvent.objects.get(action="screening_viewed")
    assert (event.actor, event.patient_id, event.actor_is_staff) == (clinician, case.booking.patient_id, True)


# --- The model registry ------------------------------------------------------------------------------------


def _meta(task: str, version: str, sha: str) -> dict[str, Any]:
    return {"task": task, "version": version, "artefact_file": f"{task}-{version}.joblib",
            "artefact_sha256": sha, "training_data_sha256": "d" * 64, "metrics": {"auroc": 0.99},
            "thresholds": {"t_field": 0.97}, "library_versions": {"scikit-learn": "1.9.1"}}  # fmt: skip


@pytest.fixture
def artefacts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    from screening.ml import registry as ml_registry

    metas = [_meta("doctype", "1.0.0", "a" * 64), _meta("doctype", "1.1.0", "b" * 64)]
    monkeypatch.setattr(ml_registry, "list_versions", lambda task=None, directory=None: metas)
    monkeypatch.setattr(ml_registry, "load", lambda task, version, directory=None: object())
    return metas


@pytest.mark.django_db
def test_models_are_registered_in_shadow_and_one_is_active_per_task(
    artefacts: Any, administrator: User
) -> None:
    assert [(m.version, m.status) for m in registry.models_sync()] == [
        ("1.0.0", "shadow"),
        ("1.1.0", "shadow"),
    ]
    assert registry.models_sync() == []  # idempotent
    registry.model_activate(task="doctype", version="1.0.0", approved_by=administrator)
    registry.model_activate(task="doctype", version="1.1.0", approved_by=administrator)
    statuses = dict(ScreeningModelVersion.objects.values_list("version", "status"))
    assert statuses == {"1.0.0": "retired", "1.1.0": "active"}
    registry.model_activate(task="doctype", version="1.0.0", approved_by=administrator)  # rollback
    assert dict(ScreeningModelVersion.objects.values_list("version", "status")) == {
        "1.0.0": "active",
        "1.1.0": "retired",
    }
    with pytest.raises(IntegrityError), transaction.atomic():  # the database allows one active per task
        ScreeningModelVersion.objects.filter(version="1.1.0").update(
            status="active", approved_at=timezone.now()
        )


@pytest.mark.django_db
def test_a_changed_artefact_and_an_unapproved_activation_are_refused(artefacts: Any, patient: User) -> None:
    registry.models_sync()
    with pytest.raises(AppError):
        registry.model_activate(task="doctype", version="1.0.0", approved_by=patient)
    artefacts[0]["artefact_sha256"] = "c" * 64
    with pytest.raises(AppError) as changed:
        registry.models_sync()
    assert changed.value.code == "artefact_changed"


@pytest.mark.django_db
def test_the_staff_api_lists_shows_and_decides_and_answers_404_to_others(
    in_review: ScreeningCase,
    clinician: User,
    patient: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from django.test import Client

    client = Client()
    base = "/api/v1/staff/screening/cases/"
    client.force_login(patient)  # an outsider to staff pages: nothing there, as for a missing case
    assert client.get(base).status_code == 404
    assert client.get(f"{base}{in_review.pk}/").status_code == 404
    body = {"decision": "approve", "reason": "ok"}
    assert (
        client.post(f"{base}{in_review.pk}/decision/", body, content_type="application/json").status_code
        == 404
    )
    assert not AuditEvent.objects.filter(action="screening_viewed").exists()
    client.force_login(clinician)
    (row,) = client.get(base).json()
    assert (row["case_id"], row["status"], row["blind_audit"]) == (in_review.pk, "review", False)
    shown = client.get(f"{base}{in_review.pk}/").json()
    assert shown["extractions"][0]["extraction"]["analytes"][0]["code"] == "creatinine"
    assert AuditEvent.objects.filter(action="screening_viewed", actor=clinician).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        decided = client.post(
            f"{base}{in_review.pk}/decision/",
            {"decision": "approve", "reason": "checked", "corrections": {"collected_on": "2026-11-21"}},
            content_type="application/json",
        )
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert FieldCorrection.objects.get().field_key == "collected_on"
    again = client.post(f"{base}{in_review.pk}/decision/", {"decision": "decline", "reason": "no"},
                        content_type="application/json")  # fmt: skip
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_open"


@pytest.mark.django_db
def test_the_committed_models_register_activate_and_score_a_report(administrator: User) -> None:
    from screening.ml import registry as ml_registry
    from screening.pipeline.structure import structure
    from screening.pipeline.text import read_file
    from screening.services import pipeline
    from tests.conftest import require_or_skip

    require_or_skip(bool(ml_registry.list_versions()), "no model artefacts in screening/ml/artefacts/")
    created = registry.models_sync()
    assert {m.task for m in created} == {"doctype", "fieldconf"} and all(
        m.status == "shadow" for m in created
    )
    text = read_file((Path(__file__).parent / "fixtures" / "renal-70m.pdf").read_bytes(), "pdf")
    extraction = structure(text)
    assert pipeline.model_scores(text, extraction).source == "reader"  # nothing active yet
    for row in created:
        registry.model_activate(task=row.task, version=row.version, approved_by=administrator)
    scores = pipeline.model_scores(text, extraction)
    assert scores.source == "models" and set(scores.models) == {"doctype", "fieldconf"}
    p_report, p_legible = scores.document
    assert p_report > 0.5 and p_legible > 0.5
    assert 0.0 <= scores.fields["analyte:creatinine"] <= 1.0
