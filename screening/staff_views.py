"""Staff pages of the screening: the review queue, one case with its reports, and the blind audit.

Staff only (``role_required``: everyone else gets 404, signed-out visitors the staff sign-in). Opening a
case is audited, and so is every file the page shows: the images go through ``views.upload_file`` (which
audits each read), and PDF pages through ``upload_page``, which audits the same way.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from PIL import Image

from core.errors import AppError
from medcard import roles
from medcard.models import User
from medcard.views import role_required
from screening import reasons, selectors, services
from screening.forms import QUESTIONS, DecisionForm
from screening.models import ScreeningCase, ScreeningRun, Upload
from screening.pipeline.render import pdf_page_render

REVIEWER_ROLE = roles.SCREENING_REVIEWER
WAITING_LONG = timedelta(hours=4)
LOW_SCORE = 0.95  # below this a decision-critical field is never used automatically (reference §6.1 step 4)


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


# --- What the pages show, built from the case and its runs --------------------------------------------------


@dataclass
class BoxView:
    """A field's box on its page, as percentages of the page so it scales with the image."""

    name: str
    label: str
    value: str
    left: str
    top: str
    width: str
    height: str
    low: bool


@dataclass
class PageView:
    upload_id: int
    number: int
    image_url: str
    caption: str
    download_url: str = ""
    boxes: list[BoxView] = field(default_factory=list)


@dataclass
class FieldRow:
    name: str  # the field key: "analyte:creatinine", "collected_on", "patient_name", ...
    label: str
    value: str
    unit: str
    score: float | None
    codes: list[str]
    correctable: bool
    upload_id: int
    run_id: int | None = None
    page: int | None = None
    box: dict[str, Any] | None = None
    inputmode: str = "text"
    placeholder: str = ""
    fix: str = ""


FIELD_LABELS = {
    "collected_on": gettext_lazy("Collected on"),
    "reported_on": gettext_lazy("Reported on"),
    "hospital": gettext_lazy("Hospital"),
    "patient_name": gettext_lazy("Name on the report"),
    "patient_sex": gettext_lazy("Sex on the report"),
    "patient_age": gettext_lazy("Age on the report"),
}


def _pct(value: float, whole: float) -> str:
    # Formatted here, not in the template: a localised decimal comma would break the CSS.
    return f"{max(0.0, min(100.0, 100.0 * value / whole)):.3f}"


def _issues(case: ScreeningCase) -> dict[str, list[str]]:
    """The reason codes of the latest decision per field it concerns, keyed as the decision keys fields:
    ``"0/analyte:creatinine"`` (the index of the upload's reading among the case's, then the field)."""
    found: dict[str, list[str]] = {}
    for reason in case.decision.get("reasons") or []:
        for key in reason.get("fields") or []:
            codes = found.setdefault(str(key), [])
            if reason.get("code") and reason["code"] not in codes:
                codes.append(str(reason["code"]))
    return found


def _critical_keys(case: ScreeningCase) -> set[str]:
    """The field keys a reviewer may correct: the read fields the decision rests on (``analyte:creatinine``,
    ``collected_on``), or the collection date alone when nothing was decided from a report yet."""
    keys = set()
    for item in case.critical_fields:
        for source in item.get("sources") or []:
            key = str(source).split("/", 1)[-1]
            if not key.startswith("patient:"):
                keys.add(key)
    return keys or {"collected_on"}


def _label(item: dict[str, Any]) -> str:
    chinese = (get_language() or "").startswith("zh")
    name = item.get("name_zh") if chinese else item.get("name_en")
    return str(name or item.get("raw_name") or item.get("code", ""))


def _field_rows(
    run: ScreeningRun, upload: Upload, index: int, issues: dict[str, list[str]]
) -> list[FieldRow]:
    """The fields read from one upload (the ``index``-th reading of the case), with their confidence (the
    model's P(correct) where a model scored them, else the reader's score) and the reasons naming them."""
    outputs = run.outputs or {}
    extraction = outputs.get("extraction") or {}
    confidence = (outputs.get("scores") or {}).get("fields") or {}
    rows: list[FieldRow] = []
    for analyte in extraction.get("analytes") or []:
        key = f"analyte:{analyte.get('code', '')}"
        rows.append(
            FieldRow(
                name=key,
                label=_label(analyte),
                value=f"{analyte.get('comparator', '')}{analyte.get('value_raw', '')}",
                unit=str(analyte.get("unit_raw") or analyte.get("unit") or ""),
                score=confidence.get(key, analyte.get("score")),
                codes=issues.get(f"{index}/{key}", []),
                correctable=False,
                upload_id=upload.pk,
                run_id=run.pk,
                box=analyte.get("box"),
                inputmode="decimal",
            )
        )
    for key, label in FIELD_LABELS.items():
        item = extraction.get(key)
        if not item:
            continue
        value = item.get("value")
        rows.append(
            FieldRow(
                name=key,
                label=str(label),
                value=str(value if value is not None else item.get("raw", "")),
                unit="",
                score=confidence.get(key, item.get("score")),
                codes=issues.get(f"{index}/{key}", []),
                correctable=False,
                upload_id=upload.pk,
                run_id=run.pk,
                box=item.get("box"),
                placeholder="YYYY-MM-DD" if key.endswith("_on") else "",
            )
        )
    return rows


def _mark_correctable(rows: list[FieldRow], critical: set[str]) -> list[FieldRow]:
    """One correction input per decision-critical field: on its first row, or on a row of its own when the
    field was not read at all."""
    seen: set[str] = set()
    for row in rows:
        if row.name in critical and row.name not in seen:
            row.correctable = True
            seen.add(row.name)
    for key in sorted(critical - seen):
        label = FIELD_LABELS.get(key) or key.removeprefix("analyte:")
        rows.append(FieldRow(key, str(label), "", "", None, [], True, 0))
    return rows


def _pages(upload: Upload, outputs: dict[str, Any], rows: list[FieldRow]) -> list[PageView]:
    """One view per page of the upload, with the boxes of the fields read on it."""
    sizes: dict[int, tuple[float, float]] = {}
    turns: dict[int, int] = {}
    for page in (outputs.get("text") or {}).get("pages") or []:
        sizes[int(page["number"])] = (float(page["width_px"]), float(page["height_px"]))
        turns[int(page["number"])] = int(page.get("rotation_deg") or 0) % 360
    if upload.is_image and not sizes and upload.width_px and upload.height_px:
        sizes[1] = (float(upload.width_px), float(upload.height_px))
    count = upload.page_count or 1
    views: list[PageView] = []
    for number in range(1, count + 1):
        turn = turns.get(number, 0)
        if upload.is_image and not turn:
            url = reverse("screening:upload-file", args=[upload.pk])
        else:
            url = reverse("screening:staff-upload-page", args=[upload.pk, number])
            url += f"?rotate={turn}" if turn else ""
        download = "" if upload.is_image else reverse("screening:upload-file", args=[upload.pk])
        caption = upload.get_kind_display() if count == 1 else _("Page %(n)d") % {"n": number}
        view = PageView(upload_id=upload.pk, number=number, image_url=url, caption=str(caption),
                        download_url=download)  # fmt: skip
        width, height = sizes.get(number, (0.0, 0.0))
        for row in rows:
            box = row.box
            if not box or int(box.get("page", 1)) != number or not width or not height:
                continue
            view.boxes.append(
                BoxView(
                    name=row.name,
                    label=row.label,
                    value=row.value,
                    left=_pct(box["x0"], width),
                    top=_pct(box["y0"], height),
                    width=_pct(box["x1"] - box["x0"], width),
                    height=_pct(box["y1"] - box["y0"], height),
                    low=bool(row.codes) or (row.score is not None and row.score < LOW_SCORE),
                )
            )
        views.append(view)
    return views


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


@role_required(REVIEWER_ROLE)
@never_cache
@require_http_methods(["GET", "POST"])
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    """One case: its reports with the fields read highlighted, the values, and the decision form.

    A case sampled for the blind audit and not audited yet is shown without the system's decision, its
    reasons and earlier reviews, so the reviewer decides unprompted.
    """
    staff: User = request.user  # type: ignore[assignment]
    case = selectors.case_for_staff(staff=staff, case_id=case_id)
    reviews = list(case.reviews.select_related("staff"))
    decided = case.status in (ScreeningCase.Status.APPROVED, ScreeningCase.Status.DECLINED)
    blind = case.blind_audit and decided and not any(review.blind_audit for review in reviews)
    critical = _critical_keys(case)
    issues = _issues(case)
    fields: list[FieldRow] = []
    pages: list[PageView] = []
    # The decision numbers the case's readings in this selector's order.
    for index, run in enumerate(selectors.case_extraction_runs(case=case)):
        if run.upload is None or run.status != ScreeningRun.Status.OK:
            continue
        rows = _field_rows(run, run.upload, index, issues)
        fields.extend(rows)
        pages.extend(_pages(run.upload, run.outputs or {}, rows))
    _mark_correctable(fields, critical)
    form = DecisionForm(request.POST or None, fields=sorted(critical))
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
    if form.is_bound:
        for row in fields:
            row.fix = str(form.data.get(f"fix_{row.name}", ""))
    booking = case.booking
    context = {
        "case": {
            "patient_name": booking.patient.masked_name,
            "exam_label": case.get_exam_display(),
            "status_label": case.get_status_display(),
            "visit_at": booking.slot.starts_at,
            "department": booking.session.department.name,
            "patient_confirmed": case.patient_confirmed,
        },
        "blind": blind,
        "reasons": [
            {"code": code, "label": label}
            for code, label in zip(
                case.reason_codes or [], staff_labels(case, case.reason_codes or []), strict=True
            )
        ],
        "answers": [
            {"question": QUESTIONS.get(item, item), "yes": bool(value)}
            for item, value in (case.answers or {}).items()
        ],
        "fields": fields,
        "pages": pages,
        "form": form,
        "can_decide": case.status == ScreeningCase.Status.REVIEW or blind,
        "reviews": [] if blind else reviews,
    }
    return render(request, "screening/staff/case.html", context, status=400 if form.errors else 200)


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
