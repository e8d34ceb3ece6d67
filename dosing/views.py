"""The pharmacist's pages (mounted at /dosing/): worklist, a course, its fit, regimens, signing, the report.

Pharmacists only (``role_required``: everyone else gets 404, signed-out visitors the staff sign-in). Every
open of a course linked to a registered patient is an audited read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dosing import calculation, report, selectors, services
from dosing.forms import CourseForm, DoseFormSet, DoseLineForm, LevelForm, NextLevelForm, RegimenForm
from dosing.models import Course, CourseFit, DoseEntry, LevelEntry
from dosing.plot import PlotLabels, concentration_svg
from dosing.wording import model_status_words, regimen_words, status_words, warning_words
from medcard import roles
from medcard.models import User
from medcard.views import role_required

pharmacist_only = role_required(roles.PHARMACIST)


def _user(request: HttpRequest) -> User:
    """The signed-in pharmacist (``pharmacist_only`` has already required one)."""
    return cast(User, request.user)


def _batch_url() -> str:
    """The batch simulations' pages (another part of the dosing app; a plain path until they exist)."""
    try:
        return reverse("dosing:batch-list")
    except NoReverseMatch:
        return "/dosing/batch/"


def _apply_errors(form: Any, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@pharmacist_only
@never_cache
@require_GET
def worklist(request: HttpRequest) -> HttpResponse:
    rows = selectors.worklist(pharmacist=_user(request))
    return render(
        request, "dosing/worklist.html", {"rows": rows, "batch_url": _batch_url(), "now": timezone.now()}
    )


@pharmacist_only
@never_cache
@require_http_methods(["GET", "POST"])
def course_new(request: HttpRequest) -> HttpResponse:
    form = CourseForm(request.POST or None, initial={"creatinine_on": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            details = form.details()
            course = services.course_create(actor=_user(request), details=details, patient=form.patient)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            return redirect("dosing:course", course_id=course.pk)
    return render(request, "dosing/course_new.html", {"form": form}, status=400 if form.errors else 200)


def _labels() -> PlotLabels:
    return PlotLabels(
        individual=_("Individual prediction"),
        band=_("90% credible band"),
        population=_("Population (typical patient)"),
        levels=_("Measured levels"),
        target=_("Target"),
        now=_("now"),
        y_axis=_("Vancomycin (mg/L)"),
    )


def target_band(case: dict[str, Any]) -> tuple[float, float] | None:
    """The target on the concentration axis: the trough range when the target has one, else the average
    concentration that gives the AUC24 range (AUC24 / 24 h)."""
    target = calculation.target_from_case(case)
    if (
        target.kind == "auc24_trough"
        and target.trough_low_mg_per_l is not None
        and target.trough_high_mg_per_l
    ):
        return (target.trough_low_mg_per_l, target.trough_high_mg_per_l)
    return (target.auc24_low / 24.0, target.auc24_high / 24.0)


def plot_svg(
    *, case: dict[str, Any], result: dict[str, Any], curves: dict[str, Any] | None, origin: datetime
) -> str:
    if not curves:
        return ""
    doses_h = []
    for d in case.get("doses") or []:
        repeat = d.get("repeat") or {"count": 0, "interval_h": 0}
        doses_h += [d["time"] + k * repeat["interval_h"] for k in range(int(repeat["count"]) + 1)]
    now_h = (timezone.now() - origin).total_seconds() / 3600.0
    return concentration_svg(
        curves=curves,
        levels=[(lv["time"], lv["conc_mg_per_l"]) for lv in case.get("levels") or []],
        doses_h=doses_h,
        target_band=target_band(case),
        now_h=now_h,
        origin=origin,
        labels=_labels(),
    )


def fit_view(*, case: dict[str, Any], result: dict[str, Any], origin: datetime) -> dict[str, Any]:
    """The fit as the pages and the report show it: models with weights, parameters against typical ones,
    warnings and status in words, the recommended regimens with their times as clock times."""
    models = []
    for m in result.get("models") or []:
        params = [
            {
                "name": k,
                "value": v,
                "typical": m["typical_parameters"].get(k),
                "ratio": v / m["typical_parameters"][k] if m["typical_parameters"].get(k) else None,
            }
            for k, v in (m.get("parameters") or {}).items()
        ]
        models.append({**m, "status_words": model_status_words(m["status"]), "params": params})
    rec = result.get("recommendation") or {}
    options = []
    if rec.get("maintenance"):
        options.append({**rec["maintenance"], "recommended": True})
    options += [{**a, "recommended": False} for a in rec.get("alternatives") or [] if a]
    start = (
        origin + timedelta(hours=rec["next_dose_time_h"]) if rec.get("next_dose_time_h") is not None else None
    )
    for o in options:
        o["words"] = regimen_words(
            dose_mg=o["dose_mg"], interval_h=o["interval_h"], infusion_h=o["infusion_h"]
        )
        o["start"] = start
    return {
        "models": models,
        "warnings": [warning_words(w) for w in result.get("warnings") or []],
        "status_words": status_words(result.get("status", ""), result.get("message", "")),
        "ok": bool(result.get("success")),
        "recommendation": rec,
        "options": options,
        "next_dose_at": start,
        "loading_dose_mg": rec.get("loading_dose_mg"),
        "current": result.get("current_regimen_steady_state"),
    }


def _chosen_from(form: RegimenForm, origin: datetime) -> calculation.ChosenRegimen:
    data = form.cleaned_data
    return calculation.ChosenRegimen(
        dose_mg=float(data["dose_mg"]),
        interval_h=float(data["interval_h"]),
        infusion_h=float(data["infusion_h"]),
        start_h=(data["start"] - origin).total_seconds() / 3600.0,
        loading_dose_mg=float(data["loading_dose_mg"]) if data.get("loading_dose_mg") else None,
        loading_infusion_h=max(1.0, float(data["loading_dose_mg"]) / 1000.0)
        if data.get("loading_dose_mg")
        else None,
    )


def _regimen_initial(fit: CourseFit, origin: datetime) -> dict[str, Any]:
    chosen = fit.result.get("chosen")
    if not chosen:
        return {}
    return {
        "dose_mg": Decimal(str(chosen["dose_mg"])),
        "interval_h": Decimal(str(chosen["interval_h"])),
        "infusion_h": Decimal(str(chosen["infusion_h"])),
        "start": timezone.localtime(origin + timedelta(hours=chosen["start_h"])).replace(
            second=0, microsecond=0
        ),
        "loading_dose_mg": chosen.get("loading_dose_mg"),
    }


def _course_page(request: HttpRequest, course: Course, *, status: int = 200, **forms: Any) -> HttpResponse:
    fit = selectors.course_latest_fit(course=course)
    context: dict[str, Any] = {
        "course": course,
        "fit": fit,
        "doses": selectors.course_doses(course=course),
        "levels": selectors.course_levels(course=course),
        "dose_versions": selectors.course_dose_versions(course=course),
        "level_versions": selectors.course_level_versions(course=course),
        "signature": selectors.course_latest_signature(course=course),
        "screening_creatinine": selectors.course_screening_creatinine(course=course),
        "details_form": forms.get("details_form")
        or CourseForm(initial=_details_initial(course), editing=True),
        "dose_formset": forms.get("dose_formset") or DoseFormSet(prefix="doses"),
        "level_form": forms.get("level_form") or LevelForm(initial={"unit": "mg/L"}),
        "next_level_form": NextLevelForm(initial={"next_level_due_at": course.next_level_due_at}),
        "batch_url": _batch_url(),
    }
    if fit is not None:
        origin = datetime.fromisoformat(fit.result["origin"])
        result, curves, exposure, chosen = (
            fit.result,
            fit.result.get("curves"),
            fit.result.get("exposure"),
            fit.result.get("chosen"),
        )
        regimen_form = forms.get("regimen_form")
        preview = False
        if regimen_form is None and "dose_mg" in request.GET:
            regimen_form = RegimenForm(request.GET)
            if regimen_form.is_valid() and fit.course_revision == course.revision:
                calc, origin = services.course_calculate(
                    course=course, chosen=_chosen_from(regimen_form, origin), fit=fit
                )
                curves, exposure, chosen, preview = (
                    calc.curves,
                    calc.exposure,
                    calc.chosen.__dict__ if calc.chosen else None,
                    True,
                )
        context.update(
            origin=origin,
            view=fit_view(case=fit.case, result=result, origin=origin),
            plot=plot_svg(case=fit.case, result=result, curves=curves, origin=origin),
            exposure=exposure,
            chosen=chosen,
            chosen_words=regimen_words(
                dose_mg=chosen["dose_mg"], interval_h=chosen["interval_h"], infusion_h=chosen["infusion_h"]
            )
            if chosen
            else "",
            preview=preview,
            regimen_form=(regimen_form := regimen_form or RegimenForm(initial=_regimen_initial(fit, origin))),
            sign_fields=[
                (bf.html_name, bf.field.widget.format_value(bf.value()) or "") for bf in regimen_form
            ],
            by_level=fit.by_level,
            stale=fit.course_revision != course.revision,
        )
    return render(request, "dosing/course.html", context, status=status)


def _details_initial(course: Course) -> dict[str, Any]:
    names = (
        "initials",
        "ward",
        "bed",
        "indication",
        "sex",
        "age_years",
        "weight_kg",
        "height_cm",
        "creatinine_value",
        "creatinine_unit",
        "creatinine_on",
        "creatinine_source",
        "gestational_age_weeks",
        "postnatal_age_days",
        "postmenstrual_age_weeks",
        "birth_weight_kg",
        "model_choice",
        "target_kind",
    )
    return {name: getattr(course, name) for name in names}


def _course(request: HttpRequest, course_id: int) -> Course:
    return selectors.course_for_pharmacist(user=request.user, course_id=course_id)


@pharmacist_only
@never_cache
@require_GET
def course_detail(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    services.course_record_open(course=course, actor=_user(request))
    return _course_page(request, course)


@pharmacist_only
@require_POST
def course_details(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    return _save_details(
        request, course, CourseForm(request.POST, editing=True), _("Details saved and the course re-fitted.")
    )


def _save_details(request: HttpRequest, course: Course, form: CourseForm, done: str) -> HttpResponse:
    """Save the patient's details from ``form`` (the service re-fits), or show the page with the errors."""
    if form.is_valid():
        try:
            services.course_update_details(course=course, actor=_user(request), details=form.details())
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, done)
            return redirect("dosing:course", course_id=course.pk)
    course.refresh_from_db()
    return _course_page(request, course, status=400, details_form=form)


@pharmacist_only
@require_POST
def course_doses(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    formset = DoseFormSet(request.POST, prefix="doses")
    if formset.is_valid():
        lines = formset.lines()  # type: ignore[attr-defined]
        if not lines:
            formset.forms[0].add_error("given_at", _("Enter at least one dose."))
        else:
            try:
                services.doses_add(course=course, actor=_user(request), lines=lines)
            except ValidationError as exc:
                _apply_errors(formset.forms[0], exc)
            else:
                messages.success(request, _("Doses added and the course re-fitted."))
                return redirect("dosing:course", course_id=course.pk)
    return _course_page(request, course, status=400, dose_formset=formset)


@pharmacist_only
@require_POST
def course_level(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    form = LevelForm(request.POST)
    if form.is_valid():
        try:
            services.level_add(
                course=course,
                actor=_user(request),
                drawn_at=form.cleaned_data["drawn_at"],
                conc_mg_per_l=form.conc_mg_per_l,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("Level added and the course re-fitted."))
            return redirect("dosing:course", course_id=course.pk)
    return _course_page(request, course, status=400, level_form=form)


@pharmacist_only
@require_http_methods(["GET", "POST"])
def dose_edit(request: HttpRequest, course_id: int, entry_id: int) -> HttpResponse:
    course = _course(request, course_id)
    entry = DoseEntry.objects.filter(
        pk=entry_id, course=course, removed=False, superseded_by__isnull=True
    ).first()
    if entry is None:
        raise Http404
    initial = {
        "given_at": timezone.localtime(entry.given_at),
        "amount_mg": entry.amount_mg,
        "infusion_h": entry.infusion_h,
        "doses_count": entry.repeat_count + 1,
        "interval_h": entry.repeat_interval_h,
    }
    form = DoseLineForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if "remove" in request.POST:
            services.dose_correct(course=course, actor=_user(request), entry=entry, line=None)
            messages.success(
                request, _("Dose removed (the earlier version is kept) and the course re-fitted.")
            )
            return redirect("dosing:course", course_id=course.pk)
        if form.is_valid():
            try:
                services.dose_correct(course=course, actor=_user(request), entry=entry, line=form.line())
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(
                    request, _("Dose corrected (the earlier version is kept) and the course re-fitted.")
                )
                return redirect("dosing:course", course_id=course.pk)
    return render(
        request,
        "dosing/entry_edit.html",
        {"course": course, "form": form, "kind": "dose"},
        status=400 if form.errors else 200,
    )


@pharmacist_only
@require_http_methods(["GET", "POST"])
def level_edit(request: HttpRequest, course_id: int, entry_id: int) -> HttpResponse:
    course = _course(request, course_id)
    entry = LevelEntry.objects.filter(
        pk=entry_id, course=course, removed=False, superseded_by__isnull=True
    ).first()
    if entry is None:
        raise Http404
    form = LevelForm(
        request.POST or None,
        initial={"drawn_at": timezone.localtime(entry.drawn_at), "conc": entry.conc_mg_per_l, "unit": "mg/L"},
    )
    if request.method == "POST":
        if "remove" in request.POST:
            services.level_correct(course=course, actor=_user(request), entry=entry)
            messages.success(
                request, _("Level removed (the earlier version is kept) and the course re-fitted.")
            )
            return redirect("dosing:course", course_id=course.pk)
        if form.is_valid():
            try:
                services.level_correct(
                    course=course,
                    actor=_user(request),
                    entry=entry,
                    drawn_at=form.cleaned_data["drawn_at"],
                    conc_mg_per_l=form.conc_mg_per_l,
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(
                    request, _("Level corrected (the earlier version is kept) and the course re-fitted.")
                )
                return redirect("dosing:course", course_id=course.pk)
    return render(
        request,
        "dosing/entry_edit.html",
        {"course": course, "form": form, "kind": "level"},
        status=400 if form.errors else 200,
    )


@pharmacist_only
@require_POST
def course_use_screening_creatinine(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    reading = selectors.course_screening_creatinine(course=course)
    if reading is None or reading.collected_on is None:
        raise Http404
    value = reading.value_canonical if reading.value_canonical is not None else reading.value
    initial = _details_initial(course)
    initial.update(
        creatinine_value=Decimal(str(round(value, 2))),
        creatinine_unit="umol/L",
        creatinine_on=reading.collected_on,
        creatinine_source=f"screening upload {reading.upload_id} (booking {reading.booking_id})",
    )
    form = CourseForm({k: "" if v is None else v for k, v in initial.items()}, editing=True)
    return _save_details(
        request, course, form, _("The creatinine read from the uploaded report is now used.")
    )


@pharmacist_only
@require_POST
def course_refit(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    try:
        services.course_fit(course=course, actor=_user(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("dosing:course", course_id=course.pk)


@pharmacist_only
@require_POST
def course_next_level(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    form = NextLevelForm(request.POST)
    if form.is_valid():
        Course.objects.filter(pk=course.pk).update(next_level_due_at=form.cleaned_data["next_level_due_at"])
        messages.success(request, _("Next level time saved."))
    else:
        messages.error(request, _("Enter a date and time for the next level."))
    return redirect("dosing:course", course_id=course.pk)


@pharmacist_only
@require_POST
def course_sign(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    fit = CourseFit.objects.filter(course=course, pk=request.POST.get("fit") or 0).first()
    form = RegimenForm(request.POST)
    if fit is None:
        raise Http404
    if form.is_valid():
        origin = datetime.fromisoformat(fit.result["origin"])
        try:
            services.regimen_sign(
                course=course,
                actor=_user(request),
                fit=fit,
                chosen=_chosen_from(form, origin),
                note=request.POST.get("note", ""),
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("Regimen signed. The report is ready."))
            return redirect("dosing:course", course_id=course.pk)
    return _course_page(request, course, status=400, regimen_form=form)


@pharmacist_only
@require_POST
def course_close(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    services.course_close(course=course, actor=_user(request))
    messages.success(request, _("Course closed."))
    return redirect("dosing:worklist")


@pharmacist_only
@require_GET
def course_report(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course(request, course_id)
    services.course_record_open(course=course, actor=_user(request))
    language = request.GET.get("lang") or request.LANGUAGE_CODE
    pdf = report.course_report_pdf(
        course=course, language=language, viewer=request.user if isinstance(request.user, User) else None
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="vancomycin-course-{course.pk}.pdf"'
    return response
