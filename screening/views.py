"""Patient pages for uploading test results and following their screening, and the view that serves files.

The upload form is a plain multipart POST that works without JavaScript; a small script on the page sends the
same form with XMLHttpRequest to show progress. The screening status card is part of the page; while the
report is being read, ``static/js/screening.js`` refreshes the card from ``booking_status`` (without
JavaScript the card's "check again" link reloads the page; no timed refresh). Confirming the values read
and asking for a manual review are plain POSTs that redirect back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from math import ceil

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import AppError
from medcard.models import User
from medcard.views import patient_required
from reservations.models import ACTIVE_BOOKING_STATES, Booking
from reservations.selectors import booking_for_account
from screening import explain, reasons, selectors, services, uploads
from screening.forms import ConfirmForm
from screening.models import ScreeningCase, Upload
from screening.pipeline.catalogue import catalogue  # the analyte table loads on first use only
from screening.services.cases import case_decide_if_undecided


@dataclass
class Reason:
    code: str
    message: str
    how_to_fix: str


@dataclass
class Status:
    """What the patient's status card shows (``templates/screening/_status.html``)."""

    booking_id: int
    state: str  # awaiting_upload | processing | confirm | approved | declined | review
    booking_status: str
    checking: bool = False  # awaiting_upload, but the answers are not decided yet: the page polls
    exam_label: str = ""
    hold_expires_at: datetime | None = None
    minutes_left: int = 0
    reasons: list[Reason] = field(default_factory=list)
    needs: list[Reason] = field(default_factory=list)
    fields: list[dict[str, str]] = field(default_factory=list)
    review_by: datetime | None = None
    staff_note: str = ""
    booking_active: bool = False
    can_retry: bool = False  # an automatic decline: the patient may send a new report or ask for a person
    decided_by_staff: bool = False
    reviewer_note: str = ""  # the reviewer's words to the patient with an approval
    no_report_reason: str = ""  # approved from the answers alone: why no test was needed
    money: str = ""  # after a decline: what happens with the money
    has_uploads: bool = False


def patient_reasons(case: ScreeningCase) -> list[Reason]:
    """The latest decision's reasons in the patient's words, each text once (several fields can share one)."""
    given = [r for r in case.decision.get("reasons") or [] if isinstance(r, dict) and r.get("code")]
    if not given:  # a decision recorded without its reasons (or by hand): the codes alone
        given = [{"code": code, "params": {}} for code in case.reason_codes or []]
    out: dict[str, Reason] = {}
    for item in given:
        text = reasons.describe(str(item["code"]), item.get("params") or {})
        out.setdefault(
            text["patient"], Reason(code=str(item["code"]), message=text["patient"], how_to_fix=text["fix"])
        )
    return list(out.values())


# Canonical unit spellings as a patient reads them on a report.
UNIT_DISPLAY = {
    "umol/L": "µmol/L",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
    "mL/min/1.73m2": "mL/min/1.73 m²",
    "10^9/L": "×10⁹/L",
    "10^12/L": "×10¹²/L",
    "{INR}": "",
}


def confirmation_values(case: ScreeningCase) -> list[dict[str, str]]:
    """The values read that the decision rests on, as printed ("Creatinine", "88 µmol/L"), then their
    collection date. Values the pipeline derived (eGFR recomputed from creatinine) are not shown: the
    patient can only check what is on their report."""
    analytes = catalogue()
    chinese = (get_language() or "").startswith("zh")
    rows: list[dict[str, str]] = []
    dates: list[str] = []
    for item in case.critical_fields:
        analyte = analytes.get(str(item.get("name", "")))
        value = item.get("value")
        if analyte is None or not isinstance(value, int | float):
            continue
        unit = str(item.get("unit", ""))
        shown = f"{value:g} {UNIT_DISPLAY.get(unit, unit)}".strip()
        rows.append({"label": analyte.name_zh if chinese else analyte.name_en, "value": shown})
        if item.get("collected_on") and item["collected_on"] not in dates:
            dates.append(str(item["collected_on"]))
    rows += [{"label": str(_("Collected on")), "value": day} for day in dates]
    return rows


def status_for_booking(booking: Booking) -> Status | None:
    """The status card of a booking the caller may read, or ``None`` when its exam needs no screening."""
    case = selectors.case_for_booking(booking=booking)
    if case is None:
        return None
    now = timezone.now()
    status = Status(
        booking_id=booking.pk,
        state=case.status,
        booking_status=booking.status,
        exam_label=case.get_exam_display(),
        hold_expires_at=booking.hold_expires_at if booking.status == Booking.Status.HELD else None,
        booking_active=booking.status in ACTIVE_BOOKING_STATES,
    )
    if status.hold_expires_at:
        status.minutes_left = max(0, ceil((status.hold_expires_at - now).total_seconds() / 60))
    status.decided_by_staff = case.decided_by == case.DecidedBy.STAFF
    if case.status == case.Status.AWAITING_UPLOAD:
        status.needs = patient_reasons(case)
        # Opened, but the answers not decided yet (the first decision failed here and was queued): say so
        # and poll, rather than ask for "your results" without naming them.
        status.checking = not case.decision
    elif case.status == case.Status.APPROVED:
        status.reviewer_note = explain.reviewer_note(case)
        status.has_uploads = booking.uploads.exists()
        if explain.approved_without_report(case):
            status.no_report_reason = explain.no_report_reason(case)
    elif case.status == case.Status.DECLINED:
        status.reasons = patient_reasons(case)
        status.staff_note = case.decline_note
        status.can_retry = case.decided_by == case.DecidedBy.SYSTEM
        if booking.status == Booking.Status.CANCELLED:
            status.money = explain.money_after_decline(booking)
    elif case.status == case.Status.REVIEW:
        status.review_by = case.review_due_at
    elif case.status == case.Status.CONFIRM:
        status.fields = confirmation_values(case)
    return status


@patient_required
@never_cache
@require_http_methods(["GET", "POST"])
def booking_uploads(request: HttpRequest, booking_id: int) -> HttpResponse:
    """List a booking's uploads; POST ``file`` (one or several) to add to them."""
    account: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        files = request.FILES.getlist("file")
        if not files:
            booking_for_account(account=account, booking_id=booking_id)  # 404 before saying anything else
            messages.error(request, _("Please choose a photo or PDF of your report first."))
        for uploaded in files:
            name = services.clean_filename(uploaded.name or "")
            try:
                services.upload_accept(
                    account=account, booking_id=booking_id, filename=name, data=uploads.read_capped(uploaded)
                )
            except AppError as exc:
                messages.error(request, f"{name}: {exc.message}" if name else exc.message)
            else:
                messages.success(request, _("Received %(name)s.") % {"name": name or _("your file")})
        return redirect("screening:booking-uploads", booking_id=booking_id)
    booking = booking_for_account(account=account, booking_id=booking_id)
    case = selectors.case_for_booking(booking=booking)
    if case is not None and not case.decision:
        case_decide_if_undecided(case=case)  # a lost first decision: made now, not polled for
    rows = selectors.uploads_for_booking(account=account, booking_id=booking_id)
    context = {
        "booking": booking,
        "uploads": rows,
        "status": status_for_booking(booking),
        "max_mb": max(1, uploads.max_upload_bytes() // (1024 * 1024)),
        "max_uploads": services.max_uploads_per_booking(),
    }
    return render(request, "screening/booking_uploads.html", context)


@patient_required
@never_cache
@require_GET
def booking_status(request: HttpRequest, booking_id: int) -> HttpResponse:
    """The screening status card alone, for the page's polling script."""
    booking = booking_for_account(account=request.user, booking_id=booking_id)  # type: ignore[arg-type]
    status = status_for_booking(booking)
    if status is None:
        raise Http404("This appointment needs no screening.")
    return render(request, "screening/_status.html", {"status": status})


@patient_required
@require_POST
def booking_confirm(request: HttpRequest, booking_id: int) -> HttpResponse:
    """POST ``correct=yes|no``: the patient's answer to "are these the values on your report?"."""
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        booking_for_account(account=request.user, booking_id=booking_id)  # type: ignore[arg-type]
        messages.error(request, _("Please answer yes or no."))
        return redirect("screening:booking-uploads", booking_id=booking_id)
    try:
        services.case_confirm(account=request.user, booking_id=booking_id, correct=form.is_correct())  # type: ignore[arg-type]
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        if form.is_correct():
            messages.success(request, _("Thank you. Your results are accepted."))
        else:
            messages.success(request, _("Thank you. A member of staff will check your report."))
    return redirect("screening:booking-uploads", booking_id=booking_id)


@patient_required
@require_POST
def booking_review_request(request: HttpRequest, booking_id: int) -> HttpResponse:
    """After an automatic decline: hold the number again and hand the case to staff.

    ``then=upload`` is the "send a new report" button: the same request, and the upload form next (a new
    report takes the case from staff back to the pipeline).
    """
    upload_next = request.POST.get("then") == "upload"
    try:
        services.case_review_request(account=request.user, booking_id=booking_id, then_upload=upload_next)  # type: ignore[arg-type]
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        if upload_next:
            messages.success(request, _("Your number is held again. Send the new report below."))
        else:
            messages.success(request, _("Sent to our staff. We will let you know when they have checked it."))
    target = reverse("screening:booking-uploads", args=[booking_id])
    return redirect(f"{target}#upload-form" if upload_next else target)


def _file_response(upload: Upload) -> HttpResponse:
    data = selectors.upload_derivative_bytes(upload=upload)
    response = HttpResponse(data, content_type=upload.content_type)
    extension = upload.derivative_name.rsplit(".", 1)[-1]
    # Images are shown inline. PDFs are downloaded rather than rendered in our origin, even though the
    # derivative has no scripts or annotations left (reference §2: never render uploaded PDFs inline).
    disposition = "inline" if upload.is_image else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="upload-{upload.pk}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def upload_file(request: HttpRequest, upload_id: int) -> HttpResponse:
    """The upload's derivative, for the patient account that owns the booking or for front-desk staff.

    Everyone else gets 404. The original is never served. Staff reads are audited.
    """
    user = request.user
    if not user.is_authenticated:
        return redirect(f"{reverse('medcard:login')}?next={request.path}")
    account: User = user
    if account.kind == User.Kind.PATIENT:
        return _file_response(selectors.upload_for_account(account=account, upload_id=upload_id))
    upload = selectors.upload_for_staff(staff=account, upload_id=upload_id)
    services.upload_staff_read_record(staff=account, upload=upload)
    return _file_response(upload)
