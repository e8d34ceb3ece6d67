"""Pluggable notifications to patients (SMS, WeChat template messages), sent by Celery after commit.

A channel plugs in by implementing :class:`Notifier` and naming its class in ``RESERVATION_NOTIFIERS``. Each
message goes to the mobile of the account that made the booking, in Simplified Chinese, with the patient's
name masked. :func:`booking_notify` is what services call; the task renders and sends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache as memoize
from typing import Protocol

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from core.clock import HOSPITAL_TZ, local_today
from medcard import crypto
from medcard.services import audit_record, message_record, task_send
from reservations.models import Booking, HalfDay, Refund, Session

logger = logging.getLogger(__name__)

KINDS = (
    "booked",
    "cancelled",
    "refunded",
    "waitlist_offer",
    "session_stopped",
    "reminder",
    "expired",
    "late_payment_refunded",
    "duplicate_payment_refunded",
)
# How long a sent message is remembered against duplicates: far longer than any redelivery (the broker's
# visibility timeout is an hour) and than the life of a booking's messages.
SENT_MEMORY = timedelta(days=30)
NO_SHOW_GRACE = timedelta(minutes=30)


class NotificationDeliveryError(Exception):
    """A channel could not deliver just now (gateway down, rate limited); the task retries a few times."""


class Notifier(Protocol):
    def send(self, *, account_id: int, mobile: str, title: str, text: str, kind: str) -> None:
        """Deliver one message, or raise NotificationDeliveryError for a transient failure."""
        ...


@dataclass(frozen=True)
class SentMessage:
    channel: str  # "sms" or "wechat_template"
    account_id: int
    mobile: str
    title: str
    text: str
    kind: str
    sent_at: datetime


outbox: list[SentMessage] = []


class SandboxNotifier:
    """Sends nothing: records each message in :data:`outbox` twice, as the SMS and as the WeChat template
    message a real deployment would send. For development, tests and training systems."""

    channels = ("sms", "wechat_template")

    def send(self, *, account_id: int, mobile: str, title: str, text: str, kind: str) -> None:
        for channel in self.channels:
            outbox.append(SentMessage(channel, account_id, mobile, title, text, kind, timezone.now()))


class ConsoleNotifier:
    """Writes each message to the log (the mobile number masked)."""

    def send(self, *, account_id: int, mobile: str, title: str, text: str, kind: str) -> None:
        logger.info(
            "notification",
            extra={"kind": kind, "account_id": account_id, "to": crypto.mask_mobile(mobile), "title": title,
                   "text": text},
        )  # fmt: skip


def sandbox_messages(*, kind: str | None = None, channel: str | None = None) -> list[SentMessage]:
    """The sandbox outbox, optionally only one kind and/or channel (tests read it)."""
    return [
        m for m in outbox if (kind is None or m.kind == kind) and (channel is None or m.channel == channel)
    ]


def notifier_paths() -> list[str]:
    return list(settings.RESERVATION_NOTIFIERS)


@memoize
def _notifier(path: str) -> Notifier:
    notifier: Notifier = import_string(path)()
    return notifier


# --- Entry point -------------------------------------------------------------------------------------------


def booking_notify(*, booking_id: int, kind: str) -> None:
    """Tell the booking's account about ``kind`` (one of :data:`KINDS`) once the current transaction commits.

    Nothing is sent if the transaction rolls back, so a patient is never told about a change that did not
    happen. Sending the same kind for the same booking twice delivers it once.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown notification kind {kind!r}; use one of {', '.join(KINDS)}.")

    # Local: the task module imports this one at load (for its retry exception), so it is looked up here.
    from reservations import tasks_notifications

    # The booking has committed by then: a broker outage keeps the task in the outbox (sent again later)
    # rather than turning it into an error page; robust, so any other failure is only logged.
    transaction.on_commit(
        lambda: task_send(tasks_notifications.booking_notify.si(booking_id, kind)), robust=True
    )


# --- Rendering ---------------------------------------------------------------------------------------------

_TITLES_ZH = {
    "chief": "主任医师",
    "associate_chief": "副主任医师",
    "attending": "主治医师",
    "resident": "住院医师",
}
_WEEKDAYS_ZH = "一二三四五六日"
_HALF_DAYS_ZH = {HalfDay.MORNING: "上午", HalfDay.AFTERNOON: "下午"}


@dataclass(frozen=True)
class RenderedMessage:
    title: str
    text: str


def _yuan(amount: Decimal) -> str:
    """
    >>> _yuan(Decimal("50"))
    '50.00元'
    """
    return f"{amount:.2f}元"


def _when(booking: Booking) -> str:
    starts = booking.slot.starts_at.astimezone(HOSPITAL_TZ)
    ends = booking.slot.ends_at.astimezone(HOSPITAL_TZ)
    half_day = _HALF_DAYS_ZH.get(HalfDay(booking.session.half_day), "")
    return (
        f"{starts:%Y}年{starts.month}月{starts.day}日（周{_WEEKDAYS_ZH[starts.weekday()]}）"
        f"{half_day} {starts:%H:%M}-{ends:%H:%M}"
    )


def _who(booking: Booking) -> str:
    session = booking.session
    if session.doctor is not None:
        title = _TITLES_ZH.get(session.doctor.title, "")
        return f"{session.department.name_zh} {session.doctor.name_zh}{title}"
    return f"{session.department.name_zh} {session.room}".rstrip()


def _refunded_amount(booking: Booking) -> Decimal:
    refund = Refund.objects.filter(payment__booking=booking).order_by("-created_at").first()
    return refund.amount if refund is not None else booking.fee


def message_render(*, booking: Booking, kind: str) -> RenderedMessage:
    """The message for ``kind`` in Simplified Chinese: the patient's masked name, the department and doctor,
    the local date and time, and the amount where money moved or is due."""
    name = booking.patient.masked_name
    visit = f"{_when(booking)} {_who(booking)}"
    hospital = settings.HOSPITAL_NAME["zh-hans"]
    if kind == "booked":
        return RenderedMessage(
            "预约成功",
            f"{name}，您已成功预约{visit}，挂号费{_yuan(booking.fee)}。请于就诊时段开始前30分钟到{hospital}签到。",
        )
    if kind == "cancelled":
        reason = f"（{booking.cancel_reason}）" if booking.cancel_reason else ""
        return RenderedMessage(
            "预约已取消", f"{name}，您{visit}的预约已取消{reason}。已支付的挂号费将原路退回。"
        )
    if kind == "refunded":
        return RenderedMessage(
            "退款成功", f"{name}，您{visit}的挂号费{_yuan(_refunded_amount(booking))}已原路退回，请注意查收。"
        )
    if kind == "waitlist_offer":
        deadline = booking.hold_expires_at.astimezone(HOSPITAL_TZ) if booking.hold_expires_at else None
        pay_by = f"请在{deadline:%H:%M}前" if deadline else "请尽快"
        return RenderedMessage(
            "候补成功",
            f"{name}，您候补的{visit}已有号源并为您保留，{pay_by}支付挂号费{_yuan(booking.fee)}，"
            "逾期将顺延给下一位候补患者。",
        )
    if kind == "session_stopped":
        reason = f"因{booking.session.stopped_reason}" if booking.session.stopped_reason else ""
        return RenderedMessage(
            "停诊通知", f"{name}，很抱歉，{visit}{reason}停诊，您的预约已取消，已支付的挂号费将原路退回。"
        )
    if kind == "reminder":
        # The exam's preparation (fasting, water, metformin before contrast), as staff wrote it in the admin.
        preparation = booking.session.clinic_type.preparation_zh.strip()
        return RenderedMessage(
            "就诊提醒",
            f"{name}，您预约了{visit}，请于就诊时段开始前30分钟到{hospital}签到，携带就诊卡或身份证。"
            + (f"检查前准备：{preparation}" if preparation else ""),
        )
    if kind == "expired":
        return RenderedMessage("预约未完成", f"{name}，您锁定的{visit}号源因未在规定时间内支付，已自动释放。")
    if kind == "late_payment_refunded":
        return RenderedMessage(
            "支付已退回",
            f"{name}，您为{visit}支付的{_yuan(_refunded_amount(booking))}到账时号源已释放，款项已原路退回。",
        )
    if kind == "duplicate_payment_refunded":
        # A second payment for a number that was already paid: the booking stands, only the extra charge
        # goes back (#11: the patient was once told the number had been released, which was false).
        return RenderedMessage(
            "重复支付已退回",
            f"{name}，您为{visit}重复支付的{_yuan(_refunded_amount(booking))}已原路退回；"
            "您的预约仍然有效，请按时就诊。",
        )
    raise ValueError(f"Unknown notification kind {kind!r}.")


# --- Sending -----------------------------------------------------------------------------------------------


def _sent_key(*, booking_id: int, kind: str, notifier: str) -> str:
    return f"reservations:notified:{booking_id}:{kind}:{notifier}"


def booking_notify_send(*, booking_id: int, kind: str) -> int:
    """Render and send one booking's ``kind`` message through every configured notifier; return how many
    notifiers delivered it now (0 for a duplicate, or when the booking or the account's mobile is gone).

    Idempotent per (booking, kind, notifier): a duplicate delivery of the task sends nothing twice. A notifier
    that fails gives its claim back and the task retries for it alone (NotificationDeliveryError).
    """
    booking = (
        Booking.objects.select_related(
            "patient", "account", "slot", "session__department", "session__doctor", "session__clinic_type"
        )
        .filter(pk=booking_id)
        .first()
    )
    if booking is None:
        logger.warning("notification for a booking that does not exist", extra={"booking_id": booking_id})
        return 0
    mobile = booking.account.mobile
    if not mobile:  # a deactivated account gave its number up
        return 0
    message = message_render(booking=booking, kind=kind)
    # The account's own copy ("my messages"): one row per booking and kind, however often this task runs
    # (the same key as the claims below, kept by a unique constraint rather than the cache).
    message_record(
        account_id=booking.account_id,
        kind=kind,
        title=message.title,
        text=message.text,
        dedupe_key=f"booking:{booking_id}:{kind}",
        booking_id=booking_id,
    )
    delivered, failed = 0, []
    for path in notifier_paths():
        key = _sent_key(booking_id=booking_id, kind=kind, notifier=path)
        # The claim: cache.add is atomic in Redis (SET NX), so of two deliveries of the same task (acks_late
        # redelivers when a worker dies, the broker may duplicate) exactly one sends. The claim is taken
        # before sending: a worker dying mid-send loses that message rather than sending it twice.
        if not cache.add(key, 1, timeout=int(SENT_MEMORY.total_seconds())):
            continue
        try:
            _notifier(path).send(
                account_id=booking.account_id,
                mobile=mobile,
                title=message.title,
                text=message.text,
                kind=kind,
            )
        except NotificationDeliveryError:
            cache.delete(key)  # give the claim back, so the retry sends through this notifier
            failed.append(path)
            continue
        delivered += 1
    if failed:
        raise NotificationDeliveryError(f"not delivered through {', '.join(failed)}")
    return delivered


def reminders_send(*, now: datetime) -> int:
    """Queue the evening-before reminder for every booking still ``booked`` whose session is tomorrow (local)
    and not stopped; return how many were queued.

    Each booking's reminder is queued once however often this runs (a claim per booking), and the task sends
    it once however often it is delivered.
    """
    tomorrow = local_today(now=now) + timedelta(days=1)
    booking_ids = Booking.objects.filter(
        status=Booking.Status.BOOKED, session__date=tomorrow, session__status=Session.Status.OPEN
    ).values_list("pk", flat=True)
    queued = 0
    for booking_id in booking_ids:
        if cache.add(
            f"reservations:reminder-queued:{booking_id}", 1, timeout=int(SENT_MEMORY.total_seconds())
        ):
            booking_notify(booking_id=booking_id, kind="reminder")
            queued += 1
    return queued


def no_shows_sweep(*, now: datetime) -> int:
    """Mark as ``no_show`` every booking still ``booked`` (never checked in) whose session ended more than 30
    minutes before ``now``; return how many were marked. Each change writes an audit row."""
    cutoff = now - NO_SHOW_GRACE
    candidates = Booking.objects.filter(
        status=Booking.Status.BOOKED, session__ends_at__lt=cutoff
    ).select_related("patient")
    marked = 0
    for booking in candidates:
        with transaction.atomic():
            # Compare-and-set per row: a patient checked in by the desk a moment ago keeps "checked_in". (One
            # UPDATE over a join would test the status inside a subquery, which PostgreSQL does not re-check
            # after waiting for the desk's row lock.)
            if Booking.objects.filter(pk=booking.pk, status=Booking.Status.BOOKED).update(
                status=Booking.Status.NO_SHOW, updated_at=now
            ):
                audit_record(
                    actor=None,
                    patient=booking.patient,
                    action="booking_no_show",
                    detail=f"booking {booking.pk}",
                )
                marked += 1
    return marked
