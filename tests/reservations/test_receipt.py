"""The electronic receipt (PDF, Chinese) of a paid number: what it says, who may have it, and that a refunded
payment's receipt says so."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest
from django.test import Client

from core.clock import HOSPITAL_TZ
from hospital.celery import app as celery_app
from medcard.models import AuditEvent, User
from reservations import notifications, services
from reservations.models import Booking, Payment
from reservations.payments.sandbox import gateway as sandbox
from reservations.receipt_pdf import receipt_number
from tests.reservations.test_payment_flow import _held, _pay, gateway

__all__ = ["gateway"]  # the fixture, used by name below


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    eager, propagates = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    notifications.outbox.clear()
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = eager, propagates


def _signed_in(account: User, language: str = "zh-hans") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(account)
    return client


def _paid(patient: User, channel: str = "wechatpay") -> Booking:
    booking = _held(patient)
    payment = _pay(patient, booking, channel)
    if channel == "alipay":  # Alipay opens the trade when the patient's browser reaches the page
        Client().get(services.payment_start(account=patient, booking_id=booking.pk, channel=channel).pay_url)
    assert sandbox.cashier_pay(payment.order_no) == "paid"
    assert sandbox.deliver_notification(payment.order_no) == "delivered"
    booking.refresh_from_db()
    return booking


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("channel", "channel_zh"), [("wechatpay", "微信支付"), ("alipay", "支付宝")])
def test_a_paid_booking_links_a_chinese_pdf_receipt_with_everything_on_it(
    patient: User, gateway: list[str], channel: str, channel_zh: str
) -> None:
    booking = _paid(patient, channel)
    payment = Payment.objects.get(booking=booking, status="paid")
    client = _signed_in(patient)
    page = client.get(f"/booking/appointments/{booking.pk}/").content.decode()
    assert f'href="/booking/appointments/{booking.pk}/receipt.pdf"' in page and "电子收据（PDF）" in page
    response = client.get(f"/booking/appointments/{booking.pk}/receipt.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    text = _text(response.content)
    if dump := os.environ.get("RECEIPT_PDF_DUMP"):  # to look at it: pdftoppm -png the file
        Path(dump).write_bytes(response.content)
    for expected in (
        "申城大学附属医院",
        "门诊挂号电子收据",
        booking.patient.masked_name,
        "神经内科",
        "王医生",
        booking.slot.starts_at.astimezone(HOSPITAL_TZ).strftime("%Y-%m-%d"),
        booking.slot.starts_at.astimezone(HOSPITAL_TZ).strftime("%H:%M"),
        "50.00",
        channel_zh,
        payment.transaction_id,
        receipt_number(payment),
        "已支付",
    ):
        assert expected in text, expected
    assert "王小明" not in text  # the name masked
    assert "已退款" not in text


@pytest.mark.django_db(transaction=True)
def test_a_refunded_bookings_receipt_says_refunded(patient: User, gateway: list[str]) -> None:
    booking = _paid(patient)
    services.booking_cancel(account=patient, booking_id=booking.pk)
    client = _signed_in(patient)
    assert "电子收据（PDF，已退款）" in client.get(f"/booking/appointments/{booking.pk}/").content.decode()
    text = _text(client.get(f"/booking/appointments/{booking.pk}/receipt.pdf").content)
    assert "已退款" in text and "退款金额" in text and "50.00" in text


@pytest.mark.django_db(transaction=True)
def test_only_the_booking_account_and_the_front_desk_get_the_receipt(
    patient: User, outsider: User, desk: User, clinician: User, gateway: list[str]
) -> None:
    booking = _paid(patient)
    url = f"/booking/appointments/{booking.pk}/receipt.pdf"
    assert _signed_in(outsider).get(url).status_code == 404
    assert _signed_in(clinician).get(url).status_code == 404
    assert Client().get(url).status_code == 302  # signed out: to the sign-in
    staff_copy = _signed_in(desk).get(url)
    assert staff_copy.status_code == 200 and "门诊挂号电子收据" in _text(staff_copy.content)
    assert AuditEvent.objects.filter(
        action="receipt_viewed", actor=desk, patient=booking.patient, target=f"booking {booking.pk}"
    ).exists()


@pytest.mark.django_db
def test_an_unpaid_number_has_no_receipt(patient: User) -> None:
    booking = _held(patient)
    client = _signed_in(patient)
    assert "receipt.pdf" not in client.get(f"/booking/appointments/{booking.pk}/").content.decode()
    assert client.get(f"/booking/appointments/{booking.pk}/receipt.pdf").status_code == 404
