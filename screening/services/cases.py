"""Screening cases: opened with a booking's hold, moved by the pipeline, the patient and staff.

One function moves a case (``case_transition``): it compare-and-sets the case on its ``revision``, writes the
append-only run and the audit row, and applies what the new status means for the held number, all in the
caller's transaction; notifications go out after commit. What a status means for the booking:

* ``awaiting_upload``, ``processing``, ``confirm``, ``review``: the number stays held and cannot be paid for
  (first until ``SCREENING_UPLOAD_HOURS`` after booking, once a report came until the slice's cut-off);
* ``approved``: the payment window starts, ``SCREENING_PAYMENT_HOURS`` long, up to the slice's booking cut-off
  (a free number is booked at once);
* ``declined``: the number is released (cancelled with reason ``screening_declined``, offered to the
  waitlist), and the patient told why and how to fix it; a manual review may re-open it while it is free.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import AppError
from medcard.models import AuditEvent, User
from medcard.services.audit import audit_record
from medcard.services.outbox import task_send
from reservations.models import Booking
from reservations.services import gates as gate_services
from screening import questions, selectors, tasks
from screening.models import ScreeningCase, ScreeningExamSetting, ScreeningRun
from screening.pipeline.rules import questionnaire_for
from screening.services import notify

logger = logging.getLogger(__name__)

DECLINE_CANCEL_REASON = "screening_declined"
Status = ScreeningCase.Status


# --- Opening a case with a hold ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CasePlan:
    """What a hold on a screened session needs: the exam, its mode, and the cleaned answers."""

    exam_code: str
    mode: str
    answers: dict[str, bool]
    asked: bool = True  # False: handed out without a questionnaire (a waitlist offer)


def questionnaire_items(*, exam_code: str) -> tuple[str, ...]:
    """The questionnaire items of an exam's rules (none when the exam has no rules file)."""
    try:
        return tuple(questionnaire_for(exam_code))
    except (KeyError, ValueError):  # a missing or broken rules file: the decision step sends it to staff
        logger.error("no usable rules for screened exam %s", exam_code)
        return ()


def answers_clean(*, exam_code: str, answers: Mapping[str, object] | None) -> dict[str, bool]:
    """Check questionnaire answers against the exam's items: each item answered yes or no, nothing else.
    An item asked of some patients only (pregnancy, ``questions.PATIENT_DEPENDENT_ITEMS``) may be left out
    here: ``case_open`` knows the patient and requires it only of those it applies to.

    Raises AppError ``screening_answers`` naming the unknown, missing or unclear items.
    """
    items = questionnaire_items(exam_code=exam_code)
    given = dict(answers or {})
    unknown = sorted(set(given) - set(items))
    if unknown:
        raise AppError(
            "screening_answers",
            _("These questions are not asked for this examination: %(items)s.")
            % {"items": ", ".join(unknown)},
        )
    missing = [item for item in items if item not in given and item not in questions.PATIENT_DEPENDENT_ITEMS]
    if missing:
        raise AppError(
            "screening_answers",
            _("Please answer every screening question; missing: %(items)s.") % {"items": ", ".join(missing)},
        )
    unclear = [item for item in items if item in given and not isinstance(given[item], bool)]
    if unclear:
        raise AppError(
            "screening_answers",
            _("Please answer yes or no to: %(items)s.") % {"items": ", ".join(unclear)},
        )
    return {item: bool(given[item]) for item in items if item in given}


def case_plan(*, exam_code: str, answers: Mapping[str, object] | None) -> CasePlan | None:
    """Whether a hold on a session of ``exam_code`` is screened, and with which answers (``None``: it is
    not: no exam, or its screening is off; answers sent anyway are ignored). Raises AppError."""
    mode = selectors.exam_mode(exam_code=exam_code)
    if mode == ScreeningExamSetting.Mode.OFF:
        return None
    return CasePlan(
        exam_code=exam_code, mode=mode, answers=answers_clean(exam_code=exam_code, answers=answers)
    )


def case_plan_unanswered(*, exam_code: str) -> CasePlan | None:
    """The plan of a screened number handed out without a questionnaire (a waitlist offer): no answers, so
    the decision sends it to staff (``questionnaire_incomplete``); ``None`` when the exam is not screened."""
    mode = selectors.exam_mode(exam_code=exam_code)
    if mode == ScreeningExamSetting.Mode.OFF:
        return None
    return CasePlan(exam_code=exam_code, mode=mode, answers={}, asked=False)


def answers_for_patient(*, booking: Booking, exam_code: str, answers: Mapping[str, bool]) -> dict[str, bool]:
    """The answers completed for the booking's patient: an item that does not apply to them (pregnancy, for
    a man or a child under 12) is recorded as no, whatever was sent; one that applies must be answered
    (AppError ``screening_answers`` otherwise)."""
    patient = booking.patient
    completed = dict(answers)
    for item in questions.PATIENT_DEPENDENT_ITEMS & set(questionnaire_items(exam_code=exam_code)):
        if not questions.item_applies(
            item, sex=patient.sex, birth_date=patient.birth_date, on=booking.visit_date
        ):
            completed[item] = False
        elif item not in completed:
            raise AppError("screening_answers", _("Please answer whether the patient could be pregnant."))
    return completed


def case_open(*, booking: Booking, plan: CasePlan, now: datetime) -> ScreeningCase:
    """Inside the hold's transaction: open the booking's case, waiting for a report. The answers are
    completed for the patient (``answers_for_patient``; raises AppError). A first decision from the answers
    alone runs right after commit, in this request (no report is read, so it is quick): the page the
    patient lands on already names the result to send, or says that none is needed."""
    answers = (
        answers_for_patient(booking=booking, exam_code=plan.exam_code, answers=plan.answers)
        if plan.asked
        else plan.answers
    )
    case = ScreeningCase.objects.create(
        booking=booking,
        exam_code=plan.exam_code,
        mode=plan.mode,
        answers=answers,
        status=Status.AWAITING_UPLOAD,
        created_at=now,
        updated_at=now,
    )
    transaction.on_commit(lambda: decide_now(case_id=case.pk), robust=True)
    return case


def decide_enqueue(*, case_id: int) -> None:
    """Queue a decision of the case (call after commit)."""
    task_send(tasks.decide_case.si(case_id))


def case_decide_if_undecided(*, case: ScreeningCase) -> None:
    """A case still waiting for its first decision (the hold's own one failed and its queued task has not
    run): decide it now, when the patient opens its page, so the page can name what to send. Idempotent:
    the decision is keyed on its inputs."""
    if case.status == Status.AWAITING_UPLOAD and not case.decision:
        decide_now(case_id=case.pk)


def decide_now(*, case_id: int) -> None:
    """Decide the case in this process (after commit), or queue the decision when that fails: the answers
    alone decide quickly, and the patient should not wait for a worker to learn what to send."""
    try:
        tasks.decide_case.apply(args=(case_id,), throw=True)
    except Exception:  # the worker's copy of the step retries it; the page polls until it is decided
        logger.exception("first screening decision of case %s failed here; queued", case_id)
        decide_enqueue(case_id=case_id)


# --- Moving a case -----------------------------------------------------------------------------------------


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def audit_sampled() -> bool:
    """Draw whether an automatic decision goes to the blind audit (``SCREENING_AUDIT_SAMPLE``)."""
    share = settings.SCREENING_AUDIT_SAMPLE
    return secrets.randbelow(1_000_000) < share * 1_000_000


@dataclass(frozen=True)
class Transition:
    """A change of a case to apply: the new status and what comes with it."""

    status: str
    decided_by: str = ""  # "system" or "staff" for approved/declined
    decision: dict[str, Any] | None = None  # replaces the case's decision JSON when given
    reason_codes: list[str] | None = None
    patient_confirmed: bool | None = None
    reset_confirmation: bool = False


def case_transition(
    *,
    case: ScreeningCase,
    change: Transition,
    run: ScreeningRun | None,
    actor: User | None,
    now: datetime,
    audit_action: str = AuditEvent.Action.SCREENING_DECIDED,
) -> bool:
    """Inside a transaction: move ``case`` (as read, at its ``revision``) to ``change.status``.

    Steps: 1. compare-and-set on the revision (a writer that read an older case loses and changes nothing;
    the caller rolls back); 2. save ``run`` (append-only); 3. an audit row; 4. the booking: approved starts
    the payment window, declined releases the number, every other status keeps it held; 5. the patient's
    message, after commit. Returns False when the compare-and-set lost.
    """
    fields: dict[str, Any] = {"status": change.status, "revision": F("revision") + 1, "updated_at": now}
    if change.decision is not None:
        fields["decision"] = change.decision
    if change.reason_codes is not None:
        fields["reason_codes"] = change.reason_codes
    if change.patient_confirmed is not None:
        fields["patient_confirmed"] = change.patient_confirmed
    elif change.reset_confirmation:
        fields["patient_confirmed"] = None
    final = change.status in (Status.APPROVED, Status.DECLINED)
    if final:
        fields["decided_by"], fields["decided_at"] = change.decided_by, now
        fields["blind_audit"] = change.decided_by == ScreeningCase.DecidedBy.SYSTEM and audit_sampled()
    if change.status == Status.REVIEW:
        fields["review_due_at"] = now + timedelta(hours=selectors.exam_review_hours(exam_code=case.exam_code))
    # The race: the pipeline, the patient and a reviewer may all move one case at once; the revision makes
    # the last writer to have read the case the only one whose change lands.
    if ScreeningCase.objects.filter(pk=case.pk, revision=case.revision).update(**fields) != 1:
        return False
    if run is not None:
        run.save()
    booking = case.booking
    audit_record(
        actor=actor,
        patient=booking.patient,
        action=audit_action,
        fields="screening_case",
        reason=",".join(change.reason_codes or [])[:300],
        detail=f"case {case.pk} of booking {booking.pk}: {case.status} -> {change.status}",
        target=f"screening case {case.pk}",
        changes={"status": [case.status, change.status]},
    )
    # The number may have lapsed or been cancelled meanwhile: then the patient has nothing to act on.
    if change.status == Status.APPROVED:
        pay_within = timedelta(hours=settings.SCREENING_PAYMENT_HOURS)
        if gate_services.hold_gate_clear(booking_id=booking.pk, now=now, pay_within=pay_within):
            notify.case_notify(case_id=case.pk, kind="approved")
    elif change.status == Status.DECLINED:
        if gate_services.hold_gate_fail(booking_id=booking.pk, reason=DECLINE_CANCEL_REASON, now=now):
            notify.case_notify(case_id=case.pk, kind="declined")
    elif change.status in (Status.PROCESSING, Status.REVIEW, Status.CONFIRM):
        gate_services.hold_gate_extend(booking_id=booking.pk, now=now)
        if change.status != Status.PROCESSING and case.status != change.status:
            notify.case_notify(case_id=case.pk, kind=change.status)
    elif change.status == Status.AWAITING_UPLOAD and case.status != change.status:
        notify.case_notify(case_id=case.pk, kind="awaiting_upload")
    case.refresh_from_db()
    booking.refresh_from_db()  # its hold or status changed by update(): callers show the case with it
    return True


def event_run(
    *, case: ScreeningCase, step: str, actor: User | None, outputs: dict[str, Any], now: datetime
) -> ScreeningRun:
    """An (unsaved) run recording a patient's or a member of staff's step on a case."""
    payload = {"case": case.pk, "revision": case.revision, "step": step, "outputs": outputs}
    return ScreeningRun(
        case=case,
        step=step,
        key=f"{step}:{case.pk}:{case.revision}",
        input_sha256=_sha256_json(payload),
        outputs=outputs,
        actor=actor,
        started_at=now,
        created_at=now,
    )


def case_lock(*, case_id: int) -> ScreeningCase:
    """Inside a transaction: lock the case's booking row, then the case row, always in this order (the
    upload locks the booking first too), so the pipeline, the patient and staff never deadlock."""
    booking_id = ScreeningCase.objects.values_list("booking_id", flat=True).get(pk=case_id)
    Booking.objects.select_for_update().filter(pk=booking_id).first()
    return (
        ScreeningCase.objects.select_for_update(of=("self",))
        .select_related("booking__patient")
        .get(pk=case_id)
    )


def case_hold_lapsed(*, booking_id: int) -> bool:
    """Inside the hold expiry's transaction: the held number of an open case lapsed; tell the patient why.
    False when there is no open case (an approved case's number lapses for want of payment)."""
    case = ScreeningCase.objects.filter(booking_id=booking_id).only("pk", "status").first()
    if case is None or not case.is_open:
        return False
    notify.case_notify(case_id=case.pk, kind="lapsed")
    return True


# --- The patient -------------------------------------------------------------------------------------------


def case_upload_received(*, case: ScreeningCase, now: datetime) -> None:
    """Inside the upload's transaction: a new report puts an open case back to ``processing`` (the values
    to confirm change too); a decided case is left alone."""
    case = case_lock(case_id=case.pk)
    if case.status not in (Status.AWAITING_UPLOAD, Status.CONFIRM, Status.REVIEW):
        if case.status == Status.PROCESSING:
            gate_services.hold_gate_extend(booking_id=case.booking_id, now=now)
        return
    case_transition(
        case=case, change=Transition(status=Status.PROCESSING, reset_confirmation=True), run=None, actor=None,
        now=now,
    )  # fmt: skip


def case_confirm(
    *, account: User, booking_id: int, correct: bool, now: datetime | None = None
) -> ScreeningCase:
    """The patient says whether the values read from their report are right.

    Rules: the case is the account's (Http404 otherwise) and waits for this confirmation (AppError
    ``not_confirmable`` otherwise). Yes: the automatic approval stands (the payment window starts). No: the
    case goes to staff review. Either way the answer is recorded (run and audit row).
    """
    now = now or timezone.now()
    case = selectors.case_for_account(account=account, booking_id=booking_id)
    with transaction.atomic():
        case = case_lock(case_id=case.pk)
        if case.status != Status.CONFIRM:
            raise AppError("not_confirmable")
        if case.booking.status != Booking.Status.HELD:
            raise AppError("booking_closed")
        run = event_run(case=case, step=ScreeningRun.Step.CONFIRM, actor=account, now=now,
                        outputs={"correct": correct, "critical_fields": case.critical_fields})  # fmt: skip
        if correct:
            change = Transition(status=Status.APPROVED, decided_by=ScreeningCase.DecidedBy.SYSTEM,
                                patient_confirmed=True)  # fmt: skip
        else:
            change = Transition(status=Status.REVIEW, patient_confirmed=False)
        if not case_transition(case=case, change=change, run=run, actor=account, now=now,
                               audit_action=AuditEvent.Action.SCREENING_CONFIRMED):  # fmt: skip
            raise AppError("changed")
    return case


def case_review_request(
    *, account: User, booking_id: int, then_upload: bool = False, now: datetime | None = None
) -> ScreeningCase:
    """After an automatic decline, the patient asks for a person to look at their case, or (``then_upload``)
    to send a new report.

    Rules: the case is the account's (Http404 otherwise) and was declined automatically (a reviewer's
    decline is final: ``not_reviewable``). The released number is held again if it is still free (else the
    refusal says so: ``full``, and the patient may join the waitlist or book another time); the case goes
    to staff review, or waits for the new report (nothing is with staff until something was sent).
    """
    now = now or timezone.now()
    case = selectors.case_for_account(account=account, booking_id=booking_id)
    with transaction.atomic():
        case = case_lock(case_id=case.pk)
        if case.status != Status.DECLINED or case.decided_by != ScreeningCase.DecidedBy.SYSTEM:
            raise AppError("not_reviewable")
        try:
            gate_services.hold_gate_reopen(booking_id=case.booking_id, reason=DECLINE_CANCEL_REASON, now=now)
        except AppError:
            raise  # the number went to someone else or the slice closed: the patient is told which
        outputs = {"upload_requested": True} if then_upload else {"review_requested": True}
        run = event_run(case=case, step=ScreeningRun.Step.CONFIRM, actor=account, now=now, outputs=outputs)
        status = Status.AWAITING_UPLOAD if then_upload else Status.REVIEW
        if not case_transition(case=case, change=Transition(status=status), run=run, actor=account, now=now):
            raise AppError("changed")
    return case
