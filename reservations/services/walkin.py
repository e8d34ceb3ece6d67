"""Walk-ins at the front desk (现场挂号): sell the patient in front of the desk a number kept back for the
desk, or an extra number (加号) made for that patient, with the fee taken in cash, by bank card, or by a
WeChat Pay / Alipay code shown on the desk screen."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import AppError
from medcard.models import AuditEvent, Patient, User
from medcard.services.audit import audit_record
from reservations.models import (
    Booking,
    BookingRule,
    BookingSource,
    DeskMethod,
    Payment,
    Session,
    Slot,
)
from reservations.services import payments

CODE_METHODS = {
    DeskMethod.WECHAT_CODE: Payment.Channel.WECHATPAY,
    DeskMethod.ALIPAY_CODE: Payment.Channel.ALIPAY,
}
SOURCES = (BookingSource.DESK, BookingSource.EXTRA)


@dataclass(frozen=True)
class WalkIn:
    booking: Booking
    payment: Payment
    pay_url: str  # where the code on the desk screen leads (empty for cash and card)


def _take(*, slot_id: int, source: str, now: datetime) -> bool:
    """Take the number in one conditional update, so two desks never sell the last desk number twice and an
    extra number is never free for a moment (the waitlist and online patients never see it)."""
    still_open = Slot.objects.filter(pk=slot_id, ends_at__gt=now, session__status=Session.Status.OPEN)
    if source == BookingSource.DESK:
        return (
            still_open.filter(desk_taken__lt=F("desk_capacity")).update(desk_taken=F("desk_taken") + 1) == 1
        )
    return still_open.update(capacity=F("capacity") + 1, extra=F("extra") + 1, taken=F("taken") + 1) == 1


def _refusal(*, slot: Slot, now: datetime) -> AppError:
    if slot.session.status != Session.Status.OPEN:
        return AppError("session_stopped")
    if slot.ends_at <= now:
        return AppError("slice_ended")
    return AppError("desk_quota_full")


def walk_in_sell(
    *,
    staff: User,
    patient_id: int,
    slot_id: int,
    source: str,
    method: str,
    amount: Decimal | None = None,
    now: datetime | None = None,
) -> WalkIn:
    """Sell a desk-kept or an extra number of a slice that has not ended, in an open session, to this patient.

    Cash and card book the number at once with a receipt; a WeChat/Alipay code holds it for the payment
    window and the provider's notification books it. One active number per patient per session (the
    database's unique index); the amount typed at the desk must be the fee. Audited in the same transaction.
    """
    now = now or timezone.now()
    if source not in SOURCES:
        raise AppError("invalid")
    if method not in DeskMethod.values:
        raise AppError("payment_method")
    slot = Slot.objects.select_related("session__department").filter(pk=slot_id).first()
    patient = Patient.objects.filter(pk=patient_id).first()
    link = patient.links.select_related("account").order_by("id").first() if patient else None
    if slot is None or patient is None or link is None:
        raise AppError("not_found")
    session = slot.session
    if amount is not None and amount != session.fee:
        raise AppError("amount_mismatch", taken=str(amount), fee=str(session.fee))
    by_code = method in CODE_METHODS
    rule = (
        BookingRule.objects.filter(department=session.department).first()
        or BookingRule.objects.filter(department__isnull=True).first()
    )
    window = rule.payment_window() if rule else BookingRule().payment_window()
    try:
        with transaction.atomic():
            if not _take(slot_id=slot.pk, source=source, now=now):
                raise _refusal(slot=slot, now=now)
            booking = Booking.objects.create(
                patient=patient,
                account=link.account,
                session=session,
                slot=slot,
                department=session.department,
                visit_date=session.date,
                fee=session.fee,
                source=source,
                status=Booking.Status.HELD if by_code else Booking.Status.BOOKED,
                hold_expires_at=now + window if by_code else None,
                created_at=now,
            )
            payment = Payment.objects.create(
                booking=booking,
                channel=CODE_METHODS.get(method, Payment.Channel.DESK),  # type: ignore[call-overload]
                trade_type="h5" if method == DeskMethod.WECHAT_CODE else "",
                order_no=f"TMP{secrets.token_hex(8)}",
                amount=session.fee,
                desk_method=method,
                recorded_by=staff,
                status=Payment.Status.CREATED if by_code else Payment.Status.PAID,
                paid_at=None if by_code else now,
                transaction_id="" if by_code else f"desk:{staff.username}",
            )
            payment.order_no = payments.order_number(prefix="WK", pk=payment.pk)
            payment.receipt_no = payments.receipt_number(payment_id=payment.pk)
            payment.save(update_fields=["order_no", "receipt_no"])
            audit_record(
                actor=staff,
                patient=patient,
                action=AuditEvent.Action.WALK_IN_SOLD,
                target=f"booking {booking.pk}",
                changes={
                    "status": [None, booking.status],
                    "source": [None, source],
                    "slot": [None, slot.pk],
                    "method": [None, method],
                    "paid": [None, None if by_code else str(session.fee)],
                    "receipt": [None, payment.receipt_no],
                },
            )
    except IntegrityError:
        raise AppError("already_booked") from None
    pay_url = payments.desk_code_payment_url(payment_id=payment.pk) if by_code else ""
    return WalkIn(booking=booking, payment=payment, pay_url=pay_url)
