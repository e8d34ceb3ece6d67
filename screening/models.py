"""Uploaded test results. The screening pipeline adds its own rows and statuses later."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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

    booking = models.ForeignKey("reservations.Booking", on_delete=models.PROTECT, related_name="uploads")
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="screening_uploads"
    )
    filename = models.CharField(max_length=120, blank=True, default="")  # as sent, shown to the patient only
    derivative_name = models.CharField(max_length=120)
    original_name = models.CharField(max_length=120, blank=True, default="")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    byte_size = models.PositiveIntegerField()  # of the original
    width_px = models.PositiveIntegerField(null=True, blank=True)
    height_px = models.PositiveIntegerField(null=True, blank=True)
    page_count = models.PositiveSmallIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
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
