"""Admin pages. Personal data is shown masked only; unmasking is a front-desk action with a reason. Every
change made here is audited (``medcard.admin_audit``), and so is opening a patient's page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from medcard import crypto
from medcard.admin_audit import AuditedAdmin, admin_read_audit
from medcard.models import AuditEvent, Card, Message, Patient, User


@admin.register(User)
class UserAdmin(AuditedAdmin):
    """Staff accounts are managed here; a patient account's name and mobile stay masked and unchanged."""

    list_display = ("__str__", "kind", "name_shown", "is_active")
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

    @admin.display(description=_("name"))
    def name_shown(self, user: User) -> str:
        return user.display_name if user.kind == User.Kind.STAFF else crypto.mask_name(user.display_name)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.kind == User.Kind.PATIENT:
            return ("kind", "name_shown", "is_active", "last_login")
        return self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.kind == User.Kind.PATIENT:
            return ("kind", "name_shown", "last_login")
        return self.readonly_fields


class _ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Patient)
class PatientAdmin(_ReadOnly):
    list_display = ("name_masked", "id_type", "id_number_masked", "sex", "birth_date", "verification")
    list_filter = ("verification", "id_type", "sex")
    fields = (
        "name_masked",
        "id_type",
        "id_number_masked",
        "mobile_masked",
        "sex",
        "birth_date",
        "verification",
    )
    readonly_fields = fields

    @admin.display(description=_("name"))
    def name_masked(self, patient: Patient) -> str:
        return patient.masked_name

    @admin.display(description=_("ID number"))
    def id_number_masked(self, patient: Patient) -> str:
        return patient.masked_id_number

    @admin.display(description=_("mobile number"))
    def mobile_masked(self, patient: Patient) -> str:
        return patient.masked_mobile

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        # Even masked, a patient's page is a read of personal data by staff: recorded.
        patient = self.get_object(request, object_id)
        if patient is not None and request.method == "GET":
            admin_read_audit(
                request=request, patient=patient, detail="admin patient page", target=f"patient {patient.pk}"
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Card)
class CardAdmin(_ReadOnly):
    list_display = ("number", "patient", "status", "issued_at", "revoked_at")
    list_filter = ("status",)
    search_fields = ("number",)


@admin.register(AuditEvent)
class AuditEventAdmin(_ReadOnly):
    list_display = ("at", "actor", "actor_is_staff", "patient", "action", "target", "fields", "reason")
    list_filter = ("action", "actor_is_staff")
    search_fields = ("actor__username", "patient__cards__number", "reason", "target")
    date_hierarchy = "at"


@admin.register(Message)
class MessageAdmin(_ReadOnly):
    """The messages sent to patients, read-only: they are what was sent (names masked), never edited."""

    list_display = ("created_at", "account", "kind", "title", "booking_id", "read_at")
    list_filter = ("kind",)
    date_hierarchy = "created_at"
