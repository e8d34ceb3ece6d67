"""Uploaded test results, and the screening of bookings: settings per exam, cases, runs, reviews, models."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reservations.models import in_active_language
from screening.pipeline.rules import load_ruleset

DERIVATIVE_CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "heic": "image/jpeg",  # HEIC is converted: browsers and OCR read JPEG
    "png": "image/png",
    "pdf": "application/pdf",
}


class Upload(models.Model):
    """One file a patient account sent for a booking, stored as a clean derivative under a random name.

    ``derivative_name`` (and ``original_name`` when originals are kept) are storage paths that no URL maps
    to: files are served only by the access-checked file view. ``sha256`` is of the original bytes.
    """

    class Kind(models.TextChoices):
        JPEG = "jpeg", _("JPEG photo")
        PNG = "png", _("PNG image")
        HEIC = "heic", _("HEIC photo")
        PDF = "pdf", _("PDF document")

    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("Received")

    booking = models.ForeignKey(
        "reservations.Booking", on_delete=models.PROTECT, related_name="uploads", verbose_name=_("booking")
    )
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="screening_uploads",
        verbose_name=_("account"),
    )
    filename = models.CharField(
        _("file name"), max_length=120, blank=True, default=""
    )  # as sent, for patient and reviewer
    derivative_name = models.CharField(_("stored file"), max_length=120)
    original_name = models.CharField(_("original file"), max_length=120, blank=True, default="")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    byte_size = models.PositiveIntegerField(_("size (bytes)"))  # of the original
    width_px = models.PositiveIntegerField(_("width (px)"), null=True, blank=True)
    height_px = models.PositiveIntegerField(_("height (px)"), null=True, blank=True)
    page_count = models.PositiveSmallIntegerField(_("pages"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256 checksum"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        ordering = ("created_at", "id")
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["booking", "created_at"], name="screening_upload_booking_at"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["derivative_name"], name="screening_upload_derivative_unique"),
            models.CheckConstraint(
                name="screening_upload_kind_valid", condition=Q(kind__in=["jpeg", "png", "heic", "pdf"])
            ),
            models.CheckConstraint(
                name="screening_upload_status_valid", condition=Q(status__in=["accepted"])
            ),
            models.CheckConstraint(name="screening_upload_size_positive", condition=Q(byte_size__gte=1)),
            models.CheckConstraint(
                name="screening_upload_sha256_length", condition=Exact(Length("sha256"), 64)
            ),
            models.CheckConstraint(name="screening_upload_name_set", condition=~Q(derivative_name="")),
            # An image has pixel sizes and no pages; a PDF has pages and no pixel sizes.
            models.CheckConstraint(
                name="screening_upload_shape",
                condition=(
                    Q(kind="pdf", page_count__gte=1, width_px__isnull=True, height_px__isnull=True)
                    | (~Q(kind="pdf") & Q(width_px__gte=1, height_px__gte=1, page_count__isnull=True))
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.kind}) for booking {self.booking_id}"

    @property
    def content_type(self) -> str:
        """The derivative's media type (what is served), from the sniffed kind, never from the client."""
        return DERIVATIVE_CONTENT_TYPES[self.kind]

    @property
    def is_image(self) -> bool:
        return self.kind != self.Kind.PDF


# --- Screening: which exams are screened, one case per booking, the append-only record of the pipeline -----

SCREENING_MODES = ("off", "shadow", "live")
CASE_STATUSES = ("awaiting_upload", "processing", "confirm", "approved", "declined", "review")
OPEN_CASE_STATUSES = ("awaiting_upload", "processing", "confirm", "review")


class ScreeningExamSetting(models.Model):
    """The switch of one exam type's screening (an exam code is a rule file, ``screening/rules/<code>.toml``).

    ``off``: the exam's bookings are not screened at all. ``shadow``: the pipeline runs and logs what it
    would decide, and staff decide every case. ``live``: clear cases are decided automatically, the rest go
    to staff. An exam without a row runs in ``SCREENING_DEFAULT_MODE`` (shadow unless configured).
    """

    class Mode(models.TextChoices):
        OFF = "off", _("Off")
        SHADOW = "shadow", _("Shadow (staff decide every case)")
        LIVE = "live", _("Live (clear cases decided automatically)")

    exam_code = models.SlugField(_("exam code"), max_length=40, unique=True)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, default=Mode.SHADOW)
    review_hours = models.PositiveSmallIntegerField(
        _("review time (hours)"), default=24, help_text=_("What patients are told a staff review takes.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("screened exam")
        verbose_name_plural = _("screened exams")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                name="screening_examsetting_mode_valid", condition=Q(mode__in=SCREENING_MODES)
            ),
            models.CheckConstraint(
                name="screening_examsetting_review_hours", condition=Q(review_hours__gte=1)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exam_code} ({self.get_mode_display()})"


class AppendOnly:
    """A record that is written once: saving an existing row or deleting one raises (and on PostgreSQL a
    trigger refuses UPDATE and DELETE whatever the code does: migration 0003)."""

    pk: Any
    _state: Any

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)  # type: ignore[misc]

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError(f"{type(self).__name__} rows are append-only.")


@functools.cache
def exam_titles(exam_code: str) -> tuple[str, str] | None:
    """The exam's Chinese and English titles from its rules file (read once per process), or ``None``."""
    try:
        ruleset = load_ruleset(exam_code)
    except (KeyError, ValueError):
        return None
    return ruleset.title_zh, ruleset.title_en


class ScreeningCase(models.Model):
    """The screening of one booking: the questionnaire, the latest decision, and where the case stands.

    Status flow: ``awaiting_upload`` (the patient has to send a report) → ``processing`` (the pipeline reads
    it) → ``confirm`` (the patient checks the values read) → ``approved`` (the payment window starts) or
    ``declined`` (the number is released) or ``review`` (staff decide). ``revision`` grows with every change,
    so a writer that computed from an older state loses its compare-and-set.
    """

    class Status(models.TextChoices):
        AWAITING_UPLOAD = "awaiting_upload", _("Waiting for your test report")
        PROCESSING = "processing", _("Reading your report")
        CONFIRM = "confirm", _("Please check the values we read")
        APPROVED = "approved", _("Approved")
        DECLINED = "declined", _("Not approved")
        REVIEW = "review", _("Being reviewed by staff")

    class DecidedBy(models.TextChoices):
        NONE = "", _("Not decided")
        SYSTEM = "system", _("Automatic")
        STAFF = "staff", _("Staff")

    booking = models.OneToOneField(
        "reservations.Booking",
        on_delete=models.PROTECT,
        related_name="screening_case",
        verbose_name=_("booking"),
    )
    exam_code = models.SlugField(_("exam code"), max_length=40)
    mode = models.CharField(
        _("mode"), max_length=8, choices=ScreeningExamSetting.Mode.choices
    )  # at booking time
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.AWAITING_UPLOAD
    )
    answers = models.JSONField(
        _("questionnaire answers"), default=dict, blank=True
    )  # questionnaire item -> bool
    decision = models.JSONField(
        _("decision"), default=dict, blank=True
    )  # the latest Decision.to_json(), with the mode
    reason_codes = models.JSONField(
        _("reasons"), default=list, blank=True
    )  # of the latest decision, for the queue
    patient_confirmed = models.BooleanField(_("confirmed by the patient"), null=True, blank=True)
    review_due_at = models.DateTimeField(_("review due"), null=True, blank=True)  # what the patient is told
    decided_by = models.CharField(
        _("decided by"), max_length=8, choices=DecidedBy.choices, blank=True, default=""
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    blind_audit = models.BooleanField(
        _("blind audit"), default=False
    )  # an automatic decision sampled for a blind staff audit
    revision = models.PositiveIntegerField(_("revision"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = _("screening case")
        verbose_name_plural = _("screening cases")
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["status", "created_at"], name="screening_case_status_at"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(name="screening_case_status_valid", condition=Q(status__in=CASE_STATUSES)),
            models.CheckConstraint(name="screening_case_mode_valid", condition=Q(mode__in=SCREENING_MODES)),
            models.CheckConstraint(
                name="screening_case_decided_has_time",
                condition=~Q(status__in=["approved", "declined"])
                | (Q(decided_at__isnull=False) & ~Q(decided_by="")),
            ),
        ]

    def __str__(self) -> str:
        return f"screening of booking {self.booking_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_CASE_STATUSES

    @property
    def critical_fields(self) -> list[dict[str, Any]]:
        """The values read that the patient is asked to confirm (from the latest decision)."""
        fields = self.decision.get("critical_fields") or []
        return [f for f in fields if isinstance(f, dict)]

    @property
    def decline_note(self) -> str:
        """A staff reviewer's reason for a decline (shown to the patient), or "" for automatic ones."""
        if self.status != self.Status.DECLINED or self.decided_by != self.DecidedBy.STAFF:
            return ""
        review = self.reviews.filter(blind_audit=False).order_by("-created_at", "-id").first()
        return review.reason if review is not None else ""

    def get_exam_display(self) -> str:
        """The exam's name for people, from its rules file ("Contrast-enhanced CT (iodinated contrast)"), or
        the booked clinic type's name when the file cannot be read."""
        titles = exam_titles(self.exam_code)
        if titles is None:
            return str(self.booking.session.clinic_type.name)

        return in_active_language(*titles)


class ScreeningRun(AppendOnly, models.Model):
    """One step of the pipeline on one case, as it ran: append-only (a later run supersedes, never edits).

    ``key`` makes a step idempotent: the extraction of one file is keyed on the case, the file's SHA-256 and
    the pipeline version; a decision on a checksum of everything it read. A duplicate delivery finds its key
    taken and writes nothing.
    """

    class Step(models.TextChoices):
        EXTRACT = "extract", _("Read a report")
        DECIDE = "decide", _("Decide")
        CONFIRM = "confirm", _("Patient confirmation")
        REVIEW = "review", _("Staff review")

    class Status(models.TextChoices):
        OK = "ok", _("Succeeded")
        FAILED = "failed", _("Failed")

    case = models.ForeignKey(
        ScreeningCase, on_delete=models.PROTECT, related_name="runs", verbose_name=_("screening case")
    )
    upload = models.ForeignKey(
        Upload, on_delete=models.PROTECT, null=True, blank=True, related_name="runs", verbose_name=_("upload")
    )
    step = models.CharField(_("step"), max_length=8, choices=Step.choices)
    key = models.CharField(_("run key"), max_length=200)
    input_sha256 = models.CharField(
        _("input checksum"), max_length=64
    )  # the file's, or the decision inputs' checksum
    pipeline_version = models.CharField(_("pipeline version"), max_length=60, blank=True, default="")
    ocr_engine = models.JSONField(
        _("OCR engine"), default=dict, blank=True
    )  # name, version, model file hashes
    parser_version = models.CharField(_("parser version"), max_length=60, blank=True, default="")
    rules_version = models.CharField(_("rules version"), max_length=60, blank=True, default="")
    model_versions = models.JSONField(
        _("model versions"), default=dict, blank=True
    )  # task -> {"version", "sha256", "status"}
    outputs = models.JSONField(_("outputs"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.OK)
    error_code = models.CharField(_("error code"), max_length=40, blank=True, default="")
    actor = models.ForeignKey(  # empty: the system
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff member"),
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("screening run")
        verbose_name_plural = _("screening runs")
        ordering = ("created_at", "id")
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["case", "step", "created_at"], name="screening_run_case_step_at"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["key"], name="screening_run_key_unique"),
            models.CheckConstraint(
                name="screening_run_step_valid",
                condition=Q(step__in=["extract", "decide", "confirm", "review"]),
            ),
            models.CheckConstraint(
                name="screening_run_status_valid", condition=Q(status__in=["ok", "failed"])
            ),
            models.CheckConstraint(
                name="screening_run_failed_has_code", condition=~Q(status="failed") | ~Q(error_code="")
            ),
            models.CheckConstraint(
                name="screening_run_sha256_length", condition=Exact(Length("input_sha256"), 64)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step} run {self.pk} of case {self.case_id} ({self.status})"


class ScreeningReview(AppendOnly, models.Model):
    """A staff member's decision on a case, or their blind audit of an automatic decision (append-only)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", _("Approve")
        DECLINE = "decline", _("Decline")

    case = models.ForeignKey(
        ScreeningCase, on_delete=models.PROTECT, related_name="reviews", verbose_name=_("screening case")
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("staff member")
    )
    decision = models.CharField(_("decision"), max_length=8, choices=Decision.choices)
    reason = models.CharField(_("reason"), max_length=300)
    note = models.TextField(_("note"), blank=True, default="")
    blind_audit = models.BooleanField(
        _("blind audit"), default=False
    )  # decided without seeing the system's decision
    system_outcome = models.CharField(
        _("system outcome"), max_length=8, blank=True, default=""
    )  # what the system would decide
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("screening review")
        verbose_name_plural = _("screening reviews")
        ordering = ("created_at", "id")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                name="screening_review_decision_valid", condition=Q(decision__in=["approve", "decline"])
            ),
            models.CheckConstraint(name="screening_review_reason_set", condition=~Q(reason="")),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} of case {self.case_id}: {self.decision}"


class FieldCorrection(AppendOnly, models.Model):
    """A value staff corrected while reviewing: the labels the field-confidence model is retrained on."""

    review = models.ForeignKey(
        ScreeningReview, on_delete=models.PROTECT, related_name="corrections", verbose_name=_("review")
    )
    run = models.ForeignKey(
        ScreeningRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("screening run"),
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("staff member")
    )
    field_key = models.CharField(
        _("field"), max_length=60
    )  # e.g. "analyte:creatinine", "collected_on", "patient_name"
    read_value = models.CharField(_("value read"), max_length=200, blank=True, default="")
    corrected_value = models.CharField(_("corrected value"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("field correction")
        verbose_name_plural = _("field corrections")
        ordering = ("created_at", "id")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(name="screening_fieldcorrection_key_set", condition=~Q(field_key="")),
        ]

    def __str__(self) -> str:
        return f"{self.field_key}: {self.read_value!r} → {self.corrected_value!r}"


class ScreeningModelVersion(models.Model):
    """A trained model in the registry. At most one is ``active`` per task (the database says so); a new one
    starts in ``shadow``; rolling back is flipping statuses, never deleting."""

    class Status(models.TextChoices):
        SHADOW = "shadow", _("Shadow")
        ACTIVE = "active", _("Active")
        RETIRED = "retired", _("Retired")

    task = models.SlugField(_("task"), max_length=40)
    version = models.CharField(_("version"), max_length=40)
    artefact_path = models.CharField(
        _("artefact path"), max_length=300
    )  # relative to screening/ml/artefacts/
    sha256 = models.CharField(_("SHA-256 checksum"), max_length=64)
    data_hash = models.CharField(
        _("training data checksum"), max_length=64, blank=True, default=""
    )  # training-data snapshot
    library_versions = models.JSONField(
        _("library versions"), default=dict, blank=True
    )  # e.g. {"scikit-learn": "1.9.1"}
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    thresholds = models.JSONField(_("thresholds"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.SHADOW)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name_plural = _("screening model versions")
        ordering = ("task", "-created_at")
        verbose_name = _("screening model version")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["task", "version"], name="screening_modelversion_once"),
            models.UniqueConstraint(
                fields=["task"], condition=Q(status="active"), name="screening_modelversion_one_active"
            ),
            models.CheckConstraint(
                name="screening_modelversion_status_valid",
                condition=Q(status__in=["shadow", "active", "retired"]),
            ),
            models.CheckConstraint(
                name="screening_modelversion_active_approved",
                condition=~Q(status="active") | Q(approved_at__isnull=False),
            ),
            models.CheckConstraint(
                name="screening_modelversion_sha256_length", condition=Exact(Length("sha256"), 64)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.version} ({self.get_status_display()})"
