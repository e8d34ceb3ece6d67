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
