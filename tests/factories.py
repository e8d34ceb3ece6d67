"""Factories for the fixed cast of test users. Accounts are made through the services, as in production."""

from __future__ import annotations

import itertools
from datetime import date

from medcard import roles, services
from medcard.models import Patient, User

PASSWORD = "correct-horse-battery-9"
_mobiles = itertools.count(13900000001)
_names = itertools.count(1)


def patient_account(*, mobile: str | None = None, password: str = PASSWORD, name: str = "王小明") -> User:
    user = services.patient_account_create(
        mobile=mobile or str(next(_mobiles)), password=password, display_name=name
    )
    services.patient_add(
        account=user, name=name, sex=Patient.Sex.MALE, birth_date=date(1980, 5, 17), relationship="self"
    )
    return user


def staff(*, role: str = roles.FRONT_DESK, username: str | None = None, password: str = PASSWORD) -> User:
    return services.staff_create(
        username=username or f"staff{next(_names)}", password=password, display_name="测试员工", role=role
    )
