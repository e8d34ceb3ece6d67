"""Writes of the dosing app: courses, doses, levels, fits, signatures, API keys.

Every change goes through one function here that writes its ``CourseEvent`` in the same transaction; a
course linked to a registered patient also gets a medcard audit row. Input the engine would refuse is
refused here first (``ValidationError`` with the field it concerns), inside the transaction, so nothing
of a refused change is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from dosing import calculation
from dosing.engine import CaseError
from dosing.engine.estimation import FitMemo
from dosing.models import (
    ApiKey,
    Course,
    CourseEvent,
    CourseFit,
    DoseEntry,
    Institution,
    LevelEntry,
    SignedRegimen,
)
from dosing.selectors import course_case, course_doses, course_levels
from medcard.models import Patient, User
from medcard.services import audit_record

# Monitoring advice: the next level is due before the 4th dose of a new regimen (steady state for most).
LEVEL_DUE_AFTER_DOSES = 3


@dataclass(frozen=True)
class CourseDetails:
    """What a pharmacist enters about the patient (units fixed by the field names)."""

    sex: str
    age_years: Decimal
    weight_kg: Decimal
    creatinine_value: Decimal
    creatinine_unit: str
    creatinine_on: date
    height_cm: Decimal | None = None
    gestational_age_weeks: Decimal | None = None
    postnatal_age_days: int | None = None
    postmenstrual_age_weeks: Decimal | None = None
    birth_weight_kg: Decimal | None = None
    model_choice: str = "auto"
    target_kind: str = Course.TargetKind.AUC24
    creatinine_source: str = ""
    initials: str = ""
    ward: str = ""
    bed: str = ""
    indication: str = ""


DETAIL_FIELDS = tuple(CourseDetails.__dataclass_fields__)


def _record(
    course: Course, action: str, *, actor: User | None, api_key: ApiKey | None, **detail: Any
) -> None:
    CourseEvent.objects.create(course=course, action=action, actor=actor, api_key=api_key, detail=detail)
    if course.patient_id is not None and actor is not None:
        audit_record(
            actor=actor,
            patient=course.patient,
            action="dosing_course_changed",
            detail=f"course {course.pk}: {action}",
        )


def _check_engine(course: Course) -> None:
    """Refuse what the engine would refuse (impossible values, a level before any dose ...), in words."""
    case, _origin = course_case(course=course)
    try:
        calculation.check_case(case)
    except CaseError as exc:
        raise ValidationError(
            _("The dose engine cannot use these values: %(reason)s") % {"reason": exc}
        ) from None


def _apply_target(course: Course, kind: str) -> None:
    course.target_kind = kind
    if kind == Course.TargetKind.AUC24_TROUGH:
        course.auc24_low, course.auc24_high = Decimal(400), Decimal(600)
        course.trough_low_mg_per_l, course.trough_high_mg_per_l = Decimal(10), Decimal(20)
    elif kind == Course.TargetKind.AUC24:
        course.auc24_low, course.auc24_high = Decimal(400), Decimal(600)
        course.trough_low_mg_per_l = course.trough_high_mg_per_l = None


@transaction.atomic
def course_create(
    *,
    actor: User | None,
    details: CourseDetails,
    patient: Patient | None = None,
    institution: Institution | None = None,
    api_key: ApiKey | None = None,
) -> Course:
    """Start a course for a registered patient or an anonymous one (initials required then)."""
    if patient is None and not details.initials.strip():
        raise ValidationError({"initials": _("Enter the patient's initials, or link a registered patient.")})
    values = {name: getattr(details, name) for name in DETAIL_FIELDS if name != "target_kind"}
    course = Course(patient=patient, institution=institution, pharmacist=actor, created_by=actor, **values)
    _apply_target(course, details.target_kind)
    course.full_clean(exclude=["pharmacist", "created_by", "institution", "patient"])
    course.save()
    _check_engine(course)
    _record(course, CourseEvent.Action.CREATED, actor=actor, api_key=api_key)
    return course


def _bump(course: Course) -> None:
    # Two pharmacists editing the same course: the revision counter, not a read-modify-write, orders them.
    Course.objects.filter(pk=course.pk).update(revision=F("revision") + 1, updated_at=timezone.now())
    course.refresh_from_db(fields=["revision", "updated_at"])


@transaction.atomic
def course_update_details(
    *, course: Course, actor: User | None, details: CourseDetails, api_key: ApiKey | None = None
) -> Course:
    """Change the patient's details (weight, creatinine ...), then re-fit; the previous values are kept in
    the event."""
    before = {name: str(getattr(course, name)) for name in DETAIL_FIELDS}
    for name in DETAIL_FIELDS:
        if name != "target_kind":
            setattr(course, name, getattr(details, name))
    _apply_target(course, details.target_kind)
    if course.patient_id is None and not course.initials.strip():
        raise ValidationError({"initials": _("Enter the patient's initials, or link a registered patient.")})
    course.full_clean(exclude=["pharmacist", "created_by", "institution", "patient"])
    course.save()
    _bump(course)
    _check_engine(course)
    after = {name: str(getattr(course, name)) for name in DETAIL_FIELDS}
    changed = {k: [before[k], after[k]] for k in DETAIL_FIELDS if before[k] != after[k]}
    _record(course, CourseEvent.Action.DETAILS_CHANGED, actor=actor, api_key=api_key, changed=changed)
    course_fit(course=course, actor=actor, api_key=api_key)
    return course


@dataclass(frozen=True)
class DoseLine:
    """One line of the dose table: a dose, optionally repeated ``repeat_count`` more times."""

    given_at: datetime
    amount_mg: Decimal
    infusion_h: Decimal
    repeat_count: int = 0
    repeat_interval_h: Decimal | None = None

    @property
    def last_at(self) -> datetime:
        if self.repeat_count and self.repeat_interval_h:
            return self.given_at + timedelta(hours=float(self.repeat_interval_h) * self.repeat_count)
        return self.given_at


def _check_dose_line(line: DoseLine, now: datetime) -> None:
    errors: dict[str, str] = {}
    if line.amount_mg <= 0:
        errors["amount_mg"] = _("A dose must be more than 0 mg.")
    elif line.amount_mg > 10000:
        errors["amount_mg"] = _("More than 10 g in one dose is impossible; check the unit (mg).")
    if line.infusion_h < 0 or line.infusion_h > 48:
        errors["infusion_h"] = _("The infusion time must be between 0 and 48 hours.")
    if line.repeat_count < 0 or line.repeat_count > 200:
        errors["repeat_count"] = _("Repeat a dose at most 200 times.")
    elif line.repeat_count and not (line.repeat_interval_h and line.repeat_interval_h > 0):
        errors["repeat_interval_h"] = _("Give the interval between the repeated doses.")
    elif line.repeat_count and line.repeat_interval_h and line.infusion_h > line.repeat_interval_h:
        errors["repeat_interval_h"] = _("The infusion is longer than the interval.")
    if line.given_at > now:
        errors["given_at"] = _("This time is in the future; enter doses that were given.")
    elif line.last_at > now:
        errors["repeat_count"] = _("The last repeated dose would be in the future.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def doses_add(
    *, course: Course, actor: User | None, lines: list[DoseLine], api_key: ApiKey | None = None
) -> list[DoseEntry]:
    """Add dose lines (in time order). Refused as a whole if any line is wrong; then re-fit."""
    now = timezone.now()
    for i, line in enumerate(lines):
        _check_dose_line(line, now)
        if i and line.given_at < lines[i - 1].given_at:
            raise ValidationError(
                {"given_at": _("Times are out of order: this dose is earlier than the one above.")}
            )
    entries = [
        DoseEntry.objects.create(course=course, entered_by=actor, api_key=api_key, **line.__dict__)
        for line in lines
    ]
    _bump(course)
    _check_engine(course)
    _record(
        course, CourseEvent.Action.DOSE_ADDED, actor=actor, api_key=api_key, entries=[e.pk for e in entries]
    )
    course_fit(course=course, actor=actor, api_key=api_key)
    return entries


def _check_level(course: Course, drawn_at: datetime, conc: Decimal, now: datetime) -> None:
    if conc <= 0:
        raise ValidationError({"conc_mg_per_l": _("A level must be more than 0 mg/L.")})
    if conc > 150:
        raise ValidationError(
            {"conc_mg_per_l": _("Above 150 mg/L is implausible for vancomycin; check the unit (mg/L).")}
        )
    if drawn_at > now:
        raise ValidationError({"drawn_at": _("This time is in the future; enter levels that were measured.")})
    first = min((d.given_at for d in course_doses(course=course)), default=None)
    if first is None or drawn_at <= first:
        raise ValidationError(
            {"drawn_at": _("This level is before the first recorded dose; enter the doses first.")}
        )


@transaction.atomic
def level_add(
    *,
    course: Course,
    actor: User | None,
    drawn_at: datetime,
    conc_mg_per_l: Decimal,
    api_key: ApiKey | None = None,
) -> LevelEntry:
    """Add a measured level, then re-fit: the course shows how this level moved the estimate."""
    _check_level(course, drawn_at, conc_mg_per_l, timezone.now())
    entry = LevelEntry.objects.create(
        course=course, drawn_at=drawn_at, conc_mg_per_l=conc_mg_per_l, entered_by=actor, api_key=api_key
    )
    _bump(course)
    _check_engine(course)
    _record(course, CourseEvent.Action.LEVEL_ADDED, actor=actor, api_key=api_key, entry=entry.pk)
    course_fit(course=course, actor=actor, api_key=api_key)
    return entry


@transaction.atomic
def dose_correct(
    *,
    course: Course,
    actor: User | None,
    entry: DoseEntry,
    line: DoseLine | None,
    api_key: ApiKey | None = None,
) -> DoseEntry:
    """Replace a dose line by a corrected one (or remove it with ``line=None``); the old version stays."""
    # A concurrent correction of the same line would leave two successors: the one-to-one 'supersedes'
    # refuses the second, and locking the row makes that an ordered wait instead of an integrity error.
    DoseEntry.objects.select_for_update().get(pk=entry.pk)
    if DoseEntry.objects.filter(supersedes=entry).exists() or entry.removed:
        raise ValidationError(_("This line was already changed; reload the course."))
    if line is None:
        new = DoseEntry.objects.create(
            course=course,
            supersedes=entry,
            removed=True,
            entered_by=actor,
            api_key=api_key,
            given_at=entry.given_at,
            amount_mg=entry.amount_mg,
            infusion_h=entry.infusion_h,
        )
        action = CourseEvent.Action.DOSE_REMOVED
    else:
        _check_dose_line(line, timezone.now())
        new = DoseEntry.objects.create(
            course=course, supersedes=entry, entered_by=actor, api_key=api_key, **line.__dict__
        )
        action = CourseEvent.Action.DOSE_CHANGED
    _bump(course)
    _check_engine(course)
    _record(course, action, actor=actor, api_key=api_key, entry=new.pk, supersedes=entry.pk)
    course_fit(course=course, actor=actor, api_key=api_key)
    return new


@transaction.atomic
def level_correct(
    *,
    course: Course,
    actor: User | None,
    entry: LevelEntry,
    drawn_at: datetime | None = None,
    conc_mg_per_l: Decimal | None = None,
    api_key: ApiKey | None = None,
) -> LevelEntry:
    """Replace a level by a corrected one (or remove it when no value is given); the old version stays."""
    LevelEntry.objects.select_for_update().get(pk=entry.pk)  # see dose_correct
    if LevelEntry.objects.filter(supersedes=entry).exists() or entry.removed:
        raise ValidationError(_("This line was already changed; reload the course."))
    if drawn_at is None or conc_mg_per_l is None:
        new = LevelEntry.objects.create(
            course=course,
            supersedes=entry,
            removed=True,
            entered_by=actor,
            api_key=api_key,
            drawn_at=entry.drawn_at,
            conc_mg_per_l=entry.conc_mg_per_l,
        )
        action = CourseEvent.Action.LEVEL_REMOVED
    else:
        _check_level(course, drawn_at, conc_mg_per_l, timezone.now())
        new = LevelEntry.objects.create(
            course=course,
            supersedes=entry,
            drawn_at=drawn_at,
            conc_mg_per_l=conc_mg_per_l,
            entered_by=actor,
            api_key=api_key,
        )
        action = CourseEvent.Action.LEVEL_CHANGED
    _bump(course)
    _check_engine(course)
    _record(course, action, actor=actor, api_key=api_key, entry=new.pk, supersedes=entry.pk)
    course_fit(course=course, actor=actor, api_key=api_key)
    return new


def _hours(origin: datetime, when: datetime) -> float:
    return (when - origin).total_seconds() / 3600.0


def _at(origin: datetime, hours: float | None) -> datetime | None:
    return None if hours is None else origin + timedelta(hours=hours)


def course_calculate(
    *,
    course: Course,
    chosen: calculation.ChosenRegimen | None = None,
    now: datetime | None = None,
    fit: CourseFit | None = None,
    memo: FitMemo | None = None,
) -> tuple[calculation.Calculation, datetime]:
    """Run the engine on the course as it stands (nothing stored): the page's preview of a chosen regimen.
    A ``fit`` of the course's current revision saves re-running the recommendation search."""
    case, origin = course_case(course=course)
    fitted = fit.result if fit is not None and fit.course_revision == course.revision else None
    now = now or timezone.now()
    events = [d.last_at for d in course_doses(course=course)] + [
        lv.drawn_at for lv in course_levels(course=course)
    ]
    now_h = _hours(origin, max([now, *events]))
    calc = calculation.calculate(
        case, now_h=now_h, chosen=chosen, samples=settings.DOSING_SAMPLES, fitted=fitted, memo=memo
    )
    return calc, origin


@transaction.atomic
def course_fit(*, course: Course, actor: User | None, api_key: ApiKey | None = None) -> CourseFit:
    """Fit the course as it stands, recommend, and store it all with the versions behind it."""
    clock = time.monotonic()
    memo = FitMemo()  # the per-level history re-uses the fits of the calculation
    calc, origin = course_calculate(course=course, memo=memo)
    case, _ = course_case(course=course)  # the same case the calculation ran (same rows, same transaction)
    result = calc.result
    rec = result.get("recommendation") or {}
    current = result.get("current_regimen_steady_state") or {}
    model_ids = [m["id"] for m in result["models"]]
    chosen = calc.chosen
    fit = CourseFit.objects.create(
        course=course,
        course_revision=course.revision,
        levels_count=len(case.get("levels") or []),
        case=case,
        result={
            **{k: v for k, v in result.items() if k != "forecast"},
            "origin": origin.isoformat(),
            "chosen": chosen.__dict__ if chosen else None,
            "exposure": calc.exposure,
            "curves": calc.curves,
        },
        by_level=calculation.by_level(case, result, memo=memo) if result["models"] else [],
        status=result["status"],
        engine_version=calculation.engine_version(),
        model_versions={i: calculation.model_version(i) for i in model_ids},
        forecast_trough_mg_per_l=current.get("trough_mg_per_l"),
        forecast_auc24_mg_h_per_l=current.get("auc24_mg_h_per_l"),
        next_dose_at=_at(origin, rec.get("next_dose_time_h")),
        duration_ms=int((time.monotonic() - clock) * 1000),
    )
    CourseEvent.objects.create(
        course=course,
        action=CourseEvent.Action.FITTED,
        actor=actor,
        api_key=api_key,
        detail={"fit": fit.pk, "status": fit.status, "levels": fit.levels_count},
    )
    return fit


@transaction.atomic
def regimen_sign(
    *, course: Course, actor: User, fit: CourseFit, chosen: calculation.ChosenRegimen, note: str = ""
) -> SignedRegimen:
    """Sign a regimen: recompute its exposure on the fit's inputs and store it with the pharmacist, the
    time and the engine and model versions. Refused when the course changed since the fit."""
    # A level entered while the pharmacist looked at the page would make the signature rest on an old fit.
    locked = Course.objects.select_for_update().get(pk=course.pk)
    if locked.revision != fit.course_revision:
        raise ValidationError(
            _("The course changed since this recommendation; review the new fit before signing.")
        )
    if chosen.dose_mg <= 0 or chosen.interval_h <= 0 or chosen.infusion_h <= 0:
        raise ValidationError(_("Dose, interval and infusion time must be more than 0."))
    if chosen.dose_mg > 4000 or chosen.interval_h > 96 or chosen.infusion_h > chosen.interval_h:
        raise ValidationError(
            _("This regimen is impossible: check the dose, the interval and the infusion time.")
        )
    calc, origin = course_calculate(course=course, chosen=chosen, fit=fit)
    if calc.exposure is None:
        raise ValidationError(_("No model could be fitted, so no regimen can be signed."))
    exposure = calc.exposure
    next_dose_at = origin + timedelta(hours=chosen.start_h)
    signed = SignedRegimen.objects.create(
        course=course,
        fit=fit,
        dose_mg=Decimal(str(chosen.dose_mg)),
        interval_h=Decimal(str(chosen.interval_h)),
        infusion_h=Decimal(str(chosen.infusion_h)),
        loading_dose_mg=Decimal(str(chosen.loading_dose_mg)) if chosen.loading_dose_mg else None,
        next_dose_at=next_dose_at,
        auc24_mg_h_per_l=float(exposure["auc24_mg_h_per_l"] or 0.0),
        trough_mg_per_l=float(exposure["trough_mg_per_l"] or 0.0),
        peak_mg_per_l=float(exposure["peak_mg_per_l"] or 0.0),
        pta=exposure["pta"],
        target=fit.case.get("target") or {},
        note=note[:300],
        pharmacist=actor,
        engine_version=calculation.engine_version(),
        model_versions=fit.model_versions,
    )
    due = next_dose_at + timedelta(hours=chosen.interval_h * LEVEL_DUE_AFTER_DOSES) - timedelta(minutes=30)
    Course.objects.filter(pk=course.pk).update(next_level_due_at=due, updated_at=timezone.now())
    course.refresh_from_db(fields=["next_level_due_at", "updated_at"])
    _record(course, CourseEvent.Action.SIGNED, actor=actor, api_key=None, signed=signed.pk)
    return signed


@transaction.atomic
def course_close(*, course: Course, actor: User) -> None:
    Course.objects.filter(pk=course.pk).update(status=Course.Status.CLOSED, updated_at=timezone.now())
    _record(course, CourseEvent.Action.CLOSED, actor=actor, api_key=None)


def course_record_open(*, course: Course, actor: User) -> None:
    """A staff member opened a course of a registered patient: an audited read of personal data."""
    if course.patient_id is not None:
        audit_record(
            actor=actor, patient=course.patient, action="dosing_course_viewed", detail=f"course {course.pk}"
        )


# --- API keys -----------------------------------------------------------------------------------------------

KEY_PREFIX = "vk_"


def api_key_hash(clear: str) -> str:
    return hashlib.sha256(clear.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, institution: Institution, name: str) -> tuple[ApiKey, str]:
    """A new key for ``institution``: returns the row and the clear key, which is never stored."""
    prefix = secrets.token_hex(4)
    clear = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        institution=institution, name=name, prefix=prefix, key_sha256=api_key_hash(clear)
    )
    return key, clear


def api_key_revoke(*, prefix: str) -> bool:
    """Revoke a key by its prefix; True when an active key was revoked."""
    return bool(
        ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).update(revoked_at=timezone.now())
    )
