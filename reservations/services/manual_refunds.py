"""Refunds issued by hand in the administration: a complaint, a visit the hospital could not give, or an
automatic refund the gateway gave up on.

The money goes back through the same door as every other refund: a ``Refund`` row sent to the payment's
gateway by ``refund_process`` after commit, settled by ``refunds.refund_settle``, which tells the patient
("refunded") once the gateway confirms.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.errors import AppError
from medcard.models import AuditEvent, User
from medcard.services.audit import audit_record
from reservations import notifications
from reservations.models import Booking, Payment, Refund
from reservations.services import payments
from reservations.services.booking import _cancel_and_release

REFUND_REASON_MIN_LENGTH = 4  # as for any reason staff give ("reason_missing" says so)


def refund_manual(*, staff: User, payment_id: int, reason: str, now: datetime | None = None) -> Refund:
    """Refund a payment by hand, with a reason, through its gateway; audited in the same transaction.

    Rules: a reason of at least four characters; the payment is paid (not free), or its refund failed at the
    gateway (that same refund, same refund number, is sent again: the gateway refunds a number once);
    a booked number is cancelled first and its place released to the slice and the waitlist (the patient
    is told it was cancelled, with the reason); a visit already checked in, seen or missed keeps its status.
    Anything else is refused (``not_refundable``) and nothing changes.
    """
    now = now or timezone.now()
    reason = " ".join((reason or "").split())
    if len(reason) < REFUND_REASON_MIN_LENGTH:
        raise AppError("reason_missing")
    with transaction.atomic():
        # Locked: a gateway notification, a cancellation or a second administrator settle on one outcome.
        payment = Payment.objects.select_for_update().select_related("booking__patient").get(pk=payment_id)
        booking = payment.booking
        existing = Refund.objects.select_for_update().filter(payment=payment).first()
        before = {"payment": payment.status, "booking": booking.status}
        if existing is not None and existing.status == Refund.Status.FAILED:
            Refund.objects.filter(pk=existing.pk).update(
                status=Refund.Status.REQUESTED, attempts=0, updated_at=now
            )
            payments.refund_enqueue(refund_id=existing.pk)
            refund = existing
        elif existing is None and payment.status == Payment.Status.PAID and payment.amount > 0:
            if booking.status == Booking.Status.BOOKED:
                # Cancelling settles the payment: it is marked refunded and its refund sent after commit.
                if not _cancel_and_release(
                    booking=booking, from_status=booking.status, reason=reason, now=now, settle_reason=reason
                ):
                    raise AppError("changed")
                notifications.booking_notify(booking_id=booking.pk, kind="cancelled")
            else:
                Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.REFUNDED, updated_at=now)
                refund = payments._refund_create(payment=payment, reason=reason)
                payments.refund_enqueue(refund_id=refund.pk)
            refund = Refund.objects.get(payment=payment)
        else:
            raise AppError("not_refundable")
        booking.refresh_from_db(fields=["status"])
        audit_record(
            actor=staff,
            patient=booking.patient,
            action=AuditEvent.Action.REFUND_MANUAL,
            reason=reason,
            target=f"payment {payment.pk}",
            detail=f"refund {refund.refund_no} of {payment.amount} yuan ({payment.channel})",
            changes={
                "payment": [before["payment"], Payment.Status.REFUNDED],
                "booking": [before["booking"], booking.status],
                "refund": [existing.status if existing else None, Refund.Status.REQUESTED],
            },
        )
    return refund
