"""Admin of departments, doctors, clinic types and reconciliation; the timetable is in ``admin_schedules``,
bookings and money in ``admin_bookings`` (imported here so the admin site finds them). Changes are audited."""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from medcard.admin_audit import AuditedAdmin
from reservations import admin_bookings, admin_schedules, gates
from reservations.models import ClinicType, Department, Doctor, ReconciliationReport

# Registered on import: the timetable, and bookings, payments, refunds, the waitlist and waivers.
__all__ = ["admin_bookings", "admin_schedules"]


@admin.register(Department)
class DepartmentAdmin(AuditedAdmin):
    list_display = ("code", "name_zh", "name_en", "kind", "sort_order")
    list_filter = ("kind",)
    search_fields = ("code", "name_zh", "name_en")


@admin.register(Doctor)
class DoctorAdmin(AuditedAdmin):
    list_display = ("code", "name_zh", "name_en", "title", "department")
    list_filter = ("title", "department")
    search_fields = ("code", "name_zh", "name_en")


class ClinicTypeForm(forms.ModelForm[ClinicType]):
    """Only a condition a registered gate offers (a screened exam with a rules file), or none."""

    class Meta:
        model = ClinicType
        fields = ("code", "name_zh", "name_en", "fee", "screening_exam", "preparation_zh", "preparation_en")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        gated = [choice for gate in gates.gates_all() for choice in gate.choices()]
        choices = [("", _("No screening")), *gated]
        self.fields["screening_exam"] = forms.ChoiceField(
            choices=choices, required=False, label=_("screening exam")
        )


@admin.register(ClinicType)
class ClinicTypeAdmin(AuditedAdmin):
    """Clinic types and fees; ``screening_exam`` names the rules file a booking is screened against."""

    form = ClinicTypeForm

    list_display = ("code", "name_zh", "name_en", "fee", "screening_exam")
    list_filter = ("screening_exam",)
    search_fields = ("code", "name_zh", "name_en")


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(admin.ModelAdmin[ReconciliationReport]):
    """Read-only for staff with the view permission: reports are written by the daily task and the
    ``payments_reconcile`` command only."""

    list_display = (
        "bill_date",
        "channel",
        "status",
        "differences",
        "gateway_payments",
        "our_payments",
        "runs",
    )
    list_filter = ("status", "channel")
    date_hierarchy = "bill_date"
    fields = (
        "channel",
        "bill_date",
        "status",
        "message",
        "gateway_payments",
        "gateway_refunds",
        "our_payments",
        "our_refunds",
        "differences",
        "difference_table",
        "runs",
        "history",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description=_("differences found"))
    def difference_table(self, report: ReconciliationReport) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    line.get("problem"),
                    line.get("order_no"),
                    line.get("refund_no"),
                    line.get("ours"),
                    line.get("theirs"),
                )
                for line in report.lines
            ),
        )
        head = format_html_join(
            "",
            "<th>{}</th>",
            (
                (name,)
                for name in (_("problem"), _("order number"), _("refund number"), _("ours"), _("gateway"))
            ),
        )
        return format_html_join(
            "", "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", [(head, rows)]
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ReconciliationReport | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ReconciliationReport | None = None) -> bool:
        return False
