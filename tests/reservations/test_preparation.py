"""Exam preparation instructions per exam type (clinic type): written by staff in the admin, bilingual, shown
on the booking once it is made and sent in the evening reminder; the demo exams come with them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from hospital.celery import app as celery_app
from medcard.models import User
from reservations import notifications, services
from reservations.models import ClinicType
from reservations.services import demo_departments_seed
from reservations.services.demo import demo_schedule_seed
from tests import factories

ZH = "检查前4小时禁食；服用二甲双胍者检查后48小时内停用。"
EN = "Nothing to eat for 4 hours before; stop metformin for 48 hours after the exam."


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    eager, propagates = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    notifications.outbox.clear()
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = eager, propagates
    notifications.outbox.clear()


def _admin() -> Client:
    user = User.objects.create_superuser(username="root-admin", password="x-very-long-pass-1")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_staff_write_the_instructions_in_the_admin_and_the_booking_shows_them(patient: User) -> None:
    session = factories.clinic_session(fee="10.00")
    clinic_type = session.clinic_type
    response = _admin().post(
        f"/admin/reservations/clinictype/{clinic_type.pk}/change/",
        {
            "code": "ct-plus",
            "name_zh": "增强CT检查",
            "name_en": "Contrast-enhanced CT",
            "fee": "10.00",
            "screening_exam": "",
            "preparation_zh": ZH,
            "preparation_en": EN,
        },
    )
    assert response.status_code == 302
    booking = services.hold_create(
        account=patient,
        patient_id=factories.verified_patient_of(patient).pk,
        slot_id=session.slots.get().pk,
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(patient)
    page = client.get(f"/booking/appointments/{booking.pk}/").content.decode()
    assert "检查前准备" in page and ZH in page
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get(f"/booking/appointments/{booking.pk}/").content.decode()
    assert "How to prepare" in page and EN in page


@pytest.mark.django_db
def test_a_clinic_without_instructions_shows_none(patient: User) -> None:
    session = factories.clinic_session()
    booking = services.hold_create(
        account=patient,
        patient_id=factories.verified_patient_of(patient).pk,
        slot_id=session.slots.get().pk,
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(patient)
    page = client.get(f"/booking/appointments/{booking.pk}/").content.decode()
    assert 'data-testid="preparation"' not in page


@pytest.mark.django_db
def test_the_reminder_carries_the_instructions(patient: User) -> None:
    session = factories.clinic_session(fee="10.00")
    ClinicType.objects.filter(pk=session.clinic_type_id).update(preparation_zh=ZH, preparation_en=EN)
    booking = services.hold_create(
        account=patient,
        patient_id=factories.verified_patient_of(patient).pk,
        slot_id=session.slots.get().pk,
    )
    assert notifications.booking_notify_send(booking_id=booking.pk, kind="reminder") == 2
    (reminder,) = notifications.sandbox_messages(kind="reminder", channel="sms")
    assert reminder.text.endswith(f"检查前准备：{ZH}")


@pytest.mark.django_db
def test_the_demo_exams_come_with_instructions() -> None:
    demo_departments_seed()
    demo_schedule_seed()
    contrast_ct = ClinicType.objects.get(code="ct_contrast")
    assert "二甲双胍" in contrast_ct.preparation_zh and "metformin" in contrast_ct.preparation_en
    assert "禁食" in ClinicType.objects.get(code="endoscopy_sedated").preparation_zh
    assert ClinicType.objects.get(code="general").preparation_zh == ""
