"""Admin pages. Personal data is shown masked only; unmasking is a front-desk action with a reason."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from medcard.models import AuditEvent, Card, Message, Patient, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    list_display = ("__str__", "kind", "display_name", "is_active")
    list_filter = ("kind", "is_active", "groups")
    search_fields = ("username", "display_name")
    fields = (
        "kind",
        "username",
        "display_name",
        "groups",
        "is_active",
        "is_staff",
        "last_login",
    )
    readonly_fields = ("kind", "last_login")


class _ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Patient)
class PatientAdmin(_ReadOnly):
    list_display = ("masked_name", "id_type", "masked_id_number", "sex", "birth_date", "verification")
    list_filter = ("verification", "id_type", "sex")
    fields = (
        "masked_name",
        "id_type",
        "masked_id_number",
        "masked_mobile",
        "sex",
        "birth_date",
        "verification",
    )
    readonly_fields = fields


@admin.register(Card)
class CardAdmin(_ReadOnly):
    list_display = ("number", "patient", "status", "issued_at", "revoked_at")
    list_filter = ("status",)
    search_fields = ("number",)


@admin.register(AuditEvent)
class AuditEventAdmin(_ReadOnly):
    list_display = ("at", "actor", "actor_is_staff", "patient", "action", "fields", "reason")
    list_filter = ("action", "actor_is_staff")
    search_fields = ("actor__username", "patient__cards__number", "reason")
    date_hierarchy = "at"


@admin.register(Message)
class MessageAdmin(_ReadOnly):
    """The messages sent to patients, read-only: they are what was sent (names masked), never edited."""

    list_display = ("created_at", "account", "kind", "title", "booking_id", "read_at")
    list_filter = ("kind",)
    date_hierarchy = "created_at"
