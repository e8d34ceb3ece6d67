"""Admin of bookings, payments, refunds, the waitlist and no-show waivers.

Bookings are found by card number, mobile number (through its blind index: mobiles are stored encrypted) or
visit date; patients appear masked, and opening a booking or looking a patient up is recorded in the audit.
Nothing here edits a booking directly: a manual refund goes through ``refund_manual`` (the gateway, the
patient's message), a waiver through ``no_show_waive``; both are audited by their service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from medcard.admin_audit import admin_read_audit
from medcard.cardnumber import card_number_normalise
from medcard.models import Patient, User
from medcard.services.accounts import mobile_index, mobile_normalise
from reservations.admin_schedules import SessionShown
from reservations.models import Booking, NoShowWaiver, Payment, Refund, WaitlistEntry
from reservations.services import noshow
from reservations.services.manual_refunds import REFUND_REASON_MIN_LENGTH, refund_manual

CARD_NUMBER_DIGITS = 12


def _staff(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def patient_filter(term: str, *, prefix: str) -> tuple[Q, str] | None:
    """The filter for a search term that is a card number or a mobile number, and which of the two it is.

    A mobile number is stored encrypted: it is matched by its blind index, on the patient or on the account
    that booked."""
    compact = card_number_normalise(term.strip())
    if compact.isdigit() and len(compact) == CARD_NUMBER_DIGITS:
        return Q(**{f"{prefix}patient__cards__number": compact}), "card number"
    try:
        index = mobile_index(mobile_normalise(term))
    except ValidationError:
        return None
    return Q(**{f"{prefix}patient__mobile_index": index}) | Q(**{f"{prefix}account__mobile_index": index}), (
        "mobile number"
    )


class PatientSearchMixin(admin.ModelAdmin[Any]):
    """Search by card number, mobile number or date (``date_search_field``); a patient look-up is audited."""

    patient_prefix = ""
    date_search_field = ""

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> Any:
        term = search_term.strip()
        try:
            day = parse_date(term) if term else None
        except ValueError:  # well formed but impossible (2026-02-30): searched as text
            day = None
        if day is not None and self.date_search_field:
            return queryset.filter(**{self.date_search_field: day}), False
        found = patient_filter(term, prefix=self.patient_prefix) if term else None
        if found is None:
            return super().get_search_results(request, queryset, search_term)
        condition, kind = found
        results = queryset.filter(condition).distinct()
        patients = {
            row for row in results.values_list(f"{self.patient_prefix}patient", flat=True).distinct()[:2]
        }
        # A look-up by card or mobile number is a read of who the patient is: recorded, the term itself not.
        admin_read_audit(
            request=request,
            patient=Patient.objects.get(pk=patients.pop()) if len(patients) == 1 else None,
            detail=f"admin search of {self.model._meta.model_name} by {kind}",
        )
        return results, True


class RefundReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for the refund"),
        min_length=REFUND_REASON_MIN_LENGTH,
        max_length=200,
        strip=True,
        widget=forms.TextInput(attrs={"class": "vTextField", "size": 60}),
    )


class ManualRefundMixin(admin.ModelAdmin[Any]):
    """The "Refund by hand" action: asks for a reason on a confirmation page, then refunds each payment."""

    # How this admin's rows reach their payments: "booking__in" for bookings, "pk__in" for payments.
    refund_rows_lookup = "pk__in"

    def payments_of(self, queryset: QuerySet[Any]) -> list[Payment]:
        """The chosen rows' payments that can be refunded: paid, or with a refund the gateway failed."""
        return list(
            Payment.objects.select_related("booking__patient")
            .filter(**{self.refund_rows_lookup: queryset})
            .filter(Q(status=Payment.Status.PAID) | Q(refund__status=Refund.Status.FAILED))
            .order_by("pk")
        )

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("reservations.change_payment"))

    @admin.action(description=_("Refund by hand"), permissions=["refund"])
    def refund_manually(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        chosen = self.payments_of(queryset)
        if not chosen:
            self.message_user(request, gettext("None of these has a paid fee to refund."), messages.WARNING)
            return None
        form = RefundReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for payment in chosen:
                try:
                    refund = refund_manual(
                        staff=request.user,  # type: ignore[arg-type]
                        payment_id=payment.pk,
                        reason=form.cleaned_data["reason"],
                    )
                except AppError as refusal:
                    self.message_user(request, f"{payment.order_no}: {refusal.message}", messages.ERROR)
                    continue
                refund.refresh_from_db()
                self.message_user(
                    request,
                    gettext("Refund %(refund)s of %(amount)s yuan for order %(order)s: %(status)s.")
                    % {
                        "refund": refund.refund_no,
                        "amount": refund.amount,
                        "order": payment.order_no,
                        "status": refund.get_status_display(),
                    },
                    messages.SUCCESS,
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Refund by hand"),
            "opts": self.model._meta,
            "payments": chosen,
            "queryset": queryset,
            "form": form,
            "action_name": "refund_manually",
        }
        return TemplateResponse(request, "admin/reservations/refund_manual.html", context)


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PaymentInline(admin.TabularInline[Payment, Booking]):
    model = Payment
    extra = 0
    fields = ("order_no", "channel", "amount", "status", "paid_at", "refund_status")
    readonly_fields = fields

    @admin.display(description=_("refund"))
    def refund_status(self, payment: Payment) -> str:
        refund = Refund.objects.filter(payment=payment).first()
        return f"{refund.refund_no} · {refund.get_status_display()}" if refund else "—"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BookingShown:
    """The ``booking_shown`` column: a booking by number, date and status in words."""

    @admin.display(description=_("booking"), ordering="booking__visit_date")
    def booking_shown(self, obj: Any) -> str:
        booking = obj.booking
        if booking is None:
            return "—"
        return f"#{booking.pk} {booking.visit_date:%Y-%m-%d} {booking.get_status_display()}"


class _MaskedPatient:
    @admin.display(description=_("patient"))
    def patient_masked(self, obj: Any) -> str:
        return obj.patient.masked_name

    @admin.display(description=_("card number"))
    def card_number(self, obj: Any) -> str:
        card = obj.patient.cards.filter(status="active").first()
        return card.number if card else "—"


@admin.register(Booking)
class BookingAdmin(SessionShown, _MaskedPatient, PatientSearchMixin, ManualRefundMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "patient_masked",
        "card_number",
        "visit_date",
        "department",
        "session_shown",
        "slot_time",
        "queue_number",
        "status",
        "source",
        "fee",
    )
    list_filter = ("status", "source", "department", "from_waitlist")
    date_hierarchy = "visit_date"
    search_fields = ("payments__order_no",)
    date_search_field = "visit_date"
    list_select_related = ("patient", "department", "session__doctor", "session__department", "slot")
    actions = ("refund_manually",)
    fields = (
        "patient_masked",
        "card_number",
        "account_masked",
        "session_shown",
        "slot_time",
        "department",
        "visit_date",
        "status",
        "fee",
        "queue_number",
        "source",
        "from_waitlist",
        "cancel_reason",
        "gate",
        "gate_status",
        "hold_expires_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = (PaymentInline,)

    @admin.display(description=_("time slice"), ordering="slot__starts_at")
    def slot_time(self, booking: Booking) -> str:
        return timezone.localtime(booking.slot.starts_at).strftime("%H:%M")

    @admin.display(description=_("account"))
    def account_masked(self, booking: Booking) -> str:
        return booking.account.masked_mobile or str(booking.account)

    refund_rows_lookup = "booking__in"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        booking = self.get_object(request, object_id)
        if booking is not None and request.method == "GET":
            admin_read_audit(
                request=request,
                patient=booking.patient,
                detail="admin booking page",
                target=f"booking {booking.pk}",
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Payment)
class PaymentAdmin(BookingShown, PatientSearchMixin, ManualRefundMixin, ReadOnlyAdmin):
    list_display = (
        "order_no",
        "booking_shown",
        "channel",
        "amount",
        "status",
        "paid_at",
        "refund_status",
        "receipt_no",
    )
    list_filter = ("status", "channel", "desk_method")
    date_hierarchy = "created_at"
    search_fields = ("order_no", "transaction_id", "receipt_no")
    patient_prefix = "booking__"
    date_search_field = "booking__visit_date"
    list_select_related = ("booking",)
    actions = ("refund_manually",)

    @admin.display(description=_("refund"))
    def refund_status(self, payment: Payment) -> str:
        refund = Refund.objects.filter(payment=payment).first()
        return refund.get_status_display() if refund else "—"


@admin.register(Refund)
class RefundAdmin(PatientSearchMixin, ReadOnlyAdmin):
    list_display = (
        "refund_no",
        "payment",
        "amount",
        "reason",
        "status",
        "attempts",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", "payment__channel")
    date_hierarchy = "created_at"
    search_fields = ("refund_no", "payment__order_no")
    patient_prefix = "payment__booking__"
    date_search_field = "payment__booking__visit_date"
    list_select_related = ("payment",)


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(SessionShown, BookingShown, _MaskedPatient, PatientSearchMixin, ReadOnlyAdmin):
    list_display = (
        "id", "patient_masked", "card_number", "session_shown", "status", "booking_shown", "created_at",
    )  # fmt: skip
    list_filter = ("status", "session__department")
    date_hierarchy = "created_at"
    date_search_field = "session__date"
    list_select_related = ("patient", "session__doctor", "session__department", "booking")


class NoShowWaiverForm(forms.ModelForm[NoShowWaiver]):
    class Meta:
        model = NoShowWaiver
        fields = ("booking", "reason")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "booking" in self.fields:  # the add form (a waiver given is only viewed)
            self.fields["booking"].queryset = Booking.objects.filter(  # type: ignore[attr-defined]
                status=Booking.Status.NO_SHOW, no_show_waiver__isnull=True
            )

    def clean_reason(self) -> str:
        reason = " ".join(self.cleaned_data.get("reason", "").split())
        if len(reason) < noshow.WAIVE_REASON_MIN_LENGTH:
            raise ValidationError(gettext("Give the reason (at least 4 characters)."))
        return reason


@admin.register(NoShowWaiver)
class NoShowWaiverAdmin(BookingShown, ReadOnlyAdmin):
    """A waiver is added through ``no_show_waive`` (which audits it); a waiver given is never edited."""

    form = NoShowWaiverForm
    list_display = ("booking_shown", "patient_masked", "staff", "reason", "at")
    date_hierarchy = "at"
    raw_id_fields = ("booking",)
    list_select_related = ("booking__patient", "staff")

    @admin.display(description=_("patient"))
    def patient_masked(self, waiver: NoShowWaiver) -> str:
        return waiver.booking.patient.masked_name

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("reservations.add_noshowwaiver"))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # The form let only an unwaived no-show and a reason through; the service checks again and audits.
        waiver = noshow.no_show_waive(
            staff=request.user,  # type: ignore[arg-type]
            booking_id=form.cleaned_data["booking"].pk,
            reason=form.cleaned_data["reason"],
        )
        obj.pk, obj.at, obj.staff_id = waiver.pk, waiver.at, waiver.staff_id
        obj._state.adding = False
