"""Reads of the dosing app: the access functions (404 to anyone else), the worklist, the engine's case.

Courses are for pharmacists: a session user reaches a course only with the pharmacist role (or as a
superuser) and only the hospital's own courses; an institution's API key reaches only that institution's
courses. Anyone else gets 404, exactly like a course that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from dosing.models import ApiKey, Course, CourseFit, DoseEntry, LevelEntry, SignedRegimen
from medcard import roles
from medcard.models import User
from medcard.selectors import user_has_role
from screening.selectors import AnalyteReading, latest_analyte_for_patient

TROUGH_ALERT_MG_PER_L = 20.0
AUC24_ALERT_MG_H_PER_L = 600.0


def is_pharmacist(*, user: Any) -> bool:
    return bool(
        user is not None and user.is_authenticated and user_has_role(user=user, role=roles.PHARMACIST)
    )


def course_for_pharmacist(*, user: Any, course_id: int) -> Course:
    """A course of the hospital's own for a pharmacist; Http404 for anyone else or any other course."""
    if not is_pharmacist(user=user):
        raise Http404("No such course.")
    course = (
        Course.objects.select_related("patient", "pharmacist")
        .filter(pk=course_id, institution__isnull=True)
        .first()
    )
    if course is None:
        raise Http404("No such course.")
    return course


def course_for_api_key(*, api_key: ApiKey, course_id: int) -> Course:
    """A course of the key's institution; Http404 for every other course, existing or not."""
    course = Course.objects.filter(pk=course_id, institution_id=api_key.institution_id).first()
    if course is None:
        raise Http404("No such course.")
    return course


def course_doses(*, course: Course) -> list[DoseEntry]:
    """The current dose lines (latest version of each, removals left out), in time order."""
    return list(
        DoseEntry.objects.filter(course=course, removed=False, superseded_by__isnull=True).order_by(
            "given_at", "id"
        )
    )


def course_levels(*, course: Course) -> list[LevelEntry]:
    """The current levels (latest version of each, removals left out), in time order."""
    return list(
        LevelEntry.objects.filter(course=course, removed=False, superseded_by__isnull=True).order_by(
            "drawn_at", "id"
        )
    )


def course_dose_versions(*, course: Course) -> QuerySet[DoseEntry]:
    """Every version of every dose line ever entered, for the history."""
    return DoseEntry.objects.filter(course=course).select_related("entered_by").order_by("created_at", "id")


def course_level_versions(*, course: Course) -> QuerySet[LevelEntry]:
    return LevelEntry.objects.filter(course=course).select_related("entered_by").order_by("created_at", "id")


def course_latest_fit(*, course: Course) -> CourseFit | None:
    return CourseFit.objects.filter(course=course).order_by("-created_at", "-id").first()


def course_fits(*, course: Course) -> QuerySet[CourseFit]:
    return CourseFit.objects.filter(course=course).order_by("created_at", "id")


def course_latest_signature(*, course: Course) -> SignedRegimen | None:
    return (
        SignedRegimen.objects.filter(course=course)
        .select_related("pharmacist")
        .order_by("-signed_at", "-id")
        .first()
    )


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def course_case(*, course: Course) -> tuple[dict[str, Any], datetime]:
    """The engine's case for the course as it stands, with hours from its origin (the first dose, or the
    course's start), and that origin."""
    doses = course_doses(course=course)
    levels = course_levels(course=course)
    origin = min([d.given_at for d in doses] + [course.created_at])

    def hours(when: datetime) -> float:
        return round((when - origin).total_seconds() / 3600.0, 4)

    patient: dict[str, Any] = {
        "age_years": float(course.age_years),
        "sex": course.sex,
        "weight_kg": float(course.weight_kg),
        "creatinine": {"value": float(course.creatinine_value), "unit": course.creatinine_unit},
    }
    optional = {
        "height_cm": _num(course.height_cm),
        "gestational_age_weeks": _num(course.gestational_age_weeks),
        "postnatal_age_days": course.postnatal_age_days,
        "postmenstrual_age_weeks": _num(course.postmenstrual_age_weeks),
        "birth_weight_kg": _num(course.birth_weight_kg),
    }
    patient |= {k: float(v) for k, v in optional.items() if v is not None}
    dose_rows = []
    for d in doses:
        row: dict[str, Any] = {
            "time": hours(d.given_at),
            "amount_mg": float(d.amount_mg),
            "duration_h": float(d.infusion_h),
        }
        if d.repeat_count:
            row["repeat"] = {"count": d.repeat_count, "interval_h": float(d.repeat_interval_h or 0)}
        dose_rows.append(row)
    target: dict[str, Any]
    if course.target_kind == Course.TargetKind.CHINESE_GUIDELINE:
        target = {"kind": "chinese_guideline"}
    else:
        target = {
            "kind": course.target_kind,
            "auc24_low": float(course.auc24_low),
            "auc24_high": float(course.auc24_high),
        }
        if course.target_kind == Course.TargetKind.AUC24_TROUGH:
            target |= {
                "trough_low_mg_per_l": _num(course.trough_low_mg_per_l),
                "trough_high_mg_per_l": _num(course.trough_high_mg_per_l),
            }
    case = {
        "model": course.model_choice or "auto",
        "patient": patient,
        "doses": dose_rows,
        "levels": [{"time": hours(lv.drawn_at), "conc_mg_per_l": float(lv.conc_mg_per_l)} for lv in levels],
        "target": target,
    }
    return case, origin


@dataclass(frozen=True)
class WorklistRow:
    """One line of a pharmacist's worklist."""

    course: Course
    next_dose_at: datetime | None
    next_level_due_at: datetime | None
    trough_mg_per_l: float | None
    auc24_mg_h_per_l: float | None
    level_overdue: bool
    signed: bool

    @property
    def trough_high(self) -> bool:
        return self.trough_mg_per_l is not None and self.trough_mg_per_l > TROUGH_ALERT_MG_PER_L

    @property
    def auc_high(self) -> bool:
        return self.auc24_mg_h_per_l is not None and self.auc24_mg_h_per_l > AUC24_ALERT_MG_H_PER_L


def _next_occurrence(first: datetime, interval_h: float, now: datetime) -> datetime:
    if first >= now or interval_h <= 0:
        return first
    steps = int((now - first).total_seconds() // (interval_h * 3600)) + 1
    return first + timedelta(hours=interval_h * steps)


def worklist(*, pharmacist: User, now: datetime | None = None) -> list[WorklistRow]:
    """The pharmacist's active courses, the most urgent first: flags for a forecast trough above 20 mg/L,
    an AUC24 above 600 mg·h/L, or an overdue level; the next dose (of the signed regimen, or as
    recommended) and the next level due."""
    now = now or timezone.now()
    courses = Course.objects.filter(
        pharmacist=pharmacist, status=Course.Status.ACTIVE, institution__isnull=True
    )
    rows = []
    for course in courses.select_related("patient"):
        fit = course_latest_fit(course=course)
        signed = course_latest_signature(course=course)
        trough = auc = None
        next_dose = None
        if signed is not None and (fit is None or signed.fit_id == fit.pk):
            trough, auc = signed.trough_mg_per_l, signed.auc24_mg_h_per_l
            next_dose = _next_occurrence(signed.next_dose_at, float(signed.interval_h), now)
        elif fit is not None:
            trough, auc = fit.forecast_trough_mg_per_l, fit.forecast_auc24_mg_h_per_l
            next_dose = fit.next_dose_at
        overdue = False
        if course.next_level_due_at is not None and course.next_level_due_at < now:
            overdue = not LevelEntry.objects.filter(
                course=course, drawn_at__gte=course.next_level_due_at - timedelta(hours=2), removed=False
            ).exists()
        rows.append(
            WorklistRow(course, next_dose, course.next_level_due_at, trough, auc, overdue, signed is not None)
        )
    rows.sort(
        key=lambda r: (
            not (r.level_overdue or r.trough_high or r.auc_high),
            r.next_dose_at or now + timedelta(days=365),
        )
    )
    return rows


def course_screening_creatinine(*, course: Course) -> AnalyteReading | None:
    """The linked patient's latest creatinine read from an uploaded report, if any."""
    if course.patient_id is None:
        return None
    return latest_analyte_for_patient(patient_id=course.patient_id, code="creatinine")
