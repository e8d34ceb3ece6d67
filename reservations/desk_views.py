"""The front desk's patient flow: find the patient (scan, card number and second factor, or an audited
search), see their numbers of today and later, check them in, print the queue ticket."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.clock import local_today
from core.errors import AppError
from medcard import roles, tokens
from medcard import services as medcard_services
from medcard.forms import DeskScanForm
from medcard.models import Patient, User
from medcard.views import role_required
from reservations import selectors, services
from reservations.models import Booking, BookingSource, Department, DeskMethod, Payment, Slot


class DeskSearchForm(forms.Form):
    query = forms.CharField(
        label=gettext_lazy("Search by full name, mobile number or card number"),
        max_length=60,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


@role_required(roles.FRONT_DESK)
@never_cache
@require_http_methods(["GET", "POST"])
def desk_home(request: HttpRequest) -> HttpResponse:
    """Scan a card (a USB scanner types the token and Enter), type a card number with a second factor, or
    search; a single match opens the patient's numbers."""
    staff: User = request.user  # type: ignore[assignment]
    scan_form = DeskScanForm(request.POST if "code" in request.POST else None)
    search_form = DeskSearchForm(request.POST if "query" in request.POST else None)
    context: dict[str, Any] = {"scan_form": scan_form, "search_form": search_form}
    status = 200
    try:
        if request.method == "POST" and "code" in request.POST and scan_form.is_valid():
            code = scan_form.cleaned_data["code"].strip()
            if code.upper().startswith(tokens.PREFIX):
                result = medcard_services.desk_lookup_token(staff=staff, token=code)
            elif "send_sms" in request.POST:
                context["sms_sent_to"] = medcard_services.desk_send_sms_code(staff=staff, number=code)
                return render(request, "reservations/desk/home.html", context)
            else:
                result = medcard_services.desk_lookup_card_number(
                    staff=staff,
                    number=code,
                    id_last4=scan_form.cleaned_data["id_last4"],
                    sms_code=scan_form.cleaned_data["sms_code"],
                )
            return redirect("reservations:desk-patient", patient_id=result.patient.pk)
        if request.method == "POST" and "query" in request.POST and search_form.is_valid():
            found = medcard_services.desk_patient_search(staff=staff, query=search_form.cleaned_data["query"])
            if len(found) == 1:
                return redirect("reservations:desk-patient", patient_id=found[0].pk)
            context["found"] = found
            context["searched"] = True
        elif request.method == "POST":
            status = 400
    except AppError as exc:
        context["refusal"], status = exc, 400
    except ValidationError as exc:
        context["refusal"], status = AppError("invalid", exc.messages[0]), 400
    return render(request, "reservations/desk/home.html", context, status=status)


@role_required(roles.FRONT_DESK)
@never_cache
@require_GET
def desk_patient(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient's numbers today and later, masked; opening it is an audited staff read."""
    patient = medcard_services.desk_patient_open(staff=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    if patient is None:
        raise Http404
    today = local_today()
    bookings = selectors.desk_appointments(patient=patient, today=today)
    context = {
        "patient": patient,
        "suspension": selectors.no_show_suspension(patient=patient, today=today),
        "no_shows": selectors.no_shows_recent(patient=patient, today=today),
        "card": patient.cards.filter(status="active").first(),
        "today_bookings": [b for b in bookings if b.visit_date == today],
        "later_bookings": [b for b in bookings if b.visit_date > today],
    }
    return render(request, "reservations/desk/patient.html", context)


@role_required(roles.FRONT_DESK)
@require_POST
def desk_check_in(request: HttpRequest, booking_id: int) -> HttpResponse:
    try:
        booking = services.booking_check_in(staff=request.user, booking_id=booking_id)  # type: ignore[arg-type]
    except AppError as exc:
        patient_id = request.POST.get("patient", "")
        context = {
            "refusal": exc,
            "back": f"/booking/desk/patients/{patient_id}/" if patient_id.isdigit() else "",
        }
        return render(request, "reservations/desk/refused.html", context, status=exc.status)
    return redirect("reservations:desk-ticket", booking_id=booking.pk)


@role_required(roles.FRONT_DESK)
@never_cache
@require_GET
def desk_ticket(request: HttpRequest, booking_id: int) -> HttpResponse:
    """The printable queue ticket: number, room, how many are ahead."""
    ticket = selectors.queue_ticket(booking_id=booking_id)
    return render(request, "reservations/desk/ticket.html", {"ticket": ticket, "printed_at": timezone.now()})


# --- Walk-ins ----------------------------------------------------------------------------------------------


@role_required(roles.FRONT_DESK)
@never_cache
@require_GET
def walk_in(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Today's open sessions with the slices still running: sell a desk-kept or an extra number."""
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise Http404
    department = request.GET.get("department", "")
    rows = selectors.walk_in_sessions(day=local_today(), department=department, now=timezone.now())
    context = {
        "patient": patient,
        "rows": rows,
        "department": department,
        "departments": Department.objects.order_by("sort_order", "code"),
    }
    return render(request, "reservations/desk/walk_in.html", context)


def _amount(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip()) if text.strip() else None
    except InvalidOperation:
        return Decimal("-1")  # refused by the service as not the fee


@role_required(roles.FRONT_DESK)
@never_cache
@require_http_methods(["GET", "POST"])
def walk_in_confirm(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The confirmation step of a sale: the number, the fee and the method; only a confirmed POST sells."""
    patient = Patient.objects.filter(pk=patient_id).first()
    data = request.POST if request.method == "POST" else request.GET
    slot_id = data.get("slot") or ""
    slot = (
        Slot.objects.select_related("session__department", "session__doctor").filter(pk=int(slot_id)).first()
        if slot_id.isdigit()
        else None
    )
    if patient is None or slot is None:
        raise Http404
    source = data.get("source", "")
    context: dict[str, Any] = {
        "patient": patient,
        "slot": slot,
        "source": source,
        "source_label": dict(BookingSource.choices).get(source, ""),
        "methods": DeskMethod.choices,
        "method": data.get("method", ""),
    }
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            sale = services.walk_in_sell(
                staff=request.user,  # type: ignore[arg-type]
                patient_id=patient.pk,
                slot_id=slot.pk,
                source=source,
                method=request.POST.get("method", ""),
                amount=_amount(request.POST.get("amount", "")),
            )
        except AppError as exc:
            context["refusal"] = exc
            return render(request, "reservations/desk/walk_in_confirm.html", context, status=exc.status)
        if sale.pay_url:
            return redirect("reservations:desk-code", payment_id=sale.payment.pk)
        return redirect("reservations:staff-receipt", payment_id=sale.payment.pk)
    return render(request, "reservations/desk/walk_in_confirm.html", context)


@role_required(roles.FRONT_DESK)
@never_cache
@require_GET
def desk_code(request: HttpRequest, payment_id: int) -> HttpResponse:
    """The WeChat/Alipay code on the desk screen; the page reloads itself until the payment is confirmed by
    the provider's notification, then shows the receipt link (no JavaScript needed)."""
    payment = (
        Payment.objects.select_related("booking__patient", "booking__session__department", "booking__slot")
        .filter(pk=payment_id)
        .exclude(desk_method="")
        .first()
    )
    if payment is None:
        raise Http404
    context: dict[str, Any] = {"payment": payment, "booking": payment.booking}
    if payment.status == Payment.Status.CREATED and payment.booking.status == "held":
        try:
            url = services.desk_code_payment_url(payment_id=payment.pk)
        except AppError as exc:
            context["refusal"] = exc
        else:
            context["qr_svg"] = segno.make(url, error="m").svg_inline(scale=6, dark="#111", light="#fff")
            context["pay_url"] = url
    return render(request, "reservations/desk/code.html", context)


@role_required(roles.FRONT_DESK)
@require_POST
def no_show_waive(request: HttpRequest, booking_id: int) -> HttpResponse:
    """Forgive one missed appointment with a reason (recorded)."""
    patient_id = Booking.objects.filter(pk=booking_id).values_list("patient_id", flat=True).first()
    if patient_id is None:
        raise Http404
    try:
        staff: User = request.user  # type: ignore[assignment]
        services.no_show_waive(staff=staff, booking_id=booking_id, reason=request.POST.get("reason", ""))
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The missed appointment no longer counts."))
    return redirect("reservations:desk-patient", patient_id=patient_id)


# --- The self-service kiosk ---------------------------------------------------------------------------------


@role_required(roles.FRONT_DESK)
@never_cache
@require_http_methods(["GET", "POST"])
def kiosk(request: HttpRequest) -> HttpResponse:
    """A self-service terminal signed in with a desk account: the patient scans their card's QR and every
    booked number of today is checked in; the screen shows the tickets, then returns to the scan."""
    context: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        staff: User = request.user  # type: ignore[assignment]
        try:
            found = medcard_services.desk_lookup_token(
                staff=staff, token=request.POST.get("code", "").strip()
            )
            today = local_today()
            todays = [
                b
                for b in selectors.desk_appointments(patient=found.patient, today=today)
                if b.visit_date == today and b.status in (Booking.Status.BOOKED, Booking.Status.CHECKED_IN)
            ]
            if not todays:
                raise AppError("no_number_today")
            tickets = []
            for booking in todays:
                services.booking_check_in(staff=staff, booking_id=booking.pk)
                tickets.append(selectors.queue_ticket(booking_id=booking.pk))
            context["tickets"] = tickets
        except AppError as exc:
            context["refusal"], status = exc, exc.status
    return render(request, "reservations/desk/kiosk.html", context, status=status)
