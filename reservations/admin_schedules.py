"""Admin of the timetable: weekly templates (saving one regenerates its future sessions), the generated
sessions with their slices, slices and desk-kept numbers, booking and queue rules per department.

Every change here is audited (``medcard.admin_audit.AuditedAdmin``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from medcard.admin_audit import AuditedAdmin
from medcard.models import User
from reservations.models import WEEKDAY_LABELS, BookingRule, QueueRule, Session, Slot, WeeklyTemplate
from reservations.services.templates import Regenerated, template_sessions_regenerate

WEEKDAYS = list(enumerate(WEEKDAY_LABELS))


def _staff(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def session_label(session: Session) -> str:
    """A session as the admin names it, in the active language: date, half-day, department, doctor or room."""
    who = session.doctor.name if session.doctor else session.room
    return f"{session.date:%Y-%m-%d} {session.get_half_day_display()} {session.department.name} {who}"


class SessionShown:
    """The ``session_shown`` column: a session named in words, not by its ``str`` (which is in English)."""

    @admin.display(description=_("session"), ordering="session__date")
    def session_shown(self, obj: Any) -> str:
        return session_label(obj.session)


class WeeklyTemplateForm(forms.ModelForm[WeeklyTemplate]):
    weekday = forms.TypedChoiceField(label=_("weekday"), choices=WEEKDAYS, coerce=int)

    class Meta:
        model = WeeklyTemplate
        fields = (
            "department",
            "doctor",
            "room",
            "clinic_type",
            "weekday",
            "half_day",
            "start_time",
            "end_time",
            "slice_minutes",
            "quota_per_slice",
            "desk_quota_per_slice",
            "active",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            self.add_error("end_time", gettext("The end time must be after the start time."))
        if data.get("slice_minutes") is not None and data["slice_minutes"] < 5:
            self.add_error("slice_minutes", gettext("A slice lasts at least 5 minutes."))
        doctor = data.get("doctor")
        if doctor is not None and data.get("department") and doctor.department_id != data["department"].pk:
            self.add_error("doctor", gettext("This doctor works in another department."))
        return data


def _regenerated_message(result: Regenerated) -> str:
    return gettext(
        "Future sessions regenerated: %(created)d created, %(removed)d removed, %(kept)d with bookings kept "
        "(%(quotas)d slice quotas updated)."
    ) % {
        "created": result.created,
        "removed": result.removed,
        "kept": result.kept,
        "quotas": result.quotas_updated,
    }


@admin.register(WeeklyTemplate)
class WeeklyTemplateAdmin(AuditedAdmin):
    """Saving a template brings its future sessions (from tomorrow) to it at once; sessions with bookings are
    kept, only their slice quotas follow (``reservations.services.templates``)."""

    form = WeeklyTemplateForm
    list_display = (
        "department",
        "clinician",
        "weekday_name",
        "half_day",
        "start_time",
        "end_time",
        "slice_minutes",
        "quota_per_slice",
        "desk_quota_per_slice",
        "active",
        "sessions_link",
    )
    list_filter = ("active", "department", "weekday", "half_day")
    search_fields = (
        "department__name_zh",
        "department__name_en",
        "doctor__name_zh",
        "doctor__name_en",
        "room",
    )
    actions = ("regenerate_sessions",)

    @admin.display(description=_("doctor or room"))
    def clinician(self, template: WeeklyTemplate) -> str:
        return str(template.doctor or template.room)

    @admin.display(description=_("weekday"), ordering="weekday")
    def weekday_name(self, template: WeeklyTemplate) -> str:
        return str(dict(WEEKDAYS).get(template.weekday, template.weekday))

    @admin.display(description=_("sessions"))
    def sessions_link(self, template: WeeklyTemplate) -> SafeString:
        url = reverse("admin:reservations_session_changelist") + f"?template__id__exact={template.pk}"
        return format_html('<a href="{}">{}</a>', url, gettext("Generated sessions"))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change or form.changed_data:
            result = template_sessions_regenerate(staff=_staff(request), template_id=obj.pk)
            self.message_user(request, _regenerated_message(result), messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        # Switched off first, so its unbooked future sessions go with it; booked ones stay (without template).
        WeeklyTemplate.objects.filter(pk=obj.pk).update(active=False)
        template_sessions_regenerate(staff=_staff(request), template_id=obj.pk)
        super().delete_model(request, obj)

    @admin.action(description=_("Regenerate future sessions"))
    def regenerate_sessions(self, request: HttpRequest, queryset: QuerySet[WeeklyTemplate]) -> None:
        for template in queryset:
            result = template_sessions_regenerate(staff=_staff(request), template_id=template.pk)
            self.message_user(request, f"{template}: {_regenerated_message(result)}", messages.SUCCESS)


class SlotForm(forms.ModelForm[Slot]):
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        instance = self.instance
        if data.get("capacity") is not None and data["capacity"] < instance.taken:
            self.add_error("capacity", gettext("%(n)d numbers are already taken.") % {"n": instance.taken})
        if data.get("desk_capacity") is not None and data["desk_capacity"] < instance.desk_taken:
            self.add_error(
                "desk_capacity", gettext("%(n)d numbers are already taken.") % {"n": instance.desk_taken}
            )
        return data


class SlotInline(admin.TabularInline[Slot, Session]):
    model = Slot
    form = SlotForm
    extra = 0
    fields = ("starts_at", "ends_at", "capacity", "desk_capacity", "taken", "desk_taken", "extra")
    readonly_fields = ("starts_at", "ends_at", "taken", "desk_taken", "extra")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(AuditedAdmin):
    """Sessions are made from the weekly templates; here their slices' numbers can be changed. Stopping a
    session (which cancels and refunds its bookings) is done on the staff sessions page."""

    list_display = (
        "date",
        "half_day",
        "department",
        "clinician",
        "clinic_type",
        "fee",
        "status",
        "numbers",
        "template",
    )
    list_filter = ("status", "half_day", "department", "template")
    date_hierarchy = "date"
    search_fields = (
        "department__name_zh",
        "department__name_en",
        "doctor__name_zh",
        "doctor__name_en",
        "room",
    )
    list_select_related = ("department", "doctor", "clinic_type", "template")
    fields = (
        "department",
        "doctor",
        "room",
        "clinic_type",
        "fee",
        "date",
        "half_day",
        "starts_at",
        "ends_at",
        "status",
        "stopped_reason",
        "template",
        "created_at",
    )
    readonly_fields = ("status", "stopped_reason", "fee", "template", "created_at")
    inlines = (SlotInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The day, times and clinician of a session that exists are fixed: bookings, slices and messages
        # name them (a timetable change goes through its weekly template).
        if obj is not None:
            fixed = ("department", "doctor", "date", "half_day", "clinic_type", "starts_at", "ends_at")
            return (*self.readonly_fields, *fixed)
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.fee = obj.clinic_type.fee  # as the generator does: the fee is fixed when the session is made
        super().save_model(request, obj, form, change)

    @admin.display(description=_("doctor or room"))
    def clinician(self, session: Session) -> str:
        return str(session.doctor or session.room)

    @admin.display(description=_("numbers taken"))
    def numbers(self, session: Session) -> str:
        slots = list(session.slots.all())
        taken = sum(s.taken + s.desk_taken for s in slots)
        capacity = sum(s.capacity + s.desk_capacity for s in slots)
        return f"{taken} / {capacity}"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Session]:
        return super().get_queryset(request).prefetch_related("slots")


@admin.register(Slot)
class SlotAdmin(SessionShown, AuditedAdmin):
    """A slice's online and desk-kept numbers; never below what is already taken."""

    form = SlotForm
    list_display = (
        "session_shown",
        "starts_at",
        "ends_at",
        "capacity",
        "desk_capacity",
        "taken",
        "desk_taken",
        "extra",
    )
    list_filter = ("session__department", "session__date")
    list_select_related = ("session__doctor", "session__department")
    fields = (
        "session_shown", "starts_at", "ends_at", "capacity", "desk_capacity", "taken", "desk_taken", "extra",
    )  # fmt: skip
    readonly_fields = ("session_shown", "starts_at", "ends_at", "taken", "desk_taken", "extra")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # slices come with their session


@admin.register(BookingRule)
class BookingRuleAdmin(AuditedAdmin):
    list_display = (
        "scope",
        "release_days_ahead",
        "release_time",
        "booking_cutoff_minutes",
        "cancel_deadline_days_before",
        "cancel_deadline_time",
        "payment_window_minutes",
        "max_per_department_per_day",
        "max_departments_per_day",
        "waitlist_cutoff_hours",
    )

    @admin.display(description=_("department"))
    def scope(self, rule: BookingRule) -> str:
        return str(rule.department or gettext("Hospital default"))


@admin.register(QueueRule)
class QueueRuleAdmin(AuditedAdmin):
    list_display = (
        "scope",
        "opens_minutes_before",
        "grace_minutes",
        "priority_every",
        "priority_age",
        "results_every",
        "missed_back_after",
    )

    @admin.display(description=_("department"))
    def scope(self, rule: QueueRule) -> str:
        return str(rule.department or gettext("Hospital default"))
