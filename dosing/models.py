"""Dosing courses: one patient's vancomycin treatment with its doses, levels, fits and signed regimens.

Doses and levels are append-only: an edit writes a new row that ``supersedes`` the old one (a removal is a
row with ``removed`` set), so every version a pharmacist entered stays readable. Fits and signed regimens are
append-only records of what the engine said and what the pharmacist decided, with the engine and model
versions behind them. Other institutions reach the API with hashed, revocable keys; every call is recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dosing.batch.models import BatchChunk, BatchJob  # noqa: F401 (the batch simulations' models)


class AppendOnly:
    """Rows that are written once: saving an existing row or deleting one raises."""

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:  # type: ignore[attr-defined]
            raise PermissionError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)  # type: ignore[misc]

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError(f"{type(self).__name__} rows are append-only.")


class Institution(models.Model):
    """An institution that uses the dosing service through the API (the hospital's own courses have none)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")
        ordering = ("code",)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ApiKey(models.Model):
    """A per-institution API key: only its SHA-256 is stored; the clear key is shown once at creation."""

    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="api_keys", verbose_name=_("institution")
    )
    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(
        _("prefix"), max_length=12, unique=True
    )  # the key's public start, to find the row
    key_sha256 = models.CharField(_("key checksum"), max_length=64)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.institution.code})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiCall(AppendOnly, models.Model):
    """One API call made with an institution's key (append-only): who, what, which course, the answer."""

    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, related_name="calls", verbose_name=_("API key")
    )
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="api_calls", verbose_name=_("institution")
    )
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=300)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"))
    course_id_requested = models.PositiveIntegerField(_("course asked for"), null=True, blank=True)
    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("API call")
        verbose_name_plural = _("API calls")
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status_code}"


CREATININE_UNITS = ("umol/L", "mg/dL")
TARGET_KINDS = ("auc24", "auc24_trough", "chinese_guideline")


class Course(models.Model):
    """One patient's vancomycin treatment, the unit a pharmacist works on.

    Linked to a registered patient (every open by staff is audited) or anonymous (initials, ward, bed).
    ``revision`` grows with every change of its inputs, so a fit or a signature knows what it was based on.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")

    class Sex(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")

    class CreatinineUnit(models.TextChoices):
        UMOL_L = "umol/L", "µmol/L"
        MG_DL = "mg/dL", "mg/dL"

    class TargetKind(models.TextChoices):
        AUC24 = "auc24", _("AUC24 400–600 mg·h/L")
        AUC24_TROUGH = "auc24_trough", _("AUC24 and trough")
        CHINESE_GUIDELINE = "chinese_guideline", _("Chinese guideline (AUC24 400–650, trough 10–15 mg/L)")

    institution = models.ForeignKey(
        Institution,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="courses",
        verbose_name=_("institution"),
    )
    pharmacist = models.ForeignKey(  # responsible pharmacist: whose worklist it is on
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("pharmacist"),
    )
    patient = models.ForeignKey(
        "medcard.Patient",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dosing_courses",
        verbose_name=_("patient"),
    )
    initials = models.CharField(_("initials"), max_length=10, blank=True, default="")
    ward = models.CharField(_("ward"), max_length=40, blank=True, default="")
    bed = models.CharField(_("bed"), max_length=10, blank=True, default="")
    indication = models.CharField(_("indication"), max_length=120, blank=True, default="")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE)

    sex = models.CharField(_("sex"), max_length=6, choices=Sex.choices)
    age_years = models.DecimalField(_("age (years)"), max_digits=5, decimal_places=2)
    weight_kg = models.DecimalField(_("weight (kg)"), max_digits=6, decimal_places=2)
    height_cm = models.DecimalField(_("height (cm)"), max_digits=5, decimal_places=1, null=True, blank=True)
    creatinine_value = models.DecimalField(_("serum creatinine"), max_digits=7, decimal_places=2)
    creatinine_unit = models.CharField(_("creatinine unit"), max_length=6, choices=CreatinineUnit.choices)
    creatinine_on = models.DateField(_("creatinine measured on"))
    creatinine_source = models.CharField(
        _("creatinine source"), max_length=200, blank=True, default=""
    )  # "" = entered by hand
    gestational_age_weeks = models.DecimalField(
        _("gestational age (weeks)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    postnatal_age_days = models.PositiveIntegerField(_("postnatal age (days)"), null=True, blank=True)
    postmenstrual_age_weeks = models.DecimalField(
        _("postmenstrual age (weeks)"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    birth_weight_kg = models.DecimalField(
        _("birth weight (kg)"), max_digits=4, decimal_places=2, null=True, blank=True
    )

    model_choice = models.CharField(_("model"), max_length=40, default="auto")
    target_kind = models.CharField(
        _("target"), max_length=20, choices=TargetKind.choices, default=TargetKind.AUC24
    )
    auc24_low = models.DecimalField(
        _("AUC24 target low (mg·h/L)"), max_digits=6, decimal_places=1, default=400
    )
    auc24_high = models.DecimalField(
        _("AUC24 target high (mg·h/L)"), max_digits=6, decimal_places=1, default=600
    )
    trough_low_mg_per_l = models.DecimalField(
        _("trough target low (mg/L)"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    trough_high_mg_per_l = models.DecimalField(
        _("trough target high (mg/L)"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    next_level_due_at = models.DateTimeField(_("next level due"), null=True, blank=True)

    revision = models.PositiveIntegerField(_("revision"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("dosing course")
        verbose_name_plural = _("dosing courses")
        ordering = ("-updated_at", "-id")
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["pharmacist", "status"], name="dosing_course_pharmacist"),
            models.Index(fields=["institution", "created_at"], name="dosing_course_institution"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # Either a registered patient or enough to find the anonymous one on the ward.
            models.CheckConstraint(
                name="dosing_course_patient_or_initials",
                condition=Q(patient__isnull=False) | ~Q(initials=""),
            ),
            models.CheckConstraint(
                name="dosing_course_status_valid", condition=Q(status__in=["active", "closed"])
            ),
            models.CheckConstraint(name="dosing_course_sex_valid", condition=Q(sex__in=["female", "male"])),
            models.CheckConstraint(
                name="dosing_course_creatinine_unit_valid", condition=Q(creatinine_unit__in=CREATININE_UNITS)
            ),
            models.CheckConstraint(
                name="dosing_course_target_valid", condition=Q(target_kind__in=TARGET_KINDS)
            ),
            models.CheckConstraint(
                name="dosing_course_values_positive",
                condition=Q(weight_kg__gt=0, creatinine_value__gt=0, age_years__gte=0),
            ),
        ]

    def __str__(self) -> str:
        return f"course {self.pk} ({self.label})"

    @property
    def label(self) -> str:
        """How the patient is named on staff pages: the masked name, or the initials; with ward and bed."""
        who = self.patient.masked_name if self.patient is not None else self.initials
        where = " ".join(p for p in (self.ward, self.bed) if p)
        return f"{who} · {where}" if where else who


class VersionedEntry(AppendOnly, models.Model):
    """A line of a course's history: a correction is a new row that ``supersedes`` this one, a removal a row
    with ``removed`` set; who entered it (a pharmacist, or an institution's API key) and when."""

    supersedes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        verbose_name=_("replaces"),
    )
    removed = models.BooleanField(_("removed"), default=False)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("entered by"),
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("API key")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        abstract = True


class DoseEntry(VersionedEntry):
    """One line of the dose history ("1000 mg over 1 h at 08:00, then × 3 every 12 h"), append-only."""

    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, related_name="dose_entries", verbose_name=_("dosing course")
    )
    given_at = models.DateTimeField(_("start time"))
    amount_mg = models.DecimalField(_("dose (mg)"), max_digits=7, decimal_places=1)
    infusion_h = models.DecimalField(_("infusion (h)"), max_digits=4, decimal_places=2)
    repeat_count = models.PositiveSmallIntegerField(_("further doses"), default=0)
    repeat_interval_h = models.DecimalField(
        _("every (h)"), max_digits=5, decimal_places=2, null=True, blank=True
    )

    class Meta:
        verbose_name = _("dose entry")
        verbose_name_plural = _("dose entries")
        ordering = ("given_at", "id")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(name="dosing_dose_amount_positive", condition=Q(amount_mg__gt=0)),
            models.CheckConstraint(name="dosing_dose_infusion_not_negative", condition=Q(infusion_h__gte=0)),
            models.CheckConstraint(
                name="dosing_dose_repeat_has_interval",
                condition=Q(repeat_count=0) | Q(repeat_interval_h__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount_mg} mg at {self.given_at:%Y-%m-%d %H:%M}"

    @property
    def last_at(self) -> datetime:
        """The start of the line's last dose (the first one when it does not repeat)."""
        if self.repeat_count and self.repeat_interval_h:
            return self.given_at + timedelta(hours=float(self.repeat_interval_h) * self.repeat_count)
        return self.given_at


class LevelEntry(VersionedEntry):
    """One measured vancomycin concentration with its clock time, append-only like the doses."""

    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, related_name="level_entries", verbose_name=_("dosing course")
    )
    drawn_at = models.DateTimeField(_("drawn at"))
    conc_mg_per_l = models.DecimalField(_("level (mg/L)"), max_digits=6, decimal_places=2)

    class Meta:
        verbose_name = _("level entry")
        verbose_name_plural = _("level entries")
        ordering = ("drawn_at", "id")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(name="dosing_level_positive", condition=Q(conc_mg_per_l__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.conc_mg_per_l} mg/L at {self.drawn_at:%Y-%m-%d %H:%M}"


class CourseFit(AppendOnly, models.Model):
    """What the engine said for one revision of a course: its input case, its result, how each level
    changed the estimate, and the versions behind it (append-only: a re-fit adds a row)."""

    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, related_name="fits", verbose_name=_("dosing course")
    )
    course_revision = models.PositiveIntegerField(_("course revision"))
    levels_count = models.PositiveSmallIntegerField(_("levels used"))
    case = models.JSONField(_("inputs"))
    result = models.JSONField(_("result"))
    by_level = models.JSONField(
        _("fit by level"), default=list
    )  # [{"levels": k, "cl_l_per_h", "v1_l", "auc24", ...}]
    status = models.CharField(_("status"), max_length=40)
    engine_version = models.CharField(_("engine version"), max_length=80)
    model_versions = models.JSONField(_("model versions"), default=dict)  # model id -> sha256 of its file
    forecast_trough_mg_per_l = models.FloatField(_("forecast trough (mg/L)"), null=True, blank=True)
    forecast_auc24_mg_h_per_l = models.FloatField(_("forecast AUC24 (mg·h/L)"), null=True, blank=True)
    next_dose_at = models.DateTimeField(_("next dose"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("course fit")
        verbose_name_plural = _("course fits")
        ordering = ("created_at", "id")
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["course", "created_at"], name="dosing_fit_course_at"),
        ]

    def __str__(self) -> str:
        return f"fit {self.pk} of course {self.course_id} ({self.status})"


class SignedRegimen(AppendOnly, models.Model):
    """A regimen a pharmacist signed: the numbers, who, when, and the engine and model versions."""

    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, related_name="signatures", verbose_name=_("dosing course")
    )
    fit = models.ForeignKey(
        CourseFit, on_delete=models.PROTECT, related_name="signatures", verbose_name=_("fit")
    )
    dose_mg = models.DecimalField(_("dose (mg)"), max_digits=7, decimal_places=1)
    interval_h = models.DecimalField(_("interval (h)"), max_digits=5, decimal_places=2)
    infusion_h = models.DecimalField(_("infusion (h)"), max_digits=4, decimal_places=2)
    loading_dose_mg = models.DecimalField(
        _("loading dose (mg)"), max_digits=7, decimal_places=1, null=True, blank=True
    )
    next_dose_at = models.DateTimeField(_("next dose"))
    auc24_mg_h_per_l = models.FloatField(_("AUC24 (mg·h/L)"))
    trough_mg_per_l = models.FloatField(_("trough (mg/L)"))
    peak_mg_per_l = models.FloatField(_("peak (mg/L)"))
    pta = models.FloatField(_("probability of target attainment"), null=True, blank=True)
    target = models.JSONField(_("target"))
    note = models.CharField(_("note"), max_length=300, blank=True, default="")
    pharmacist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("pharmacist")
    )
    engine_version = models.CharField(_("engine version"), max_length=80)
    model_versions = models.JSONField(_("model versions"), default=dict)
    signed_at = models.DateTimeField(_("signed"), default=timezone.now)

    class Meta:
        verbose_name = _("signed regimen")
        verbose_name_plural = _("signed regimens")
        ordering = ("signed_at", "id")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                name="dosing_signed_values_positive",
                condition=Q(dose_mg__gt=0, interval_h__gt=0, infusion_h__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dose_mg:g} mg q{self.interval_h:g}h signed {self.signed_at:%Y-%m-%d %H:%M}"


class CourseEvent(AppendOnly, models.Model):
    """The append-only history of a course: every change, fit and signature, with who did it."""

    class Action(models.TextChoices):
        CREATED = "created", _("Course started")
        DETAILS_CHANGED = "details_changed", _("Patient details changed")
        DOSE_ADDED = "dose_added", _("Dose added")
        DOSE_CHANGED = "dose_changed", _("Dose corrected")
        DOSE_REMOVED = "dose_removed", _("Dose removed")
        LEVEL_ADDED = "level_added", _("Level added")
        LEVEL_CHANGED = "level_changed", _("Level corrected")
        LEVEL_REMOVED = "level_removed", _("Level removed")
        FITTED = "fitted", _("Fitted")
        SIGNED = "signed", _("Regimen signed")
        CLOSED = "closed", _("Course closed")

    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, related_name="events", verbose_name=_("dosing course")
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff member"),
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("API key")
    )
    detail = models.JSONField(_("detail"), default=dict)
    at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("course event")
        verbose_name_plural = _("course events")
        ordering = ("at", "id")

    def __str__(self) -> str:
        return f"{self.action} on course {self.course_id}"
