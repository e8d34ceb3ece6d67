"""Walk-ins at the desk: a desk-kept number or an extra number sold to the patient in front of the desk (never
to the online waitlist), paid in cash, by card or by a WeChat/Alipay code on the desk screen, with the amount,
method and receipt recorded; only slices still running can be sold."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from core.errors import AppError
from hospital.celery import app as celery_app
from medcard.models import AuditEvent, User
from reservations import services
from reservations.models import Booking, Payment, Session, Slot, WaitlistEntry
from reservations.payments import gateways
from reservations.payments.sandbox import gateway as sandbox
from tests import factories
from tests.reservations.payment_transport import client_transport

# The desk works on today's 23:00 session: run at 20:00 local time, before it starts, whatever the hour.
pytestmark = pytest.mark.usefixtures("before_late_sessions")


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _today_slot(*, capacity: int = 1, desk: int = 1, fee: str = "25.00") -> Slot:
    slot = factories.clinic_session(capacity=capacity, fee=fee, days_ahead=0, hour=23).slots.get()
    Slot.objects.filter(pk=slot.pk).update(desk_capacity=desk)
    slot.refresh_from_db()
    return slot


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, sandbox_mode: None) -> Iterator[None]:
    """The sandbox gateway's real protocols, in this process."""
    transport = client_transport(Client())
    monkeypatch.setattr(
        "reservations.services.payments.gateway_for",
        functools.partial(gateways.gateway_for, transport=transport),
    )
    monkeypatch.setattr(sandbox, "notify_transport", transport)
    monkeypatch.setattr(sandbox, "enqueue_delivery", lambda order_no, countdown_s: None)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    sandbox.faults_clear()
    yield


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["cash", "card"])
def test_a_desk_number_sold_for_cash_or_card_is_booked_with_a_receipt(
    patient: User, desk: User, method: str
) -> None:
    slot = _today_slot()
    holder = factories.verified_patient_of(patient)
    client = _as(desk)
    url = f"/booking/desk/patients/{holder.pk}/walk-in/confirm/"
    step = client.get(url, {"slot": slot.pk, "source": "desk"}).content.decode()
    assert 'data-testid="amount">25.00<' in step
    client.post(url, {"slot": slot.pk, "source": "desk", "method": method, "amount": "25.00"})  # unconfirmed
    assert not Booking.objects.exists()
    done = client.post(
        url, {"slot": slot.pk, "source": "desk", "method": method, "amount": "25.00", "confirm": "yes"}
    )
    booking = Booking.objects.get()
    payment = Payment.objects.get(booking=booking)
    assert done["Location"] == f"/booking/staff/receipts/{payment.pk}/"
    assert (booking.status, booking.source, booking.patient) == ("booked", "desk", holder)
    assert (payment.status, payment.channel, payment.desk_method, payment.amount) == (
        "paid",
        "desk",
        method,
        Decimal("25.00"),
    )
    slot.refresh_from_db()
    assert (slot.desk_taken, slot.taken, slot.capacity) == (1, 0, 1)  # the online number is untouched
    assert payment.receipt_no in client.get(done["Location"]).content.decode()
    event = AuditEvent.objects.get(action="walk_in_sold")
    assert event.actor == desk and event.changes["method"] == [None, method]


@pytest.mark.django_db
def test_the_last_desk_number_cannot_be_sold_twice(patient: User, outsider: User, desk: User) -> None:
    slot = _today_slot(desk=1)
    services.walk_in_sell(
        staff=desk,
        patient_id=factories.verified_patient_of(patient).pk,
        slot_id=slot.pk,
        source="desk",
        method="cash",
    )
    with pytest.raises(AppError) as refused:
        services.walk_in_sell(
            staff=desk,
            patient_id=factories.verified_patient_of(outsider).pk,
            slot_id=slot.pk,
            source="desk",
            method="cash",
        )
    assert refused.value.code == "desk_quota_full"
    assert Booking.objects.count() == 1


@pytest.mark.django_db
def test_an_extra_number_goes_to_the_patient_at_the_desk_not_to_the_waitlist(
    patient: User, outsider: User, desk: User
) -> None:
    slot = _today_slot(capacity=1, desk=0, fee="0.00")
    services.hold_create(
        account=outsider, patient_id=factories.verified_patient_of(outsider).pk, slot_id=slot.pk
    )  # the online number is gone
    third = factories.patient_account(name="张三")
    waiting = WaitlistEntry.objects.create(
        session=slot.session, patient=factories.verified_patient_of(third), account=third
    )
    holder = factories.verified_patient_of(patient)
    sale = services.walk_in_sell(
        staff=desk, patient_id=holder.pk, slot_id=slot.pk, source="extra", method="cash"
    )
    services.waitlist_offer_next(session_id=slot.session_id)
    slot.refresh_from_db()
    waiting.refresh_from_db()
    assert (sale.booking.patient, sale.booking.status, sale.booking.source) == (holder, "booked", "extra")
    assert (slot.capacity, slot.taken, slot.extra) == (2, 2, 1)  # never a free number for anyone else
    assert waiting.status == "waiting"


@pytest.mark.django_db
def test_no_number_is_sold_or_added_on_a_slice_that_has_ended(patient: User, desk: User) -> None:
    slot = _today_slot()
    holder = factories.verified_patient_of(patient)
    with time_machine.travel(slot.ends_at + timedelta(seconds=1)):
        for source in ("desk", "extra"):
            with pytest.raises(AppError) as refused:
                services.walk_in_sell(
                    staff=desk, patient_id=holder.pk, slot_id=slot.pk, source=source, method="cash"
                )
            assert refused.value.code == "slice_ended"
        with pytest.raises(AppError) as refused:
            services.slot_extra_add(staff=desk, slot_id=slot.pk)
        assert refused.value.code == "slice_ended"
        page = _as(desk).get(f"/booking/desk/patients/{holder.pk}/walk-in/").content.decode()
        assert f"walk-in-slot-{slot.pk}" not in page
    slot.refresh_from_db()
    assert (slot.desk_taken, slot.capacity, slot.extra) == (0, 1, 0)


@pytest.mark.django_db
def test_a_stopped_session_sells_nothing_and_a_wrong_amount_changes_nothing(
    patient: User, desk: User
) -> None:
    slot = _today_slot()
    holder = factories.verified_patient_of(patient)
    with pytest.raises(AppError) as refused:
        services.walk_in_sell(
            staff=desk,
            patient_id=holder.pk,
            slot_id=slot.pk,
            source="desk",
            method="cash",
            amount=Decimal("2"),
        )
    assert refused.value.code == "amount_mismatch"
    Session.objects.filter(pk=slot.session_id).update(status="stopped", stopped_reason="停诊")
    with pytest.raises(AppError) as refused:
        services.walk_in_sell(
            staff=desk, patient_id=holder.pk, slot_id=slot.pk, source="extra", method="card"
        )
    assert refused.value.code == "session_stopped"
    slot.refresh_from_db()
    assert (slot.desk_taken, slot.capacity, Booking.objects.count()) == (0, 1, 0)


@pytest.mark.django_db
def test_a_patient_with_a_number_in_the_session_is_not_sold_another(patient: User, desk: User) -> None:
    slot = _today_slot(desk=2)
    holder = factories.verified_patient_of(patient)
    services.walk_in_sell(staff=desk, patient_id=holder.pk, slot_id=slot.pk, source="desk", method="cash")
    with pytest.raises(AppError) as refused:
        services.walk_in_sell(staff=desk, patient_id=holder.pk, slot_id=slot.pk, source="desk", method="cash")
    assert refused.value.code == "already_booked"
    slot.refresh_from_db()
    assert slot.desk_taken == 1


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["desk", "extra"])
def test_a_cancelled_walk_in_number_goes_back_to_its_own_pool(patient: User, desk: User, source: str) -> None:
    slot = factories.clinic_session(capacity=1, fee="0.00", days_ahead=3).slots.get()
    Slot.objects.filter(pk=slot.pk).update(desk_capacity=1)
    sale = services.walk_in_sell(
        staff=desk,
        patient_id=factories.verified_patient_of(patient).pk,
        slot_id=slot.pk,
        source=source,
        method="cash",
    )
    services.booking_cancel(account=patient, booking_id=sale.booking.pk)
    slot.refresh_from_db()
    # A desk number returns to the desk; an extra number made for this patient disappears with the booking.
    assert (slot.desk_taken, slot.taken, slot.capacity, slot.extra) == (0, 0, 1, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("method", "channel"), [("wechat_code", "wechatpay"), ("alipay_code", "alipay")])
def test_a_walk_in_paid_by_a_code_on_the_desk_screen_is_booked_when_the_provider_says_paid(
    patient: User, desk: User, gateway: None, method: str, channel: str
) -> None:
    slot = _today_slot()
    holder = factories.verified_patient_of(patient)
    client = _as(desk)
    done = client.post(
        f"/booking/desk/patients/{holder.pk}/walk-in/confirm/",
        {"slot": slot.pk, "source": "desk", "method": method, "amount": "25.00", "confirm": "yes"},
    )
    payment = Payment.objects.get()
    assert done["Location"] == f"/booking/desk/payments/{payment.pk}/code/"
    assert (payment.channel, payment.status, payment.booking.status) == (channel, "created", "held")
    screen = client.get(done["Location"]).content.decode()
    assert 'data-testid="qr"' in screen and "<svg" in screen and 'http-equiv="refresh"' in screen
    pay_url = screen.split('data-url="')[1].split('"')[0].replace("&amp;", "&")
    if channel == "alipay":  # Alipay opens the trade when the patient's phone reaches the page
        Client().get(pay_url)
    assert sandbox.cashier_pay(payment.order_no) == "paid"
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    payment.refresh_from_db()
    assert (payment.status, payment.booking.status, payment.booking.source) == ("paid", "booked", "desk")
    after = client.get(done["Location"]).content.decode()
    assert 'data-testid="paid"' in after and 'http-equiv="refresh"' not in after


@pytest.mark.django_db
def test_walk_in_pages_are_hidden_from_patients_and_pharmacists(patient: User, pharmacist: User) -> None:
    slot = _today_slot()
    holder = factories.verified_patient_of(patient)
    for user in (patient, pharmacist):
        client = _as(user)
        assert client.get(f"/booking/desk/patients/{holder.pk}/walk-in/").status_code == 404
        answer = client.post(
            f"/booking/desk/patients/{holder.pk}/walk-in/confirm/",
            {"slot": slot.pk, "source": "desk", "method": "cash", "confirm": "yes"},
        )
        assert answer.status_code == 404
    assert not Booking.objects.exists()
