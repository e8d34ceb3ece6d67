"""Reads of the screening app. One access function per reader; others get 404 like a missing row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Count, F, Prefetch, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from core.clock import local_datetime
from medcard import roles
from medcard.models import Card, User
from medcard.selectors import user_has_role
from reservations.models import Booking
from reservations.selectors import booking_for_account
from screening.models import ScreeningCase, ScreeningExamSetting, ScreeningReview, ScreeningRun, Upload


def upload_for_account(*, account: User, upload_id: int) -> Upload:
    """An upload for one of the account's bookings, or Http404 (also for uploads of other accounts)."""
    upload = (
        Upload.objects.select_related("booking").filter(pk=upload_id, booking__account=account).first()
        if account.is_authenticated and account.kind == User.Kind.PATIENT
        else None
    )
    if upload is None:
        raise Http404("No such upload on this account.")
    return upload


def upload_for_staff(*, staff: User, upload_id: int) -> Upload:
    """Any upload, for front-desk staff (and superusers); Http404 for everyone else."""
    if not user_has_role(user=staff, role=roles.SCREENING_REVIEWER):
        raise Http404("No such upload.")
    upload = Upload.objects.select_related("booking__patient").filter(pk=upload_id).first()
    if upload is None:
        raise Http404("No such upload.")
    return upload


def uploads_for_booking(*, account: User, booking_id: int) -> QuerySet[Upload]:
    """The uploads of one of the account's bookings, oldest first; Http404 for others' bookings."""
    booking = booking_for_account(account=account, booking_id=booking_id)
    return Upload.objects.filter(booking=booking).order_by("created_at", "id")


def upload_derivative_bytes(*, upload: Upload) -> bytes:
    """The stored derivative. Call only with an upload returned by one of the access functions above."""
    with default_storage.open(upload.derivative_name, "rb") as handle:
        data: bytes = handle.read()
    return data


# --- Screening cases ---------------------------------------------------------------------------------------


def exam_mode(*, exam_code: str) -> str:
    """How an exam's bookings are screened: ``off``, ``shadow`` or ``live`` (``off`` for no exam code).

    The exam's ScreeningExamSetting decides; an exam without one runs in ``SCREENING_DEFAULT_MODE``.
    """
    if not exam_code:
        return ScreeningExamSetting.Mode.OFF
    row = ScreeningExamSetting.objects.filter(exam_code=exam_code).values_list("mode", flat=True).first()
    return row or settings.SCREENING_DEFAULT_MODE


def exam_is_screened(*, exam_code: str) -> bool:
    """Whether bookings of ``exam_code`` are screened (its mode is shadow or live)."""
    return exam_mode(exam_code=exam_code) != ScreeningExamSetting.Mode.OFF


def exam_review_hours(*, exam_code: str) -> int:
    """What patients are told a staff review of this exam takes, in hours."""
    row = (
        ScreeningExamSetting.objects.filter(exam_code=exam_code)
        .values_list("review_hours", flat=True)
        .first()
    )
    return int(row) if row else settings.SCREENING_REVIEW_HOURS


def case_for_booking(*, booking: Booking) -> ScreeningCase | None:
    """The screening case of a booking the caller has already been allowed to read, or ``None``."""
    return (
        ScreeningCase.objects.filter(booking=booking).select_related("booking__session__clinic_type").first()
    )


def case_for_account(*, account: User, booking_id: int) -> ScreeningCase:
    """The screening case of one of the account's bookings; Http404 for other accounts' bookings and for
    bookings that are not screened."""
    booking = booking_for_account(account=account, booking_id=booking_id)
    case = case_for_booking(booking=booking)
    if case is None:
        raise Http404("This booking has no screening.")
    return case


def case_for_staff(*, staff: User, case_id: int) -> ScreeningCase:
    """Any screening case, for front-desk staff (and superusers); Http404 for everyone else. Reading its
    personal data is audited by the caller (``services.case_staff_read_record``)."""
    if not user_has_role(user=staff, role=roles.SCREENING_REVIEWER):
        raise Http404("No such screening case.")
    case = (
        ScreeningCase.objects.select_related(
            "booking__patient",
            "booking__session__clinic_type",
            "booking__session__department",
            "booking__slot",
        )
        .filter(pk=case_id)
        .first()
    )
    if case is None:
        raise Http404("No such screening case.")
    return case


def case_payment_block(*, booking: Booking) -> str | None:
    """Why a booking may not be paid for yet because of its screening (a sentence for the patient), or
    ``None`` when it may (no screening, or approved)."""
    case = ScreeningCase.objects.filter(booking=booking).only("status", "review_due_at").first()
    if case is None or case.status == ScreeningCase.Status.APPROVED:
        return None
    if case.status == ScreeningCase.Status.AWAITING_UPLOAD:
        return str(_("Please send your test report first: payment opens once the screening approves it."))
    if case.status in (ScreeningCase.Status.PROCESSING, ScreeningCase.Status.CONFIRM):
        return str(_("Your report is being checked: payment opens once the screening approves it."))
    if case.status == ScreeningCase.Status.REVIEW:
        return str(_("Staff are reviewing your screening: payment opens once they approve it."))
    return str(_("This examination was not approved by the screening, so it cannot be paid for."))


def case_extraction_runs(*, case: ScreeningCase) -> list[ScreeningRun]:
    """The latest extraction run of each of the case's uploads (by checksum: the same file sent twice is
    read once), oldest upload first."""
    latest: dict[str, ScreeningRun] = {}
    runs = ScreeningRun.objects.filter(case=case, step=ScreeningRun.Step.EXTRACT).select_related("upload")
    for run in runs.order_by("created_at", "id"):
        latest[run.input_sha256] = run
    return list(latest.values())


def case_latest_decision_run(*, case: ScreeningCase) -> ScreeningRun | None:
    """The case's latest decision run (the pipeline's would-be decision in shadow mode), or ``None``."""
    return (
        ScreeningRun.objects.filter(case=case, step=ScreeningRun.Step.DECIDE)
        .order_by("-created_at", "-id")
        .first()
    )


@dataclass(frozen=True)
class QueueRow:
    """One line of the staff review queue."""

    case: ScreeningCase
    visit_date: date
    starts_at: datetime
    reason_codes: list[str]
    blind_audit: bool  # an automatic decision to re-decide without seeing the system's decision
    hold_expires_at: datetime | None


def review_queue(*, staff: User, include_audits: bool = True) -> list[QueueRow]:
    """The cases waiting for staff, soonest visit first: every open case in review whose number is still
    held, then (``include_audits``) the automatic decisions sampled for a blind audit and not yet audited.
    Http404 for anyone but front-desk staff."""
    if not user_has_role(user=staff, role=roles.SCREENING_REVIEWER):
        raise Http404("No review queue.")
    base = ScreeningCase.objects.select_related(
        "booking__patient", "booking__slot", "booking__session__clinic_type", "booking__session__department"
    )
    waiting = base.filter(status=ScreeningCase.Status.REVIEW, booking__status=Booking.Status.HELD)
    rows = [
        QueueRow(case, case.booking.visit_date, case.booking.slot.starts_at, list(case.reason_codes), False,
                 case.booking.hold_expires_at)
        for case in waiting
    ]  # fmt: skip
    if include_audits:
        audits = base.filter(
            blind_audit=True,
            status__in=[ScreeningCase.Status.APPROVED, ScreeningCase.Status.DECLINED],
        ).exclude(reviews__blind_audit=True)
        rows += [
            QueueRow(case, case.booking.visit_date, case.booking.slot.starts_at, [], True, None)
            for case in audits
        ]
    rows.sort(key=lambda row: (row.blind_audit, row.starts_at, row.case.pk))
    return rows


HISTORY_LIMIT = 200


@dataclass(frozen=True)
class HistoryRow:
    """One decided case for the history: the case, and the staff review that decided it (``None`` when the
    rules decided it) and the blind audit of an automatic decision, if one was made."""

    case: ScreeningCase
    decision_review: ScreeningReview | None
    audit_review: ScreeningReview | None


def decided_cases(
    *, staff: User, day: date | None = None, card_number: str = "", limit: int = HISTORY_LIMIT
) -> list[HistoryRow]:
    """Decided cases (approved or declined, by a clinician or by the rules), most recently decided first: all
    of them, those decided on the hospital-local date ``day``, and/or those of the patient holding the card
    ``card_number`` (any of their cards, spaces ignored). At most ``limit`` rows. Http404 for anyone but
    clinicians (and superusers)."""
    if not user_has_role(user=staff, role=roles.SCREENING_REVIEWER):
        raise Http404("No screening history.")
    cases = ScreeningCase.objects.filter(
        status__in=[ScreeningCase.Status.APPROVED, ScreeningCase.Status.DECLINED], decided_at__isnull=False
    )
    if day is not None:
        start = local_datetime(day, time(0, 0))
        cases = cases.filter(
            decided_at__gte=start, decided_at__lt=local_datetime(day + timedelta(days=1), time(0, 0))
        )
    if card_number:
        patients = Card.objects.filter(number="".join(card_number.split())).values("patient_id")
        cases = cases.filter(booking__patient_id__in=patients)
    cases = cases.select_related(
        "booking__patient", "booking__slot", "booking__session__clinic_type", "booking__session__department"
    ).prefetch_related(Prefetch("reviews", queryset=ScreeningReview.objects.select_related("staff")))
    rows = []
    for case in cases.order_by("-decided_at", "-id")[:limit]:
        reviews = list(case.reviews.all())
        decision = next((r for r in reversed(reviews) if not r.blind_audit), None)
        audit = next((r for r in reversed(reviews) if r.blind_audit), None)
        by_staff = case.decided_by == ScreeningCase.DecidedBy.STAFF
        rows.append(HistoryRow(case, decision if by_staff else None, audit))
    return rows


@dataclass(frozen=True)
class ScreeningFigures:
    """How the screening decided since a moment: for the monthly check of the automatic path."""

    cases: int
    auto_approved: int
    auto_declined: int
    staff_decided: int
    blind_audits: int
    audit_disagreements: int  # blind audits whose decision differs from the automatic one

    @property
    def audit_disagreement_rate(self) -> float | None:
        """Share of blind audits that disagreed: the estimate of the automatic path's error rate."""
        return self.audit_disagreements / self.blind_audits if self.blind_audits else None


def screening_figures(*, since: datetime) -> ScreeningFigures:
    """Counts of cases opened since ``since`` by how they were decided, and of the blind audits of them."""
    cases = ScreeningCase.objects.filter(created_at__gte=since)
    decided = {
        (row["decided_by"], row["status"]): row["n"]
        for row in cases.values("decided_by", "status").annotate(n=Count("pk"))
    }
    audits = ScreeningReview.objects.filter(case__created_at__gte=since, blind_audit=True)
    return ScreeningFigures(
        cases=cases.count(),
        auto_approved=decided.get(("system", "approved"), 0),
        auto_declined=decided.get(("system", "declined"), 0),
        staff_decided=sum(n for (by, _status), n in decided.items() if by == "staff"),
        blind_audits=audits.count(),
        audit_disagreements=audits.exclude(decision=F("system_outcome")).count(),
    )


@dataclass(frozen=True)
class AnalyteReading:
    """One analyte value read from an uploaded report: for other apps (the dose calculator's creatinine)."""

    code: str
    value: float
    unit: str  # as printed, normalised spelling ("umol/L", "mg/dL")
    value_canonical: float | None
    unit_canonical: str
    collected_on: date | None
    upload_id: int | None
    booking_id: int
    read_at: datetime


def latest_analyte_for_patient(*, patient_id: int, code: str) -> AnalyteReading | None:
    """The patient's most recently collected value of ``code`` read from any upload (newest extraction of
    each file), or ``None``. Values the reader could not put a number on are skipped."""
    runs = (
        ScreeningRun.objects.filter(
            case__booking__patient_id=patient_id,
            step=ScreeningRun.Step.EXTRACT,
            status=ScreeningRun.Status.OK,
        )
        .select_related("case")
        .order_by("-created_at", "-id")[:50]
    )
    best: AnalyteReading | None = None
    for run in runs:
        extraction = (run.outputs or {}).get("extraction") or {}
        collected = (extraction.get("collected_on") or {}).get("value")
        collected_on = date.fromisoformat(collected) if isinstance(collected, str) else None
        for row in extraction.get("analytes") or []:
            if not isinstance(row, dict) or row.get("code") != code or row.get("value") is None:
                continue
            reading = AnalyteReading(
                code=code,
                value=float(row["value"]),
                unit=str(row.get("unit") or ""),
                value_canonical=row.get("value_canonical"),
                unit_canonical=str(row.get("unit_canonical") or ""),
                collected_on=collected_on,
                upload_id=run.upload_id,
                booking_id=run.case.booking_id,
                read_at=run.created_at,
            )
            if best is None or (reading.collected_on or date.min) > (best.collected_on or date.min):
                best = reading
            break
    return best
