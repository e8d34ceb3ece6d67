"""Clinicians' pages of the screening: the review queue, one case with its reports, the blind audit and the
history of decided cases.

Clinicians only (``roles.SCREENING_REVIEWER``; ``role_required``: everyone else, the front desk included,
gets 404, signed-out visitors the staff sign-in). Opening a
case is audited, and so is every file the page shows: the images go through ``views.upload_file`` (which
audits each read), and PDF pages through ``upload_page``, which audits the same way.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from PIL import Image

from core.clock import local_today
from core.errors import AppError
from medcard import roles
from medcard.models import User
from medcard.views import role_required
from screening import reasons, selectors, services, staff_case
from screening.forms import QUESTIONS, DecisionForm
from screening.models import ScreeningCase, ScreeningReview, Upload
from screening.pipeline.render import pdf_page_render
from screening.staff_forms import HistorySearchForm

REVIEWER_ROLE = roles.SCREENING_REVIEWER
WAITING_LONG = timedelta(hours=4)


# The reader turned a page clockwise by this many degrees before reading it (PIL turns counter-clockwise).
TURNS = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


def _page_png(upload: Upload, *, page: int, rotation_deg: int) -> bytes:
    """Page ``page`` (1-based) of an upload's derivative as the reader saw it, as PNG: a PDF page rendered at
    the reader's resolution, an image as stored, either turned as the reader turned it, so boxes line up."""
    count = upload.page_count if not upload.is_image else 1
    if not 1 <= page <= (count or 0) or (rotation_deg and rotation_deg not in TURNS):
        raise Http404("No such page.")
    data = selectors.upload_derivative_bytes(upload=upload)
    image: Image.Image
    if upload.is_image:
        image = Image.open(io.BytesIO(data))  # the derivative: already checked, re-encoded and bounded
        image.load()
    else:
        image = pdf_page_render(data, page - 1)  # the reader's resolution, under the one pixel cap
    if rotation_deg:
        image = image.transpose(TURNS[rotation_deg])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# --- What the pages show ---------------------------------------------------------------------------------


@dataclass
class QueueLine:
    case_id: int
    visit_at: datetime
    patient_name: str
    exam_label: str
    department: str
    reasons: list[str]
    waiting_since: datetime
    waiting_long: bool = False
    sampled_at: datetime | None = None


def staff_labels(case: ScreeningCase, codes: list[str]) -> list[str]:
    """The queue's label of each reason code, with the decision's parameters where it recorded them."""
    params = {
        r.get("code"): r.get("params") or {}
        for r in case.decision.get("reasons") or []
        if isinstance(r, dict)
    }
    return [reasons.describe(code, params.get(code, {}))["staff"] for code in codes]


def _line(row: selectors.QueueRow, now: datetime) -> QueueLine:
    case, booking = row.case, row.case.booking
    # In review since its last change (the decision that sent it there, or the patient's "no").
    since = case.updated_at or case.created_at
    return QueueLine(
        case_id=case.pk,
        visit_at=row.starts_at,
        patient_name=booking.patient.masked_name,
        exam_label=case.get_exam_display(),
        department=booking.session.department.name,
        reasons=staff_labels(case, row.reason_codes),
        waiting_since=since,
        waiting_long=now - since > WAITING_LONG,
        sampled_at=case.decided_at,
    )


# --- Pages --------------------------------------------------------------------------------------------------


@role_required(REVIEWER_ROLE)
@never_cache
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """Cases waiting for staff, soonest visit first, with their reasons (staff labels) and waiting time."""
    now = timezone.now()
    rows = selectors.review_queue(staff=request.user, include_audits=False)  # type: ignore[arg-type]
    return render(request, "screening/staff/queue.html", {"rows": [_line(row, now) for row in rows]})


@role_required(REVIEWER_ROLE)
@never_cache
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    """Automatic decisions sampled for a blind audit and not audited yet, soonest visit first."""
    now = timezone.now()
    rows = selectors.review_queue(staff=request.user, include_audits=True)  # type: ignore[arg-type]
    lines = [_line(row, now) for row in rows if row.blind_audit]
    return render(request, "screening/staff/audit.html", {"rows": lines})


def _reason_lines(case: ScreeningCase, files: list[staff_case.FileView]) -> list[dict[str, Any]]:
    """The latest decision's reasons in the staff wording, each with the files and fields it concerns."""
    labels = {f"{view.index}/{row.name}": (view.number, row.label) for view in files for row in view.fields}
    lines: list[dict[str, Any]] = []
    recorded = [r for r in case.decision.get("reasons") or [] if isinstance(r, dict) and r.get("code")]
    for reason in recorded:
        where = []
        for key in reason.get("fields") or []:
            number, label = labels.get(str(key), (None, ""))
            if number is not None:
                where.append(_("File %(n)d: %(field)s") % {"n": number, "field": label})
        text = reasons.describe(str(reason["code"]), reason.get("params") or {})["staff"]
        lines.append({"code": reason["code"], "label": text, "where": where})
    # Cases whose decision recorded codes only (or none at all: the patient asked for a person).
    for code in case.reason_codes or []:
        if all(line["code"] != code for line in lines):
            lines.append({"code": code, "label": reasons.describe(code, {})["staff"], "where": []})
    return lines


def _review_lines(reviews: list[ScreeningReview]) -> list[dict[str, Any]]:
    return [
        {
            "at": review.created_at,
            "staff": staff_name(review.staff),
            "decision": review.get_decision_display(),
            "reason": review.reason,
            "note": review.note,
            "blind_audit": review.blind_audit,
        }
        for review in reviews
    ]


def staff_name(user: User) -> str:
    """How a staff member is named on the pages: their display name, else their user name."""
    return user.display_name or str(user)


@role_required(REVIEWER_ROLE)
@never_cache
@require_http_methods(["GET", "POST"])
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    """One case: one section per file sent (named by file name and upload time) with its pages, the fields
    read highlighted, the values read (correctable on every file), the identity checks and the recomputed
    eGFR; the patient's age and sex; the reasons in words; the decision form.

    A case sampled for the blind audit and not audited yet is shown without the system's decision, its
    reasons and earlier reviews, so the reviewer decides unprompted.
    """
    staff: User = request.user  # type: ignore[assignment]
    case = selectors.case_for_staff(staff=staff, case_id=case_id)
    reviews = list(case.reviews.select_related("staff"))
    decided = case.status in (ScreeningCase.Status.APPROVED, ScreeningCase.Status.DECLINED)
    blind = case.blind_audit and decided and not any(review.blind_audit for review in reviews)
    today = local_today()
    # The decision numbers the case's readings in this selector's order; corrections are keyed the same way.
    files = staff_case.case_files(case=case, runs=selectors.case_extraction_runs(case=case), today=today)
    form = DecisionForm(request.POST or None, fields=staff_case.correction_names(files))
    if request.method == "POST" and form.is_valid():
        try:
            services.review_decide(
                staff=staff,
                case=case,
                decision=form.cleaned_data["decision"],
                reason=form.cleaned_data["reason"],
                corrections=form.corrections(),
            )
        except AppError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Decision saved."))
            return redirect("screening:staff-audit" if blind else "screening:staff-queue")
    elif request.method == "GET":
        services.case_staff_read_record(staff=staff, case=case)
    for view in files:
        for row in view.fields:
            if form.is_bound and row.input_name:
                row.fix = str(form.data.get(f"fix_{row.input_name}", ""))
            if blind:  # the system's checks are part of the decision the reviewer must not see
                row.codes, row.checks = [], []
    booking = case.booking
    patient = booking.patient
    facts = staff_case.patient_facts(patient, today=today)
    context = {
        "case": {
            "patient_name": patient.masked_name,
            "patient_age": facts.age_years,
            "patient_sex": patient.get_sex_display(),
            "exam_label": case.get_exam_display(),
            "status_label": case.get_status_display(),
            "visit_at": booking.slot.starts_at,
            "department": booking.session.department.name,
            "patient_confirmed": case.patient_confirmed,
        },
        "blind": blind,
        "reasons": _reason_lines(case, files),
        "answers": [
            {"question": QUESTIONS.get(item, item), "yes": bool(value)}
            for item, value in (case.answers or {}).items()
        ],
        "files": files,
        "form": form,
        "can_decide": case.status == ScreeningCase.Status.REVIEW or blind,
        "reviews": [] if blind else _review_lines(reviews),
        "egfr_unit": staff_case.EGFR_UNIT,
    }
    return render(request, "screening/staff/case.html", context, status=400 if form.errors else 200)


@dataclass
class HistoryLine:
    case_id: int
    decided_at: datetime
    patient_name: str
    exam_label: str
    department: str
    visit_at: datetime
    outcome: str  # "approved" or "declined"
    outcome_label: str
    decided_by: str  # the clinician's name, or "" when the rules decided
    reason: str
    note: str
    audit: dict[str, str] | None


def _history_line(row: selectors.HistoryRow) -> HistoryLine:
    case, booking, review = row.case, row.case.booking, row.decision_review
    if review is not None:
        reason, note = review.reason, review.note
    else:  # decided by the rules: their reasons, in words
        reason = "; ".join(staff_labels(case, list(case.reason_codes or []))) if case.reason_codes else ""
        note = ""
    audit = None
    if row.audit_review is not None:
        audit = {
            "staff": staff_name(row.audit_review.staff),
            "decision": str(row.audit_review.get_decision_display()),
            "reason": row.audit_review.reason,
        }
    assert case.decided_at is not None  # noqa: S101 - the selector returns decided cases only
    return HistoryLine(
        case_id=case.pk,
        decided_at=case.decided_at,
        patient_name=booking.patient.masked_name,
        exam_label=case.get_exam_display(),
        department=booking.session.department.name,
        visit_at=booking.slot.starts_at,
        outcome=case.status,
        outcome_label=str(case.get_status_display()),
        decided_by=staff_name(review.staff) if review is not None else "",
        reason=reason,
        note=note,
        audit=audit,
    )


@role_required(REVIEWER_ROLE)
@never_cache
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """Decided cases, most recently decided first, with who decided (a clinician or the rules), when, the
    decision and its reason; searchable by the day of the decision and by card number. Searching by card
    is a read of that patient's screening record: audited."""
    staff: User = request.user  # type: ignore[assignment]
    form = HistorySearchForm(request.GET if request.GET else None)
    lines: list[HistoryLine] = []
    searched = form.is_bound and form.is_valid()
    if not form.is_bound or searched:
        day = form.cleaned_data.get("day") if searched else None
        card = form.cleaned_data.get("card", "") if searched else ""
        rows = selectors.decided_cases(staff=staff, day=day, card_number=card)
        if card and rows:
            services.case_history_read_record(staff=staff, patient=rows[0].case.booking.patient, card=card)
        lines = [_history_line(row) for row in rows]
    context = {"form": form, "rows": lines, "limit": selectors.HISTORY_LIMIT, "searched": searched}
    return render(request, "screening/staff/history.html", context, status=400 if form.errors else 200)


@role_required(REVIEWER_ROLE)
@never_cache
@require_GET
def upload_page(request: HttpRequest, upload_id: int, page: int) -> HttpResponse:
    """One page of an upload as the reader saw it (``?rotate=90|180|270`` turns it as the reader did), as
    PNG, so the boxes of the fields read line up. Audited like every staff read of an upload."""
    staff: User = request.user  # type: ignore[assignment]
    upload = selectors.upload_for_staff(staff=staff, upload_id=upload_id)
    rotation = request.GET.get("rotate", "0")
    png = _page_png(upload, page=page, rotation_deg=int(rotation) if rotation.isdigit() else -1)
    services.upload_staff_read_record(staff=staff, upload=upload)
    response = HttpResponse(png, content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
