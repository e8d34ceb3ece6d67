"""A batch job and its chunks.

A job's ``spec`` holds every input the engine needs (the regimens, the model, the covariate rows or the
cohort CSV), so a result can always be traced back to, and recomputed from, what produced it. Each chunk's
partial result is one row, unique per (job, index): a chunk computed twice (its worker died after the
computation, the message was delivered again) is stored once and counted once.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class BatchJob(models.Model):
    class Kind(models.TextChoices):
        PTA = "pta", _("Probability of target attainment")
        EVALUATION = "evaluation", _("External evaluation of a model")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    title = models.CharField(_("batch name"), max_length=120)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    model_id = models.CharField(_("model"), max_length=64)
    # the validated engine inputs (JSON), and the uploaded CSV as sent (empty for a named population)
    spec = models.JSONField(_("specification"))
    input_csv = models.TextField(_("input CSV"), blank=True, default="")
    input_filename = models.CharField(_("input file name"), max_length=200, blank=True, default="")
    engine_version = models.CharField(_("engine version"), max_length=40)
    n_chunks = models.PositiveIntegerField(_("chunks"))
    chunks_done = models.PositiveIntegerField(_("chunks done"), default=0)
    result = models.JSONField(_("result"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")

    class Meta:
        verbose_name = _("batch job")
        verbose_name_plural = _("batch jobs")
        ordering = ("-created_at", "-pk")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                condition=Q(chunks_done__lte=F("n_chunks")), name="dosing_batchjob_done_within_chunks"
            ),
            models.CheckConstraint(condition=Q(n_chunks__gte=1), name="dosing_batchjob_has_chunks"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "done", "failed"]), name="dosing_batchjob_status"
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | (Q(result__isnull=False) & Q(chunks_done=F("n_chunks"))),
                name="dosing_batchjob_done_has_result",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}: {self.title}"

    @property
    def progress_percent(self) -> int:
        return int(100 * self.chunks_done / self.n_chunks) if self.n_chunks else 0

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class BatchChunk(models.Model):
    job = models.ForeignKey(
        BatchJob, on_delete=models.CASCADE, related_name="chunks", verbose_name=_("batch job")
    )
    index = models.PositiveIntegerField(_("index"))
    result = models.JSONField(_("result"))
    computed_at = models.DateTimeField(_("computed"))
    worker = models.CharField(_("worker"), max_length=200, blank=True, default="")
    seconds = models.FloatField(_("seconds"), default=0.0)

    class Meta:
        verbose_name = _("batch chunk")
        verbose_name_plural = _("batch chunks")
        ordering = ("job", "index")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=("job", "index"), name="dosing_batchchunk_one_per_index"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of job {self.job_id}"
