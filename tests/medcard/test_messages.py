"""My messages: every message the platform sends an account is kept once, listed newest first to its owner
only, with unread ones marked; through the real flows (paying, cancelling, screening) and the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from hospital.celery import app as celery_app
from medcard.models import Message, User
from medcard.services import message_record
from reservations import notifications, services
from reservations.notifications import NotificationDeliveryError
from reservations.payments.sandbox import gateway as sandbox
from tests.reservations.test_payment_flow import _held, _pay, gateway
from tests.screening.test_cases import NO, hold, screened_session

__all__ = ["gateway"]  # the fixture, used by name below


def _signed_in(account: User, language: str = "zh-hans") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(account)
    return client


def _paid(patient: User) -> int:
    booking = _held(patient)
    payment = _pay(patient, booking, "wechatpay")
    assert sandbox.cashier_pay(payment.order_no) == "paid"
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    return booking.pk


@pytest.fixture(autouse=True)
def _eager_tasks_and_empty_outbox() -> Iterator[None]:
    """Tasks run in the test's process when enqueued; each test starts with an empty sandbox outbox."""
    eager, propagates = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    notifications.outbox.clear()
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = eager, propagates
    notifications.outbox.clear()


# --- Through the real flows --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_paid_booking_puts_the_booked_message_in_the_list_and_home_counts_it(
    patient: User, gateway: list[str]
) -> None:
    booking_id = _paid(patient)
    (sent,) = notifications.sandbox_messages(kind="booked", channel="sms")
    client = _signed_in(patient)
    home = client.get("/").content.decode()
    assert 'data-testid="unread-count"' in home and "1 条新消息" in home
    page = client.get("/accounts/messages/").content.decode()
    assert sent.text in page and "预约成功" in page
    assert 'data-testid="message-unread"' in page  # marked new the first time it is shown
    assert f"/booking/appointments/{booking_id}/" in page
    # Opening the list read it: the count is gone from home and the message is no longer "new".
    assert 'data-testid="unread-count"' not in client.get("/").content.decode()
    assert 'data-testid="message-unread"' not in client.get("/accounts/messages/").content.decode()
    assert Message.objects.get(account=patient).read_at is not None


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_paid_booking_lists_cancelled_and_refunded_newest_first(
    patient: User, gateway: list[str]
) -> None:
    booking_id = _paid(patient)
    services.booking_cancel(account=patient, booking_id=booking_id)
    kinds = [m.kind for m in Message.objects.filter(account=patient)]  # newest first
    assert kinds[-1] == "booked" and set(kinds) == {"booked", "cancelled", "refunded"}
    page = _signed_in(patient, "en").get("/accounts/messages/").content.decode()
    assert page.index("Fee refunded") < page.index("Appointment booked")
    assert page.index("Appointment cancelled") < page.index("Appointment booked")
    (refunded,) = notifications.sandbox_messages(kind="refunded", channel="sms")
    assert refunded.text in page


@pytest.mark.django_db
def test_a_screening_decision_reaches_the_list(
    patient: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        booking = hold(patient, screened_session(), NO)  # no risk factor: approved at once
    (message,) = Message.objects.filter(account=patient)
    assert (message.kind, message.booking_id) == ("screening_approved", booking.pk)
    (sent,) = notifications.sandbox_messages(kind="screening_approved", channel="sms")
    assert message.text == sent.text
    page = _signed_in(patient).get("/accounts/messages/").content.decode()
    assert sent.text in page


# --- Once per message ---------------------------------------------------------------------------------------


class FlakyNotifier:
    """Fails its first delivery (a gateway hiccup), then delivers."""

    calls: ClassVar[list[str]] = []

    def send(self, *, account_id: int, mobile: str, title: str, text: str, kind: str) -> None:
        FlakyNotifier.calls.append(kind)
        if len(FlakyNotifier.calls) == 1:
            raise NotificationDeliveryError("busy")


@pytest.mark.django_db(transaction=True)
def test_a_retried_or_redelivered_task_stores_the_message_once(
    patient: User, gateway: list[str], settings: Any
) -> None:
    booking_id = _paid(patient)
    settings.RESERVATION_NOTIFIERS = [f"{__name__}.FlakyNotifier"]
    FlakyNotifier.calls.clear()
    with pytest.raises(NotificationDeliveryError):
        notifications.booking_notify_send(booking_id=booking_id, kind="reminder")
    assert notifications.booking_notify_send(booking_id=booking_id, kind="reminder") == 1  # the retry
    assert notifications.booking_notify_send(booking_id=booking_id, kind="reminder") == 0  # a duplicate
    assert FlakyNotifier.calls == ["reminder", "reminder"]
    assert Message.objects.filter(account=patient, kind="reminder").count() == 1
    assert Message.objects.filter(account=patient, kind="booked").count() == 1


@pytest.mark.django_db
def test_the_database_keeps_one_row_per_account_and_key(patient: User) -> None:
    args: dict[str, Any] = {
        "kind": "refunded",
        "title": "退款成功",
        "text": "退了",
        "dedupe_key": "booking:1:refunded",
    }
    assert message_record(account_id=patient.pk, **args) is True
    assert message_record(account_id=patient.pk, **args) is False
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(account=patient, **args)
    assert Message.objects.filter(account=patient).count() == 1


# --- Only the owner ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_the_owner_sees_and_marks_a_message(patient: User, outsider: User) -> None:
    message_record(
        account_id=patient.pk, kind="booked", title="预约成功", text="王*明，您已成功预约", dedupe_key="k1"
    )
    mine = Message.objects.get(account=patient)
    other = _signed_in(outsider)
    assert "王*明，您已成功预约" not in other.get("/accounts/messages/").content.decode()
    assert other.get("/api/v1/messages/").json()["count"] == 0
    assert other.post(f"/api/v1/messages/{mine.pk}/read/").status_code == 404
    mine.refresh_from_db()
    assert mine.read_at is None
    assert Client().get("/accounts/messages/").status_code == 302  # signed out: to the sign-in


@pytest.mark.django_db
def test_the_api_lists_my_messages_newest_first_and_marks_one_read(patient: User) -> None:
    for n in range(3):
        message_record(account_id=patient.pk, kind="booked", title="t", text=f"m{n}", dedupe_key=f"k{n}")
    client = _signed_in(patient)
    body = client.get("/api/v1/messages/").json()
    assert (body["count"], body["unread"]) == (3, 3)
    assert [row["text"] for row in body["results"]] == ["m2", "m1", "m0"]
    newest = body["results"][0]["id"]
    read = client.post(f"/api/v1/messages/{newest}/read/").json()
    assert read["read_at"] is not None
    assert client.get("/api/v1/messages/").json()["unread"] == 2
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {"/api/v1/messages/", "/api/v1/messages/{message_id}/read/"} <= set(schema["paths"])


@pytest.mark.django_db
def test_an_empty_list_says_what_will_appear(patient: User) -> None:
    page = _signed_in(patient, "en").get("/accounts/messages/").content.decode()
    assert "No messages yet" in page
