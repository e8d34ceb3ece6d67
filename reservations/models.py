"""Departments and doctors. The reservations issue adds schedules, slots, holds and payments."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Department(models.Model):
    class Kind(models.TextChoices):
        CLINIC = "clinic", _("Outpatient clinic")
        EXAMINATION = "examination", _("Examination")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=60)
    name_en = models.CharField(_("name (English)"), max_length=100)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.CLINIC)
    description_zh = models.TextField(_("description (Chinese)"), blank=True, default="")
    description_en = models.TextField(_("description (English)"), blank=True, default="")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("sort_order", "code")
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                name="reservations_department_names_not_blank", condition=~Q(name_zh="") & ~Q(name_en="")
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The name in the active language."""
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh

    @property
    def description(self) -> str:
        return self.description_en if (get_language() or "").startswith("en") else self.description_zh


class Doctor(models.Model):
    class Title(models.TextChoices):
        # Clinical titles as used in Chinese hospitals: 主任医师, 副主任医师, 主治医师, 住院医师.
        CHIEF = "chief", _("Chief physician")
        ASSOCIATE_CHIEF = "associate_chief", _("Associate chief physician")
        ATTENDING = "attending", _("Attending physician")
        RESIDENT = "resident", _("Resident physician")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="doctors")
    name_zh = models.CharField(_("name (Chinese)"), max_length=30)
    name_en = models.CharField(_("name (English)"), max_length=60)
    title = models.CharField(_("title"), max_length=20, choices=Title.choices)
    specialty_zh = models.CharField(_("specialty (Chinese)"), max_length=200, blank=True, default="")
    specialty_en = models.CharField(_("specialty (English)"), max_length=300, blank=True, default="")

    class Meta:
        ordering = ("department", "code")
        verbose_name = _("doctor")
        verbose_name_plural = _("doctors")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh

    @property
    def specialty(self) -> str:
        return self.specialty_en if (get_language() or "").startswith("en") else self.specialty_zh
