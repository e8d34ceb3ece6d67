"""Factories for the fixed cast of test users and patients. Everything is made through the services."""

from __future__ import annotations

import itertools
from datetime import date

from medcard import idnumber, roles, services
from medcard.models import Patient, User

PASSWORD = "correct-horse-battery-9"
_mobiles = itertools.count(13900000001)
_names = itertools.count(1)
_sequences = itertools.count(101)


def resident_id(birth: date, *, male: bool = True, region: str = "310104") -> str:
    """A well-formed, made-up resident ID number for ``birth`` (unique within a test run)."""
    sequence = next(_sequences)
    if (sequence % 2 == 1) != male:
        sequence = next(_sequences)
    # Three digits: wrap past 999 (a run makes thousands of patients, never a thousand in one test's data).
    sequence = 100 + (sequence - 100) % 900
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + idnumber.resident_id_check_character(first17)


def patient_account(*, mobile: str | None = None, password: str = PASSWORD, name: str = "王小明") -> User:
    """A patient account whose holder ('self') is verified and has an active card."""
    mobile = mobile or str(next(_mobiles))
    user = services.patient_account_create(mobile=mobile, password=password, display_name=name)
    add_patient(user, name=name, birth=date(1980, 5, 17), relationship="self")
    return user


def add_patient(
    account: User,
    *,
    name: str,
    birth: date,
    relationship: str,
    male: bool = True,
    id_number: str | None = None,
) -> Patient:
    details = services.PatientDetails(
        name=name,
        id_type="resident_id",
        id_number=id_number or resident_id(birth, male=male),
        sex=None,
        birth_date=None,
        mobile=account.mobile,
        relationship=relationship,
    )
    return services.patient_add(account=account, details=details)


def staff(*, role: str = roles.FRONT_DESK, username: str | None = None, password: str = PASSWORD) -> User:
    return services.staff_create(
        username=username or f"staff{next(_names)}", password=password, display_name="测试员工", role=role
    )


def clinic_session(
    *,
    capacity: int = 5,
    fee: str = "50.00",
    days_ahead: int = 1,
    slices: int = 1,
    department_code: str = "neurology",
    doctor_code: str | None = None,
    hour: int = 9,
):  # type: ignore[no-untyped-def]
    """An open session ``days_ahead`` days ahead (local) with ``slices`` half-hour slices of ``capacity``.

    Uses the hospital's default booking rule (released 14 days ahead at 07:00), so it is bookable now.
    """
    from datetime import datetime, timedelta
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from reservations.models import ClinicType, Department, Doctor, Session, Slot

    department, _ = Department.objects.get_or_create(
        code=department_code, defaults={"name_zh": "神经内科", "name_en": "Neurology"}
    )
    code = doctor_code or f"doc-{next(_names)}"
    doctor = Doctor.objects.create(code=code, department=department, name_zh="王医生", name_en="Dr Wang",
                                   title="chief")  # fmt: skip
    clinic_type, _ = ClinicType.objects.get_or_create(
        code=f"fee-{fee}", defaults={"name_zh": "专家门诊", "name_en": "Expert clinic", "fee": Decimal(fee)}
    )
    day = timezone.localdate() + timedelta(days=days_ahead)
    zone = ZoneInfo("Asia/Shanghai")
    start = datetime(day.year, day.month, day.day, hour, 0, tzinfo=zone)
    session = Session.objects.create(
        department=department, doctor=doctor, clinic_type=clinic_type, fee=Decimal(fee), date=day,
        half_day="am" if hour < 12 else "pm", starts_at=start, ends_at=start + timedelta(minutes=30 * slices),
    )  # fmt: skip
    for n in range(slices):
        Slot.objects.create(
            session=session,
            starts_at=start + timedelta(minutes=30 * n),
            ends_at=start + timedelta(minutes=30 * (n + 1)),
            capacity=capacity,
        )
    return session


def verified_patient_of(account: User) -> Patient:
    return Patient.objects.get(links__account=account, links__relationship="self")
