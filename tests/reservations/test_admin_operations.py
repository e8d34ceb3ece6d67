"""The administration at work: a weekly template changed in the admin changes its future sessions (booked ones
kept), bookings found by card number, mobile or date, a manual refund through the sandbox gateway, no-show
waivers; and every change made there is in the audit with the member of staff who made it."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hospital.celery import app as celery_app
from medcard.models import AuditEvent, Message, User
from reservations import notifications, schedules, services
from reservations.models import (
    Booking,
    ClinicType,
    Department,
    Doctor,
    NoShowWaiver,
    Payment,
    Refund,
    Session,
    WeeklyTemplate,
)
from reservations.payments import gateways
from reservations.payments.sandbox import gateway as sandbox
from tests import factories
from tests.reservations.payment_transport import client_transport


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser(
        username="root-admin", password="x-very-long-pass-1", display_name="李主任"
    )


@pytest.fixture
def admin_client(root: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(root)
    return client


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Gateway calls and notifications in-process; refunds and messages run inline."""
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


def _template(**values: Any) -> WeeklyTemplate:
    department, _ = Department.objects.get_or_create(
        code="neurology", defaults={"name_zh": "神经内科", "name_en": "Neurology"}
    )
    doctor = Doctor.objects.create(
        code="wang", department=department, name_zh="王医生", name_en="Dr Wang", title="chief"
    )
    clinic_type = ClinicType.objects.create(
        code="expert", name_zh="专家门诊", name_en="Expert", fee=Decimal("50.00")
    )
    fields: dict[str, Any] = {
        "department": department, "doctor": doctor, "clinic_type": clinic_type,
        "weekday": (timezone.localdate() + timedelta(days=2)).weekday(), "half_day": "am",
        "start_time": time(8), "end_time": time(10), "slice_minutes": 30, "quota_per_slice": 4,
    }  # fmt: skip
    fields.update(values)
    return WeeklyTemplate.objects.create(**fields)


def _form(template: WeeklyTemplate, **changes: Any) -> dict[str, Any]:
    data = {
        "department": template.department_id, "doctor": template.doctor_id or "", "room": template.room,
        "clinic_type": template.clinic_type_id, "weekday": template.weekday, "half_day": template.half_day,
        "start_time": template.start_time.strftime("%H:%M"), "end_time": template.end_time.strftime("%H:%M"),
        "slice_minutes": template.slice_minutes, "quota_per_slice": template.quota_per_slice,
        "desk_quota_per_slice": template.desk_quota_per_slice, "active": "on" if template.active else "",
    }  # fmt: skip
    data.update(changes)
    return data


def _book(session: Session, account: User | None = None, status: str = "booked") -> Booking:
    account = account or factories.patient_account()
    slot = session.slots.order_by("starts_at").first()
    assert slot is not None
    slot.taken += 1
    slot.save()
    return Booking.objects.create(
        patient=factories.verified_patient_of(account), account=account, session=session, slot=slot,
        department=session.department, visit_date=session.date, status=status, fee=session.fee,
    )  # fmt: skip


# --- Weekly templates and their sessions --------------------------------------------------------------------


def test_changing_a_template_in_the_admin_changes_its_future_sessions(
    admin_client: Client, root: User
) -> None:
    template = _template()
    schedules.sessions_generate(days_ahead=14)
    sessions = Session.objects.filter(template=template)
    assert sessions.count() == 2
    assert {s.capacity for s in Session.objects.get(pk=sessions[0].pk).slots.all()} == {4}

    response = admin_client.post(
        reverse("admin:reservations_weeklytemplate_change", args=[template.pk]),
        _form(template, quota_per_slice=6, end_time="11:00"),
    )
    assert response.status_code == 302
    for session in Session.objects.filter(template=template):
        assert [s.capacity for s in session.slots.all()] == [6] * 6  # 08:00-11:00 in half hours
        assert timezone.localtime(session.ends_at).time() == time(11)
    changed = AuditEvent.objects.get(
        action=AuditEvent.Action.ADMIN_CHANGED, target=f"weeklytemplate {template.pk}"
    )
    assert changed.actor == root and changed.actor_is_staff
    assert changed.changes == {"end_time": ["10:00:00", "11:00:00"], "quota_per_slice": [4, 6]}
    regenerated = AuditEvent.objects.get(action=AuditEvent.Action.SESSIONS_REGENERATED)
    assert regenerated.actor == root and regenerated.changes["removed"] == [0, 2]


def test_a_booked_session_is_kept_and_only_its_quotas_follow(admin_client: Client) -> None:
    template = _template()
    schedules.sessions_generate(days_ahead=14)
    booked_session, free_session = Session.objects.filter(template=template).order_by("date")
    booking = _book(booked_session)
    new_weekday = (template.weekday + 1) % 7

    admin_client.post(
        reverse("admin:reservations_weeklytemplate_change", args=[template.pk]),
        _form(template, quota_per_slice=2, weekday=new_weekday),
    )
    booked_session.refresh_from_db()
    booking.refresh_from_db()
    assert booking.status == "booked" and booking.session_id == booked_session.pk  # untouched
    assert [s.capacity for s in booked_session.slots.order_by("starts_at")] == [2, 2, 2, 2]
    assert not Session.objects.filter(pk=free_session.pk).exists()  # unbooked: moved to the new weekday
    assert {
        s.date.weekday() for s in Session.objects.filter(template=template).exclude(pk=booked_session.pk)
    } == {new_weekday}


def test_a_quota_is_never_set_below_the_numbers_taken(admin_client: Client) -> None:
    template = _template(quota_per_slice=2)
    schedules.sessions_generate(days_ahead=7)
    session = Session.objects.get(template=template)
    first = session.slots.order_by("starts_at").first()
    assert first is not None
    first.capacity, first.taken = 3, 2  # an extra number was sold at the desk meanwhile
    first.save()
    _book(session)  # keeps the session (and takes a third number: 3 of 3 now)
    admin_client.post(
        reverse("admin:reservations_weeklytemplate_change", args=[template.pk]),
        _form(template, quota_per_slice=1),
    )
    first.refresh_from_db()
    assert (first.capacity, first.taken) == (3, 3)


# --- Finding bookings ---------------------------------------------------------------------------------------


def test_bookings_are_found_by_card_number_mobile_or_date_and_the_look_up_is_audited(
    admin_client: Client, root: User
) -> None:
    session = factories.clinic_session(days_ahead=1)
    mine = _book(session, factories.patient_account(mobile="13911115555", name="赵敏"))
    other = _book(session, factories.patient_account(mobile="13911116666", name="钱多"))
    card = mine.patient.cards.get(status="active").number
    url = reverse("admin:reservations_booking_changelist")

    def found(term: str) -> set[int]:
        response = admin_client.get(url, {"q": term})
        assert response.status_code == 200
        return {booking.pk for booking in response.context["cl"].result_list}

    assert found(card) == {mine.pk}
    assert found(f"{card[:4]} {card[4:8]} {card[8:]}") == {mine.pk}  # as printed on the card
    assert found("139 1111 5555") == {mine.pk}  # matched by the blind index: the mobile is encrypted
    assert found(session.date.isoformat()) == {mine.pk, other.pk}
    assert found("2026-02-30") == set()  # an impossible date finds nothing (and is no error)
    reads = AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN_VIEWED, actor=root)
    assert reads.filter(patient=mine.patient).count() == 3
    assert not reads.filter(detail__contains="1391111").exists()  # the number looked up is not written down

    page = admin_client.get(url, {"q": card}).content.decode()
    assert "赵*" in page and "赵敏" not in page  # masked in the list


# --- Manual refunds -----------------------------------------------------------------------------------------


def _paid(account: User) -> tuple[Booking, Payment]:
    slot = factories.clinic_session(fee="50.00", capacity=3).slots.get()
    booking = services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )
    payment = services.payment_start(account=account, booking_id=booking.pk, channel="wechatpay").payment
    sandbox.cashier_pay(payment.order_no)
    sandbox.deliver_notification(payment.order_no)
    booking.refresh_from_db()
    assert booking.status == "booked"
    return booking, payment


def _refund(client: Client, booking: Booking, reason: str) -> Any:
    return client.post(
        reverse("admin:reservations_booking_changelist"),
        {"action": "refund_manually", "_selected_action": [booking.pk], "apply": "yes", "reason": reason},
        follow=True,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("gateway")
def test_a_manual_refund_goes_through_the_gateway_and_tells_the_patient(
    admin_client: Client, root: User
) -> None:
    patient = factories.patient_account(mobile="13911117777", name="孙悟")
    booking, payment = _paid(patient)
    asked = admin_client.post(
        reverse("admin:reservations_booking_changelist"),
        {"action": "refund_manually", "_selected_action": [booking.pk]},
    )
    assert b"Reason for the refund" in asked.content and payment.order_no.encode() in asked.content
    assert not Refund.objects.exists()  # nothing happens before the reason is given

    response = _refund(admin_client, booking, "医生临时停诊，患者投诉")
    assert response.status_code == 200
    refund = Refund.objects.get(payment=payment)
    booking.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.reason, payment.status, booking.status) == (
        "succeeded", "医生临时停诊，患者投诉", "refunded", "cancelled",
    )  # fmt: skip
    assert (sandbox.order_get(payment.order_no) or {}).get("refunded_fen") == 5000
    [message] = notifications.sandbox_messages(kind="refunded", channel="sms")
    assert "50.00元已原路退回" in message.text
    [kept] = Message.objects.filter(account=booking.account, kind="refunded")  # the patient's message list
    assert kept.text == message.text and kept.booking_id == booking.pk
    event = AuditEvent.objects.get(action=AuditEvent.Action.REFUND_MANUAL)
    assert (event.actor, event.patient, event.reason) == (root, booking.patient, "医生临时停诊，患者投诉")
    assert event.changes["payment"] == ["paid", "refunded"] and event.changes["booking"] == [
        "booked",
        "cancelled",
    ]

    again = _refund(admin_client, booking, "再退一次看看")  # refunded already: refused, nothing moves
    assert b"None of these has a paid fee to refund" in again.content
    assert (sandbox.order_get(payment.order_no) or {}).get("refunded_fen") == 5000


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("gateway")
def test_a_manual_refund_without_a_reason_changes_nothing(admin_client: Client) -> None:
    booking, payment = _paid(factories.patient_account())
    response = _refund(admin_client, booking, "  ")
    assert b"Reason for the refund" in response.content  # the form again, with its error
    payment.refresh_from_db()
    assert payment.status == "paid" and not Refund.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.REFUND_MANUAL).exists()


# --- No-show waivers and the audit of plain admin changes ---------------------------------------------------


def test_a_waiver_added_in_the_admin_goes_through_the_service(admin_client: Client, root: User) -> None:
    booking = _book(factories.clinic_session(days_ahead=1), status="no_show")
    response = admin_client.post(
        reverse("admin:reservations_noshowwaiver_add"), {"booking": booking.pk, "reason": "住院证明已核实"}
    )
    assert response.status_code == 302
    waiver = NoShowWaiver.objects.get(booking=booking)
    assert waiver.staff == root
    event = AuditEvent.objects.get(action=AuditEvent.Action.NO_SHOW_WAIVED)
    assert (event.actor, event.patient) == (root, booking.patient)
    refused = admin_client.post(
        reverse("admin:reservations_noshowwaiver_add"), {"booking": booking.pk, "reason": "x"}
    )
    assert refused.status_code == 200 and NoShowWaiver.objects.count() == 1


def test_adding_changing_and_deleting_in_the_admin_are_audited(admin_client: Client, root: User) -> None:
    add = reverse("admin:reservations_department_add")
    fields = {
        "code": "cardio",
        "name_zh": "心内科",
        "name_en": "Cardiology",
        "kind": "clinic",
        "sort_order": 3,
    }
    assert admin_client.post(add, fields).status_code == 302
    department = Department.objects.get(code="cardio")
    change = reverse("admin:reservations_department_change", args=[department.pk])
    assert admin_client.post(change, {**fields, "name_en": "Cardiology clinic"}).status_code == 302
    delete = reverse("admin:reservations_department_delete", args=[department.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302

    events = list(AuditEvent.objects.filter(target=f"department {department.pk}").order_by("at", "id"))
    assert [e.action for e in events] == ["admin_added", "admin_changed", "admin_deleted"]
    assert all(e.actor == root and e.actor_is_staff for e in events)
    assert events[0].changes["name_zh"] == [None, "心内科"]
    assert events[1].changes == {"name_en": ["Cardiology", "Cardiology clinic"]}
    assert events[2].changes["name_en"] == ["Cardiology clinic", None]


def test_a_slice_quota_changed_in_the_admin_is_audited_and_never_below_taken(
    admin_client: Client, root: User
) -> None:
    session = factories.clinic_session(capacity=4)
    slot = session.slots.get()
    slot.taken = 3
    slot.save()
    url = reverse("admin:reservations_slot_change", args=[slot.pk])
    refused = admin_client.post(url, {"capacity": 2, "desk_capacity": 0})
    assert refused.status_code == 200  # the form says 3 are taken
    assert admin_client.post(url, {"capacity": 5, "desk_capacity": 2}).status_code == 302
    event = AuditEvent.objects.get(action="admin_changed", target=f"slot {slot.pk}")
    assert event.actor == root and event.changes == {"capacity": [4, 5], "desk_capacity": [0, 2]}


def test_personal_data_stays_masked_in_the_admin_and_opening_a_patient_is_audited(
    admin_client: Client, root: User
) -> None:
    account = factories.patient_account(mobile="13911119999", name="赵敏")
    patient = factories.verified_patient_of(account)
    for name in ("medcard_user", "medcard_patient", "medcard_card"):
        page = admin_client.get(reverse(f"admin:{name}_changelist")).content.decode()
        assert "赵敏" not in page and "13911119999" not in page, name
    assert "赵*" in admin_client.get(reverse("admin:medcard_user_changelist")).content.decode()
    opened = admin_client.get(reverse("admin:medcard_patient_change", args=[patient.pk])).content.decode()
    assert "139****9999" in opened and "赵敏" not in opened
    assert AuditEvent.objects.filter(action="admin_viewed", actor=root, patient=patient).count() == 1
    account_page = admin_client.get(reverse("admin:medcard_user_change", args=[account.pk])).content.decode()
    assert "赵敏" not in account_page and 'name="display_name"' not in account_page


def test_a_template_switched_off_takes_its_unbooked_future_sessions_with_it(admin_client: Client) -> None:
    template = _template()
    schedules.sessions_generate(days_ahead=14)
    booked_session, _free = Session.objects.filter(template=template).order_by("date")
    _book(booked_session)
    admin_client.post(
        reverse("admin:reservations_weeklytemplate_change", args=[template.pk]), _form(template, active="")
    )
    assert list(Session.objects.filter(template=template)) == [booked_session]
    schedules.sessions_generate(days_ahead=14)  # the nightly generator does not bring them back
    assert list(Session.objects.filter(template=template)) == [booked_session]


def test_deleting_a_template_removes_its_unbooked_future_sessions_and_is_audited(
    admin_client: Client, root: User
) -> None:
    template = _template()
    schedules.sessions_generate(days_ahead=14)
    booked_session, _free = Session.objects.filter(template=template).order_by("date")
    _book(booked_session)
    delete = reverse("admin:reservations_weeklytemplate_delete", args=[template.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert list(Session.objects.filter(pk__in=[booked_session.pk, _free.pk])) == [booked_session]
    event = AuditEvent.objects.get(action="admin_deleted", target=f"weeklytemplate {template.pk}")
    assert event.actor == root and event.changes["quota_per_slice"] == [4, None]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("gateway")
def test_a_refund_the_gateway_gave_up_on_is_sent_again_from_the_payments_list(admin_client: Client) -> None:
    booking, payment = _paid(factories.patient_account())
    Booking.objects.filter(pk=booking.pk).update(status="cancelled", cancel_reason="patient")
    Payment.objects.filter(pk=payment.pk).update(status="refunded")
    failed = Refund.objects.create(
        payment=payment, refund_no="RF-GAVE-UP", amount=payment.amount, reason="patient cancelled",
        status="failed", attempts=30,
    )  # fmt: skip
    response = admin_client.post(
        reverse("admin:reservations_payment_changelist"),
        {
            "action": "refund_manually",
            "_selected_action": [payment.pk],
            "apply": "yes",
            "reason": "渠道退款失败，重新发起",
        },
        follow=True,
    )
    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.status == "succeeded" and failed.refund_no == "RF-GAVE-UP"  # the same refund, sent again
    assert (sandbox.order_get(payment.order_no) or {}).get("refunded_fen") == 5000
    assert notifications.sandbox_messages(kind="refunded")
    event = AuditEvent.objects.get(action="refund_manual")
    assert (
        event.changes["refund"] == ["failed", "requested"] and event.changes["booking"] == ["cancelled"] * 2
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("gateway")
def test_a_visit_already_seen_is_refunded_and_stays_seen(admin_client: Client) -> None:
    booking, payment = _paid(factories.patient_account())
    Booking.objects.filter(pk=booking.pk).update(status="completed")
    _refund(admin_client, booking, "候诊时间过长，院方致歉退费")
    booking.refresh_from_db()
    assert booking.status == "completed"
    assert Refund.objects.get(payment=payment).status == "succeeded"
