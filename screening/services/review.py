"""Staff work on screening cases: deciding a case in review, the blind audit, corrections, audited reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from medcard import roles
from medcard.models import AuditEvent, Patient, User
from medcard.selectors import user_has_role
from medcard.services.audit import audit_record
from reservations.models import Booking
from screening import selectors
from screening.ml.features import field_value
from screening.models import FieldCorrection, ScreeningCase, ScreeningReview, ScreeningRun
from screening.services.cases import (
    AppError,
    Status,
    Transition,
    case_lock,
    case_transition,
    event_run,
)
from screening.services.pipeline import extraction_from_json


def case_staff_read_record(*, staff: User, case: ScreeningCase) -> None:
    """Audit a staff member's read of a case's personal data (its report values, answers and decision)."""
    with transaction.atomic():
        audit_record(
            actor=staff,
            patient=case.booking.patient,
            action=AuditEvent.Action.SCREENING_VIEWED,
            fields="screening_case",
            detail=f"case {case.pk} of booking {case.booking_id}",
        )


def case_history_read_record(*, staff: User, patient: Patient, card: str) -> None:
    """Audit a staff member's search of the screening history by a patient's card number: it lists that
    patient's decided cases."""
    with transaction.atomic():
        audit_record(
            actor=staff,
            patient=patient,
            action=AuditEvent.Action.SCREENING_VIEWED,
            fields="screening_history",
            detail=f"decided cases found by card {card[-4:].rjust(len(card), '*')}",
        )


def _read_value(runs: list[ScreeningRun], key: str) -> tuple[int | None, str]:
    """The extraction run and the value read for a field key (``analyte:creatinine``, or qualified by the
    upload's index among the case's files: ``0/analyte:creatinine``)."""
    index_text, _, bare = key.rpartition("/")
    candidates = runs if not index_text.isdigit() else runs[int(index_text) : int(index_text) + 1]
    for run in candidates:
        if run.status != ScreeningRun.Status.OK:
            continue
        try:
            found = field_value(bare, extraction_from_json(run.outputs.get("extraction") or {}))
        except ValueError:
            return None, ""
        if found is not None:
            raw = getattr(found, "value_raw", None) or getattr(found, "raw", "") or found.value
            return run.pk, str(raw)
    return None, ""


def _corrections_clean(
    case: ScreeningCase, corrections: Mapping[str, str] | Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Corrections as rows: from ``{field key: corrected value}`` (the value read is looked up) or from
    dicts with ``field_key``, ``corrected_value`` and optionally ``read_value`` and ``run_id``."""
    runs = selectors.case_extraction_runs(case=case)
    if isinstance(corrections, Mapping):
        items: list[Mapping[str, Any]] = [
            {"field_key": k, "corrected_value": v} for k, v in corrections.items()
        ]
    else:
        items = list(corrections)
    rows = []
    for item in items:
        key = str(item.get("field_key", "")).strip()
        if not key:
            raise AppError("correction_invalid")
        run_id, read = _read_value(runs, key)
        rows.append(
            {
                "field_key": key[:60],
                "read_value": str(item.get("read_value", read))[:200],
                "corrected_value": str(item.get("corrected_value", ""))[:200],
                "run_id": item.get("run_id", run_id),
            }
        )
    return rows


def review_decide(
    *,
    staff: User,
    case: ScreeningCase,
    decision: str,
    reason: str,
    corrections: Mapping[str, str] | Iterable[Mapping[str, Any]] = (),
    note: str = "",
    now: datetime | None = None,
) -> ScreeningReview:
    """A reviewer approves or declines a case (from ``selectors.case_for_staff``), with a reason and the
    values they corrected (``{field key: corrected value}``, or dicts, see ``_corrections_clean``).

    Rules: clinicians only (``not_found`` for anyone else, as for a missing case); a reason is required. An
    open case whose number is still held is decided: approved starts the payment window, declined releases
    the number and tells the patient the reason. An automatic decision sampled for the blind audit is
    recorded as an audit (``blind_audit``) and changes nothing. Everything else is refused (``not_open``).
    The review, the corrections (each tied to the extraction run it corrects), a run and an audit row are
    written in one transaction.
    """
    if not user_has_role(user=staff, role=roles.SCREENING_REVIEWER):
        raise AppError("not_found")  # as for a missing case: nothing tells an outsider the case exists
    if decision not in (ScreeningReview.Decision.APPROVE, ScreeningReview.Decision.DECLINE):
        raise AppError("decision_invalid")
    reason = reason.strip()
    if not reason:
        raise AppError("reason_required")
    rows = _corrections_clean(case, corrections)
    now = now or timezone.now()
    with transaction.atomic():
        case = case_lock(case_id=case.pk)
        blind = (
            case.blind_audit
            and case.status in (Status.APPROVED, Status.DECLINED)
            and not case.reviews.filter(blind_audit=True).exists()
        )
        if not blind:
            if not case.is_open:
                raise AppError("not_open")
            if case.booking.status != Booking.Status.HELD:
                raise AppError("booking_closed")
        run_ids = {
            pk
            for pk in ScreeningRun.objects.filter(case=case, step=ScreeningRun.Step.EXTRACT).values_list(
                "pk", flat=True
            )
        }
        review = ScreeningReview.objects.create(
            case=case,
            staff=staff,
            decision=decision,
            reason=reason[:300],
            note=note,
            blind_audit=blind,
            system_outcome=str(case.decision.get("outcome", ""))[:8],
            created_at=now,
        )
        for row in rows:
            FieldCorrection.objects.create(
                review=review,
                run_id=row["run_id"] if row["run_id"] in run_ids else None,
                staff=staff,
                field_key=row["field_key"],
                read_value=row["read_value"],
                corrected_value=row["corrected_value"],
                created_at=now,
            )
        outputs = {"review": review.pk, "decision": decision, "reason": reason[:300], "blind_audit": blind,
                   "corrections": rows}  # fmt: skip
        run = event_run(case=case, step=ScreeningRun.Step.REVIEW, actor=staff, outputs=outputs, now=now)
        if blind:
            run.save()
            audit_record(
                actor=staff,
                patient=case.booking.patient,
                action=AuditEvent.Action.SCREENING_DECIDED,
                fields="screening_case",
                reason=reason,
                detail=f"blind audit of case {case.pk}: {decision} (system: {case.status})",
            )
            return review
        status = Status.APPROVED if decision == ScreeningReview.Decision.APPROVE else Status.DECLINED
        change = Transition(status=status, decided_by=ScreeningCase.DecidedBy.STAFF)
        if not case_transition(case=case, change=change, run=run, actor=staff, now=now):
            raise AppError("changed")
    return review
