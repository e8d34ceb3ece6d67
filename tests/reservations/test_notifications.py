"""Notifications to the booking account's mobile (sandbox SMS and WeChat template messages): sent after
commit, once per booking and kind, in Simplified Chinese; the evening reminder; the no-show sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from django.db import transaction

from core.clock import HOSPITAL_TZ
from hospital.celery import app as celery_app
from medcard.models import AuditEvent, Patient, TaskOutbox, User
from reservations import notifications, schedules
from reservations.models import (
    Booking,
    ClinicType,
    Department,
    Doctor,
    Payment,
    Refund,
    Session,
    WeeklyTemplate,
)
from reservations.notifications import ConsoleNotifier, NotificationDeliveryError, booking_notify
from reservations.tasks_notifications import booking_notify as booking_notify_task

SATURDAY = date(2026, 12, 12)


def _local(*args: int) -> datetime:
    return datetime(*args, tzinfo=HOSPITAL_TZ)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _eager_tasks_and_empty_outbox() -> Iterator[None]:
    """Tasks run in the test's process when enqueued; each test starts with an empty sandbox outbox."""
    eager, propagates = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    notifications.outbox.clear()
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = eager, propagates
    notifications.outbox.clear()


@pytest.fixture
def sessions(db: None) -> None:
    """神经内科, Dr 王建国 (chief physician), Saturday and Sunday mornings, for 12 and 13 December."""
    department = Department.objects.create(code="neurology", name_zh="神经内科", name_en="Neurology")
    doctor = Doctor.objects.create(
        code="dr-wang", department=department, name_zh="王建国", name_en="Wang Jianguo", title="chief"
    )
    clinic_type = ClinicType.objects.create(
        code="expert", name_zh="专家门诊", name_en="Expert clinic", fee=Decimal("50.00")
    )
    for weekday in (5, 6):
        WeeklyTemplate.objects.create(
            department=department, doctor=doctor, clinic_type=clinic_type, weekday=weekday, half_day="am",
            start_time=time(8, 0), end_time=time(11, 0), quota_per_slice=2,
        )  # fmt: skip
    schedules.sessions_generate(days_ahead=1, today=SATURDAY)


def _booking(account: User, *, status: str = "booked", on: date = SATURDAY, **extra: object) -> Booking:
    session = Session.objects.get(date=on)
    slot = session.slots.order_by("starts_at").first()
    assert slot is not None
    if status == "held":
        extra.setdefault("hold_expires_at", _local(2026, 11, 28, 7, 15))
    return Booking.objects.create(
        patient=Patient.objects.get(links__account=account, links__relationship="self"),
        account=account,
        session=session,
        slot=slot,
        department=session.department,
        visit_date=session.date,
        status=status,
        fee=session.fee,
        **extra,
    )


def _texts(kind: str | None = None, channel: str = "sms") -> list[str]:
    return [m.text for m in notifications.sandbox_messages(kind=kind, channel=channel)]


# --- Sending after commit, once ----------------------------------------------------------------------------


@pytest.mark.usefixtures("sessions")
def test_a_message_is_sent_only_once_the_transaction_commits(
    patient: User, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    booking = _booking(patient)
    with django_capture_on_commit_callbacks() as callbacks:  # type: ignore[attr-defined]
        booking_notify(booking_id=booking.pk, kind="booked")
        assert notifications.outbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    sms, wechat = notifications.outbox
    assert (sms.channel, wechat.channel) == ("sms", "wechat_template")
    assert sms.mobile == patient.mobile and sms.account_id == patient.pk
    assert (sms.title, sms.text) == (wechat.title, wechat.text)


@pytest.mark.usefixtures("sessions")
def test_nothing_is_sent_when_the_transaction_rolls_back(
    patient: User, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    booking = _booking(patient)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:  # type: ignore[attr-defined]
        try:
            with transaction.atomic():
                booking_notify(booking_id=booking.pk, kind="cancelled")
                raise RuntimeError("the cancellation failed")
        except RuntimeError:
            pass
    assert callbacks == [] and notifications.outbox == []


@pytest.mark.usefixtures("sessions")
def test_a_broker_outage_after_commit_does_not_fail_the_committed_change(
    patient: User, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    booking = _booking(patient)
    with (
        mock.patch.object(booking_notify_task, "apply_async", side_effect=ConnectionError("broker down")),
        django_capture_on_commit_callbacks(execute=True),  # type: ignore[attr-defined]
    ):
        booking_notify(booking_id=booking.pk, kind="booked")
    assert notifications.outbox == []
    # Kept to be sent again when the broker is back (medcard.services.outbox), not lost.
    (kept,) = TaskOutbox.objects.filter(sent_at__isnull=True)
    assert kept.signature["task"] == booking_notify_task.name
    assert kept.signature["args"] == [booking.pk, "booked"]


@pytest.mark.usefixtures("sessions")
def test_a_duplicate_task_delivery_sends_nothing_twice(patient: User) -> None:
    booking = _booking(patient)
    assert booking_notify_task(booking.pk, "booked") == 2  # the sandbox and the console notifier
    assert booking_notify_task(booking.pk, "booked") == 0
    assert len(_texts("booked")) == 1 and len(_texts("booked", channel="wechat_template")) == 1
    assert booking_notify_task(booking.pk, "cancelled") == 2  # another kind is another message


@pytest.mark.usefixtures("sessions")
def test_a_failed_channel_is_retried_alone(patient: User, caplog: pytest.LogCaptureFixture) -> None:
    booking = _booking(patient)
    with (
        mock.patch.object(ConsoleNotifier, "send", side_effect=NotificationDeliveryError("gateway down")),
        pytest.raises(NotificationDeliveryError),
    ):
        notifications.booking_notify_send(booking_id=booking.pk, kind="booked")
    assert len(_texts("booked")) == 1
    with caplog.at_level("INFO", logger="reservations.notifications"):
        assert notifications.booking_notify_send(booking_id=booking.pk, kind="booked") == 1
    assert len(_texts("booked")) == 1  # the sandbox did not send again
    assert [r for r in caplog.records if r.getMessage() == "notification"]


def test_a_booking_that_is_gone_sends_nothing(db: None) -> None:
    assert booking_notify_task(999_999, "booked") == 0
    assert notifications.outbox == []


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown notification kind"):
        booking_notify(booking_id=1, kind="birthday")


@pytest.mark.usefixtures("sessions")
def test_the_notifiers_come_from_the_setting(patient: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.RESERVATION_NOTIFIERS = ["reservations.notifications.SandboxNotifier"]
    assert booking_notify_task(_booking(patient).pk, "booked") == 1


# --- Rendering ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("sessions")
def test_the_booked_message_is_chinese_with_masked_name_place_time_and_fee(patient: User) -> None:
    booking_notify_task(_booking(patient).pk, "booked")
    [message] = notifications.sandbox_messages(kind="booked", channel="sms")
    assert message.title == "预约成功"
    assert "王*明" in message.text and "王小明" not in message.text
    assert "神经内科 王建国主任医师" in message.text
    assert "2026年12月12日（周六）上午 08:00-08:30" in message.text
    assert "50.00元" in message.text


@pytest.mark.usefixtures("sessions")
@pytest.mark.parametrize(
    ("kind", "title", "phrase"),
    [
        ("booked", "预约成功", "挂号费50.00元"),
        ("cancelled", "预约已取消", "（患者取消）"),
        ("refunded", "退款成功", "挂号费45.50元已原路退回"),
        ("waitlist_offer", "候补成功", "请在07:15前支付挂号费50.00元"),
        ("session_stopped", "停诊通知", "因专家外出会诊停诊"),
        ("reminder", "就诊提醒", "到申城大学附属医院签到"),
        ("expired", "预约未完成", "已自动释放"),
        ("late_payment_refunded", "支付已退回", "支付的45.50元到账时号源已释放"),
    ],
)
def test_every_kind_has_its_chinese_message(patient: User, kind: str, title: str, phrase: str) -> None:
    status = "held" if kind == "waitlist_offer" else "cancelled"
    booking = _booking(patient, status=status, cancel_reason="患者取消")
    Session.objects.filter(pk=booking.session_id).update(status="stopped", stopped_reason="专家外出会诊")
    payment = Payment.objects.create(
        booking=booking, channel="wechatpay", order_no="R1", amount=Decimal("50.00")
    )
    Refund.objects.create(payment=payment, refund_no="F1", amount=Decimal("45.50"), reason="test")
    booking_notify_task(booking.pk, kind)
    [message] = notifications.sandbox_messages(kind=kind, channel="sms")
    assert message.title == title
    assert phrase in message.text
    assert message.text.startswith("王*明，") and "神经内科" in message.text


@pytest.mark.usefixtures("sessions")
def test_a_room_session_names_the_room(patient: User) -> None:
    booking = _booking(patient)
    Session.objects.filter(pk=booking.session_id).update(doctor=None, room="CT-2")
    booking_notify_task(booking.pk, "reminder")
    assert "神经内科 CT-2" in _texts("reminder")[0]


# --- Reminders ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("sessions")
def test_the_evening_reminder_goes_once_to_tomorrows_booked_patients(
    patient: User, outsider: User, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    tomorrow = _booking(patient)
    _booking(outsider, status="held")
    evening = _local(2026, 12, 11, 18, 0)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[attr-defined]
        assert notifications.reminders_send(now=evening) == 1
        assert notifications.reminders_send(now=evening + timedelta(minutes=5)) == 0
    [message] = notifications.sandbox_messages(kind="reminder", channel="sms")
    assert message.account_id == tomorrow.account_id


@pytest.mark.usefixtures("sessions")
def test_no_reminder_for_other_days_stopped_sessions_or_cancelled_bookings(
    patient: User, outsider: User, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    _booking(patient, on=SATURDAY + timedelta(days=1))  # the day after tomorrow
    cancelled = _booking(outsider, status="cancelled")
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[attr-defined]
        assert notifications.reminders_send(now=_local(2026, 12, 11, 18, 0)) == 0
        Booking.objects.filter(pk=cancelled.pk).update(status="booked")
        Session.objects.filter(date=SATURDAY).update(status="stopped", stopped_reason="停诊")
        assert notifications.reminders_send(now=_local(2026, 12, 11, 18, 0)) == 0
    assert notifications.outbox == []


@pytest.mark.usefixtures("sessions")
def test_tomorrow_is_the_local_tomorrow(
    patient: User, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    _booking(patient)  # Saturday 12 December
    # 00:30 on Saturday in Shanghai is Friday 16:30 UTC: "tomorrow" is already Sunday.
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[attr-defined]
        assert notifications.reminders_send(now=_local(2026, 12, 12, 0, 30)) == 0


@pytest.mark.usefixtures("sessions")
def test_the_reminder_task_uses_the_current_time(
    patient: User, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    from reservations.tasks_notifications import reminders_send

    _booking(patient)
    with (
        time_machine.travel(_local(2026, 12, 11, 18, 0), tick=False),
        django_capture_on_commit_callbacks(execute=True),  # type: ignore[attr-defined]
    ):
        assert reminders_send() == 1
    assert len(_texts("reminder")) == 1


# --- No-shows ----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("sessions")
def test_booked_patients_who_never_checked_in_are_no_shows_30_minutes_after_the_session(
    patient: User, outsider: User
) -> None:
    missed = _booking(patient)
    came = _booking(outsider, status="checked_in")
    ends = Session.objects.get(date=SATURDAY).ends_at
    assert ends == _local(2026, 12, 12, 11, 0)
    assert notifications.no_shows_sweep(now=ends + timedelta(minutes=30)) == 0
    assert notifications.no_shows_sweep(now=ends + timedelta(minutes=30, seconds=1)) == 1
    missed.refresh_from_db()
    came.refresh_from_db()
    assert (missed.status, came.status) == ("no_show", "checked_in")
    assert AuditEvent.objects.filter(patient=missed.patient, action="booking_no_show").count() == 1
    assert notifications.no_shows_sweep(now=ends + timedelta(hours=2)) == 0


@pytest.mark.usefixtures("sessions")
def test_a_check_in_that_wins_the_race_is_never_overwritten(patient: User) -> None:
    booking = _booking(patient)
    ends = Session.objects.get(date=SATURDAY).ends_at
    real_filter = Booking.objects.filter

    def check_in_first(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        # The desk checks the patient in between the sweep's read and its compare-and-set.
        if kwargs.get("pk") == booking.pk:
            real_filter(pk=booking.pk).update(status="checked_in")
        return real_filter(*args, **kwargs)

    with mock.patch.object(Booking.objects, "filter", side_effect=check_in_first):
        assert notifications.no_shows_sweep(now=ends + timedelta(hours=1)) == 0
    booking.refresh_from_db()
    assert booking.status == "checked_in"


@pytest.mark.usefixtures("sessions")
def test_the_no_show_task_uses_the_current_time(patient: User) -> None:
    from reservations.tasks_notifications import no_shows_sweep

    _booking(patient)
    with time_machine.travel(_local(2026, 12, 12, 12, 0), tick=False):
        assert no_shows_sweep() == 1
