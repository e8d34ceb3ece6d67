"""Paying for held numbers, gateway notifications, hold expiry, refunds and reconciliation.

Gateway calls (slow I/O) never run inside a transaction: the row changes are compare-and-set updates done
before or after them, so a notification, the expiry sweep and a cancellation racing each other settle on one
outcome. A payment that lands on a number that is no longer held is refunded automatically.
"""

from __future__ import annotations

import functools
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import AppError
from medcard.models import AuditEvent, User
from medcard.services.audit import audit_record
from reservations import notifications, tasks
from reservations.models import Booking, Payment, Refund, WaitlistEntry, WechatOpenid
from reservations.payments.base import (
    GatewayError,
    GatewayOrderState,
    NotificationRejected,
    OrderPaid,
)
from reservations.payments.base import Notification as GatewayNotification
from reservations.payments.gateways import gateway_for
from reservations.payments.keys import wechatpay_config
from reservations.payments.wechatpay.client import JsapiIntent, WechatPayGateway
from reservations.selectors import booking_for_account
from reservations.services import waitlist
from reservations.services.booking import _release_capacity
from reservations.services.gates import booking_payment_check, hold_gate_lapsed
from reservations.services.money import from_fen, money, to_fen
from reservations.services.refunds import (
    DUPLICATE_PAYMENT_REASON,
    LATE_PAYMENT_REASON,
    refund_notify_url,
    refund_settle,
)

logger = logging.getLogger(__name__)

ONLINE_CHANNELS = (Payment.Channel.WECHATPAY, Payment.Channel.ALIPAY)
EXPIRY_BATCH = 200


@dataclass(frozen=True)
class PaymentStart:
    payment: Payment
    pay_url: str  # empty for a WeChat JSAPI order: the page hands ``jsapi_params`` to the WeChat bridge
    jsapi_params: dict[str, str] | None = None


def wechat_openid_get(*, account: User, appid: str) -> str | None:
    """The account's openid for ``appid``, learnt through WeChat OAuth, or None."""
    return WechatOpenid.objects.filter(account=account, appid=appid).values_list("openid", flat=True).first()


def wechat_openid_record(*, account: User, appid: str, openid: str) -> None:
    """Keep the account's openid for ``appid`` (one per account and appid; a new one replaces the old)."""
    WechatOpenid.objects.update_or_create(account=account, appid=appid, defaults={"openid": openid})


def _order_no(prefix: str, pk: int) -> str:
    # Ours, unique, unguessable enough not to be enumerated, 32 characters at most (both providers' limit).
    return f"{prefix}{timezone.now():%y%m%d}{pk:010d}{secrets.token_hex(3).upper()}"


def payment_start(
    *, account: User, booking_id: int, channel: str, now: datetime | None = None, jsapi: bool = False
) -> PaymentStart:
    """Create (or reuse) the gateway order for a held number and return where the patient pays.

    Rules: the booking is the account's, held, and its payment window is still open; one open order per
    channel (a retry reuses it, and the gateway treats the same order number idempotently). ``jsapi``
    (WeChat Pay inside WeChat's browser) needs the account's openid from the OAuth step, else it is
    refused with code ``openid_required``.
    """
    now = now or timezone.now()
    if channel not in ONLINE_CHANNELS:
        raise AppError("channel")
    booking = booking_for_account(account=account, booking_id=booking_id)
    if booking.status in (Booking.Status.BOOKED, Booking.Status.CHECKED_IN):
        raise AppError("not_payable", _already_paid_message())
    if (
        booking.status != Booking.Status.HELD
        or booking.hold_expires_at is None
        or booking.hold_expires_at <= now
    ):
        raise AppError("not_payable")
    booking_payment_check(booking=booking)  # a screened number is paid for only once approved
    payer_openid = ""
    if jsapi:
        if channel != Payment.Channel.WECHATPAY:
            raise AppError("channel", _("Only WeChat Pay can be paid inside WeChat."))
        payer_openid = wechat_openid_get(account=account, appid=wechatpay_config().appid) or ""
        if not payer_openid:
            message = _("Open this appointment in WeChat and choose Pay with WeChat first.")
            raise AppError("openid_required", message)
    trade_type = ("jsapi" if jsapi else "h5") if channel == Payment.Channel.WECHATPAY else ""
    open_orders = Payment.objects.filter(booking=booking, status=Payment.Status.CREATED)
    # One payment order open at a time (#11): the patient switched channel (or between WeChat's browser and
    # another): the other order is closed at its gateway BEFORE a new one exists, so it can no longer be
    # paid. If it was paid meanwhile, the number is booked and there is nothing more to pay.
    for other in open_orders.exclude(channel=channel, trade_type=trade_type):
        _close_before_another(other)
    payment = open_orders.filter(channel=channel, trade_type=trade_type).first()
    if payment is None:
        with transaction.atomic():
            payment = Payment.objects.create(
                booking=booking,
                channel=channel,
                trade_type=trade_type,
                order_no=f"TMP{secrets.token_hex(8)}",
                amount=booking.fee,
            )
            payment.order_no = _order_no("BK", payment.pk)
            payment.save(update_fields=["order_no"])
    description = f"{booking.department.name_zh} 挂号费"
    notify_url = f"{settings.PUBLIC_BASE_URL}/payments/notify/{channel}/"
    # The patient comes back to a "checking your payment" page until the notification (or our query to the
    # gateway) settles it: never to a stale "awaiting payment" with the pay buttons.
    return_url = (
        settings.PUBLIC_BASE_URL
        + reverse("reservations:booking-detail", kwargs={"booking_id": booking.pk})
        + "?checking=1"
    )
    try:
        gateway = gateway_for(channel)
        if payer_openid:
            assert isinstance(gateway, WechatPayGateway)  # noqa: S101 (checked above: channel is WeChat Pay)
            intent = gateway.create_order(
                order_no=payment.order_no,
                amount_fen=to_fen(payment.amount),
                description=description,
                expires_at=booking.hold_expires_at,
                notify_url=notify_url,
                return_url=return_url,
                payer_openid=payer_openid,
            )
        else:
            intent = gateway.create_order(
                order_no=payment.order_no,
                amount_fen=to_fen(payment.amount),
                description=description,
                expires_at=booking.hold_expires_at,
                notify_url=notify_url,
                return_url=return_url,
            )
    except OrderPaid:
        # This very order was paid and its notification is still on its way: take it now.
        _sync_from_gateway(payment)
        raise AppError("not_payable", _already_paid_message()) from None
    except GatewayError as exc:
        # Say why (and where it went): a gateway that cannot be reached at the configured address is the
        # usual cause on a development machine (PUBLIC_BASE_URL pointing at another port).
        logger.warning(
            "gateway create_order failed: %s",
            exc,
            extra={"order_no": payment.order_no, "channel": channel, "notify_url": notify_url},
        )
        raise AppError("gateway_busy") from None
    if isinstance(intent, JsapiIntent):
        return PaymentStart(payment=payment, pay_url="", jsapi_params=intent.jsapi_params)
    return PaymentStart(payment=payment, pay_url=intent.pay_url)


def _already_paid_message() -> str:
    return _("This number is already paid: your appointment is booked. There is nothing more to pay.")


def _close_before_another(payment: Payment) -> None:
    """Close an open order at its gateway before the patient may start another one (no double charge)."""
    if payment.channel not in ONLINE_CHANNELS:
        return
    try:
        gateway_for(payment.channel).close(order_no=payment.order_no)
    except OrderPaid:
        _sync_from_gateway(payment)  # paid after all: book the number with it
        raise AppError("not_payable", _already_paid_message()) from None
    except GatewayError:
        logger.warning("gateway close failed before a second order", extra={"order_no": payment.order_no})
        message = _(
            "Your unfinished payment with %(channel)s could not be cancelled just now, so paying again could "
            "charge you twice. Please try again in a minute, or finish paying with %(channel)s."
        ) % {"channel": payment.get_channel_display()}
        raise AppError("gateway_busy", message) from None
    Payment.objects.filter(pk=payment.pk, status=Payment.Status.CREATED).update(status=Payment.Status.CLOSED)


# How long after the patient came back from the cashier we wait for the notification before asking the
# gateway ourselves, and how often we ask again (notifications usually arrive within seconds).
CHECK_QUERY_AFTER = timedelta(seconds=5)
CHECK_QUERY_EVERY_S = 5


class PaymentCheck:
    BOOKED = "booked"
    CHECKING = "checking"
    NOT_PAID = "not_paid"
    NOT_HELD = "not_held"


def payment_return_check(
    *, account: User, booking_id: int, returned: bool = True, now: datetime | None = None
) -> str:
    """Where the patient's payment stands (the "checking your payment" page polls this).

    ``booked``: paid and booked. ``checking``: an order is open and its outcome not yet known: wait for the
    notification; from :data:`CHECK_QUERY_AFTER` after the patient ``returned`` from the cashier on (at once
    when the patient opens the appointment another way), ask the gateway, at most every few seconds, and
    act on a payment as a notification would. ``not_paid``: the gateway says the open order is unpaid (or
    there is none): the patient may pay. ``not_held``: the number is neither held nor booked.
    """
    now = now or timezone.now()
    booking = booking_for_account(account=account, booking_id=booking_id)
    if booking.status in (Booking.Status.BOOKED, Booking.Status.CHECKED_IN):
        return PaymentCheck.BOOKED
    if booking.status != Booking.Status.HELD:
        return PaymentCheck.NOT_HELD
    payment = Payment.objects.filter(booking=booking, status=Payment.Status.CREATED).order_by("-id").first()
    if payment is None or payment.channel not in ONLINE_CHANNELS:
        return PaymentCheck.NOT_PAID
    if returned:
        started = cache.get_or_set(f"payment-check:{payment.order_no}:since", now.timestamp(), timeout=3600)
        if now.timestamp() - float(started or now.timestamp()) < CHECK_QUERY_AFTER.total_seconds():
            return PaymentCheck.CHECKING
    if not cache.add(f"payment-check:{payment.order_no}:asked", 1, timeout=CHECK_QUERY_EVERY_S):
        return cache.get(f"payment-check:{payment.order_no}:verdict", PaymentCheck.CHECKING)
    try:
        order = gateway_for(payment.channel).query(order_no=payment.order_no)
    except GatewayError:
        return PaymentCheck.CHECKING  # the gateway is slow: keep waiting, ask again in a moment
    if order.state == GatewayOrderState.PAID and order.amount_fen == to_fen(payment.amount):
        _mark_paid(
            payment=payment, transaction_id=order.transaction_id, paid_at=order.paid_at or timezone.now()
        )
        booking.refresh_from_db()
        return PaymentCheck.BOOKED if booking.status == Booking.Status.BOOKED else PaymentCheck.NOT_HELD
    verdict = PaymentCheck.NOT_PAID if order.state != GatewayOrderState.PAID else PaymentCheck.CHECKING
    cache.set(f"payment-check:{payment.order_no}:verdict", verdict, timeout=CHECK_QUERY_EVERY_S)
    return verdict


def _mark_paid(*, payment: Payment, transaction_id: str, paid_at: datetime) -> None:
    """Record a confirmed payment once; book the number if it is still held, else refund it."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != Payment.Status.CREATED:
            return  # a duplicate or a late repeat of a notification: already settled
        booking = Booking.objects.select_for_update().get(pk=locked.booking_id)
        locked.transaction_id, locked.paid_at = transaction_id, paid_at
        booked = Booking.objects.filter(pk=booking.pk, status=Booking.Status.HELD).update(
            status=Booking.Status.BOOKED, hold_expires_at=None, updated_at=timezone.now()
        )
        already_paid = Payment.objects.filter(booking=booking, status=Payment.Status.PAID).exclude(
            pk=locked.pk
        )
        still_ours = booking.status in (Booking.Status.BOOKED, Booking.Status.CHECKED_IN)
        if booked == 1 or (still_ours and not already_paid.exists()):
            locked.status = Payment.Status.PAID
            locked.save(update_fields=["status", "transaction_id", "paid_at", "updated_at"])
            if booked == 1:
                WaitlistEntry.objects.filter(booking=booking, status=WaitlistEntry.Status.OFFERED).update(
                    status=WaitlistEntry.Status.CONVERTED
                )
                notifications.booking_notify(booking_id=booking.pk, kind="booked")
            return
        # The number was no longer held (expired, cancelled) or is paid twice: give the money back.
        locked.status = Payment.Status.REFUNDED
        locked.save(update_fields=["status", "transaction_id", "paid_at", "updated_at"])
        # The patient hears of it when the refund succeeds (refund_settle), in words that say what happened:
        # a second payment of a number that stays booked, or a payment that came after it was released.
        reason = DUPLICATE_PAYMENT_REASON if still_ours else LATE_PAYMENT_REASON
        refund = _refund_create(payment=locked, reason=reason)
        logger.warning("late payment refunded", extra={"order_no": locked.order_no, "booking": booking.pk})
    refund_enqueue(refund_id=refund.pk)


def payment_notification_receive(*, notification: GatewayNotification) -> None:
    """Act on a verified gateway notification. Duplicates and repeats are harmless; an unknown order or a
    wrong amount is refused (NotificationRejected) and changes nothing."""
    payment = Payment.objects.filter(order_no=notification.order_no, channel=notification.channel).first()
    if payment is None:
        logger.warning("notification for an unknown order", extra={"order_no": notification.order_no})
        raise NotificationRejected("unknown order")
    if notification.amount_fen != to_fen(payment.amount):
        logger.warning(
            "notification amount differs",
            extra={
                "order_no": payment.order_no,
                "ours_fen": to_fen(payment.amount),
                "theirs": notification.amount_fen,
            },
        )
        raise NotificationRejected("amount mismatch")
    if not notification.paid:
        return
    _mark_paid(
        payment=payment,
        transaction_id=notification.transaction_id,
        paid_at=notification.paid_at or timezone.now(),
    )


def desk_payment_record(*, staff: User, booking_id: int) -> Payment:
    """Front desk took the fee in cash or by card: the held number is booked."""
    booking = Booking.objects.get(pk=booking_id)
    if booking.status != Booking.Status.HELD:
        raise AppError("not_payable", _("This number is not awaiting payment."))
    booking_payment_check(booking=booking)
    with transaction.atomic():  # the payment, the booked number and the audit row land together or not at all
        payment = Payment.objects.create(
            booking=booking,
            channel=Payment.Channel.DESK,
            order_no=f"TMP{secrets.token_hex(8)}",
            amount=booking.fee,
            recorded_by=staff,
        )
        payment.order_no = _order_no("DK", payment.pk)
        payment.save(update_fields=["order_no"])
        _mark_paid(payment=payment, transaction_id=f"desk:{staff.username}", paid_at=timezone.now())
        audit_record(
            actor=staff,
            patient=booking.patient,
            action=AuditEvent.Action.DESK_PAYMENT,
            target=f"booking {booking.pk}",
            changes={
                "status": [Booking.Status.HELD, Booking.Status.BOOKED],
                "paid": [None, str(booking.fee)],
            },
        )
    payment.refresh_from_db()
    return payment


# --- Refunds -----------------------------------------------------------------------------------------------


def _refund_create(*, payment: Payment, reason: str) -> Refund:
    """The refund of a payment, created once (a payment has at most one refund: the one-to-one says so)."""
    refund = Refund.objects.filter(payment=payment).first()
    if refund is not None:
        return refund
    try:
        with transaction.atomic():
            refund = Refund.objects.create(
                payment=payment,
                refund_no="TMP" + secrets.token_hex(8),
                amount=payment.amount,
                reason=reason[:200],
            )
            refund.refund_no = _order_no("RF", refund.pk)
            refund.save(update_fields=["refund_no"])
    except IntegrityError:
        refund = Refund.objects.get(payment=payment)
    return refund


def refund_enqueue(*, refund_id: int) -> None:

    transaction.on_commit(lambda: tasks.refund_process.delay(refund_id))


def payments_settle_cancelled(*, booking: Booking, reason: str) -> None:
    """Inside the cancelling transaction: paid payments are refunded, open ones closed (after commit)."""
    for payment in Payment.objects.select_for_update().filter(booking=booking):
        if payment.status == Payment.Status.PAID and payment.amount > 0:
            Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.REFUNDED)
            refund = _refund_create(payment=payment, reason=reason)
            refund_enqueue(refund_id=refund.pk)  # "refunded" is sent when it succeeds: refund_settle
        elif payment.status == Payment.Status.CREATED:
            transaction.on_commit(functools.partial(payment_close, payment_id=payment.pk))


def refund_process(*, refund_id: int) -> str:
    """Ask the gateway to refund (idempotent by refund number); desk payments are refunded at the desk."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status == Refund.Status.SUCCEEDED:
        return refund.status
    payment = refund.payment
    if payment.channel not in ONLINE_CHANNELS:
        return refund_settle(refund_id=refund.pk, state="success")
    Refund.objects.filter(pk=refund.pk).update(attempts=F("attempts") + 1)
    result = gateway_for(payment.channel).refund(
        order_no=payment.order_no,
        refund_no=refund.refund_no,
        amount_fen=to_fen(refund.amount),
        total_fen=to_fen(payment.amount),
        reason=refund.reason,
        notify_url=refund_notify_url(payment.channel),
    )
    # A processing refund is followed up by refunds_follow_up (beat) and WeChat Pay's refund notification.
    return refund_settle(refund_id=refund.pk, state=result.state)


def payment_close(*, payment_id: int) -> None:
    """Close an unpaid gateway order (its number is gone); a paid one is left to the notification."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != Payment.Status.CREATED or payment.channel not in ONLINE_CHANNELS:
        return
    try:
        gateway_for(payment.channel).close(order_no=payment.order_no)
    except GatewayError:
        logger.warning(
            "gateway close failed; the reconciliation will retry", extra={"order_no": payment.order_no}
        )
        return
    Payment.objects.filter(pk=payment.pk, status=Payment.Status.CREATED).update(status=Payment.Status.CLOSED)


# --- Hold expiry -------------------------------------------------------------------------------------------


def holds_expire_due(*, now: datetime | None = None) -> int:
    """Expire holds whose payment window has passed: close the gateway order first, then give the number back
    and offer it to the waitlist. A payment confirmed meanwhile wins (the hold is booked, not expired)."""
    now = now or timezone.now()
    expired = 0
    due = list(
        Booking.objects.filter(status=Booking.Status.HELD, hold_expires_at__lte=now).values_list(
            "pk", flat=True
        )[:EXPIRY_BATCH]
    )
    for booking_id in due:
        for payment in Payment.objects.filter(booking_id=booking_id, status=Payment.Status.CREATED):
            _sync_from_gateway(payment)  # paid at the last second? then it is booked, not expired
            payment_close(payment_id=payment.pk)
        with transaction.atomic():
            booking = Booking.objects.select_for_update().get(pk=booking_id)
            changed = Booking.objects.filter(
                pk=booking_id, status=Booking.Status.HELD, hold_expires_at__lte=now
            ).update(status=Booking.Status.EXPIRED, updated_at=now)
            if changed != 1:
                continue
            _release_capacity(booking.slot_id)
            WaitlistEntry.objects.filter(booking=booking, status=WaitlistEntry.Status.OFFERED).update(
                status=WaitlistEntry.Status.LAPSED
            )
            # A number held for its gate (a screening) lapsed for want of a report or a decision, not of a
            # payment: the gate says so.
            if not hold_gate_lapsed(booking=booking):
                notifications.booking_notify(booking_id=booking_id, kind="expired")
            offer = functools.partial(waitlist.waitlist_offer_task, session_id=booking.session_id)
            transaction.on_commit(offer)
            expired += 1
    return expired


def _sync_from_gateway(payment: Payment) -> None:
    """Ask the gateway about an order whose outcome we have not heard; act as a notification would."""
    if payment.channel not in ONLINE_CHANNELS:
        return
    try:
        order = gateway_for(payment.channel).query(order_no=payment.order_no)
    except GatewayError:
        return
    if order.state == GatewayOrderState.PAID and order.amount_fen == to_fen(payment.amount):
        _mark_paid(
            payment=payment, transaction_id=order.transaction_id, paid_at=order.paid_at or timezone.now()
        )


def payments_reconcile_unknown(
    *, now: datetime | None = None, older_than: timedelta = timedelta(minutes=5)
) -> int:
    """Query the gateway for open orders not heard of for a while (notifications can be lost)."""
    now = now or timezone.now()
    stale = Payment.objects.filter(
        status=Payment.Status.CREATED, channel__in=ONLINE_CHANNELS, created_at__lte=now - older_than
    )[:EXPIRY_BATCH]
    for payment in stale:
        _sync_from_gateway(payment)
    return len(stale)


@dataclass(frozen=True)
class ReconciliationLine:
    order_no: str
    problem: str
    ours: str
    theirs: str


def payments_reconcile_day(
    *, channel: str, bill: list[dict[str, object]], day_payments: list[Payment]
) -> list[ReconciliationLine]:
    """Compare our payments of a day with the gateway's bill; list every difference."""
    ours = {p.order_no: p for p in day_payments if p.channel == channel}
    theirs = {str(row["order_no"]): row for row in bill}
    lines: list[ReconciliationLine] = []
    for order_no, payment in sorted(ours.items()):
        row = theirs.get(order_no)
        settled = payment.status in (Payment.Status.PAID, Payment.Status.REFUNDED)
        if row is None:
            if settled:
                lines.append(ReconciliationLine(order_no, "missing_at_gateway", payment.status, "-"))
            continue
        amount = from_fen(int(row["amount_fen"]))  # type: ignore[call-overload]
        if amount != money(payment.amount):
            lines.append(ReconciliationLine(order_no, "amount_differs", str(payment.amount), str(amount)))
        if str(row["state"]) == "paid" and not settled:
            lines.append(ReconciliationLine(order_no, "paid_at_gateway_only", payment.status, "paid"))
    for order_no, row in sorted(theirs.items()):
        if order_no not in ours:
            lines.append(ReconciliationLine(order_no, "unknown_to_us", "-", str(row["state"])))
    return lines
