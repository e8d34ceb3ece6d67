"""The electronic receipt (PDF) of a paid number: for the account that booked it, and for front-desk staff
(each staff download audited)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from medcard import roles
from medcard import selectors as medcard_selectors
from medcard.models import AuditEvent, User
from medcard.services import audit_record
from reservations import selectors
from reservations.receipt_pdf import receipt_number, receipt_pdf


@never_cache
@require_GET
def booking_receipt(request: HttpRequest, booking_id: int) -> HttpResponse:
    """The receipt PDF of the booking's payment; 404 for other accounts' bookings and unpaid numbers."""
    user = request.user
    if not user.is_authenticated:
        return redirect(f"{reverse('medcard:login')}?next={request.path}")
    account = user
    if account.kind == User.Kind.PATIENT:
        booking = selectors.booking_for_account(account=account, booking_id=booking_id)
    elif medcard_selectors.user_has_role(user=account, role=roles.FRONT_DESK):
        booking = selectors.booking_for_receipt(booking_id=booking_id)
    else:
        raise Http404
    payment = selectors.booking_receipt_payment(booking=booking)
    if payment is None:
        raise Http404("This number has no payment to show a receipt for.")
    content = receipt_pdf(booking=booking, payment=payment)
    if account.kind != User.Kind.PATIENT:
        # A staff read of a patient's record: audited like every other one.
        audit_record(
            actor=account,
            patient=booking.patient,
            action=AuditEvent.Action.RECEIPT_VIEWED,
            target=f"booking {booking.pk}",
            detail=f"receipt {receipt_number(payment)}",
        )
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="receipt-{receipt_number(payment)}.pdf"'
    return response
