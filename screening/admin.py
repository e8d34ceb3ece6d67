"""Admin for the screening switches and the model registry.

Cases, runs and reviews are not here on purpose: they hold a patient's report values, and staff read them
through the review pages, where every read is audited. Runs and reviews are append-only anyway.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from medcard.admin_audit import AuditedAdmin
from screening.models import ScreeningExamSetting, ScreeningModelVersion


@admin.register(ScreeningExamSetting)
class ScreeningExamSettingAdmin(AuditedAdmin):
    list_display = ("exam_code", "mode", "review_hours", "updated_at")
    list_filter = ("mode",)
    search_fields = ("exam_code",)


@admin.register(ScreeningModelVersion)
class ScreeningModelVersionAdmin(admin.ModelAdmin[ScreeningModelVersion]):
    """Read-only: versions are registered and switched with ``manage.py screening_models`` (which checks the
    artefact and retires the previous version in one step)."""

    list_display = ("task", "version", "status", "approved_by", "approved_at", "created_at")
    list_filter = ("task", "status")
    readonly_fields = (
        "task", "version", "artefact_path", "sha256", "data_hash", "library_versions", "metrics",
        "thresholds", "status", "approved_by", "approved_at", "created_at",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScreeningModelVersion | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ScreeningModelVersion | None = None) -> bool:
        return False
