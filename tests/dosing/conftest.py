"""Fixtures of the dosing page and API tests: a frozen clock, a second pharmacist, a course with doses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from dosing import services
from medcard import roles
from medcard.models import User
from tests import factories

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 22, 0, tzinfo=SHANGHAI)
START = datetime(2026, 11, 20, 8, 0, tzinfo=SHANGHAI)


@pytest.fixture
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def pharmacist_client(pharmacist: User) -> Client:
    client = Client()
    client.force_login(pharmacist)
    return client


@pytest.fixture
def other_pharmacist(db: None) -> User:
    return factories.staff(role=roles.PHARMACIST, username="pharm2")


def details(**overrides: object) -> services.CourseDetails:
    values: dict[str, object] = {
        "sex": "male", "age_years": Decimal(64), "weight_kg": Decimal(82), "height_cm": Decimal(176),
        "creatinine_value": Decimal(97), "creatinine_unit": "umol/L", "creatinine_on": date(2026, 11, 20),
        "initials": "ZWH", "ward": "5B", "bed": "12", "model_choice": "goti_2018",
    }  # fmt: skip
    values.update(overrides)
    return services.CourseDetails(**values)  # type: ignore[arg-type]


def loading_and_q12h() -> list[services.DoseLine]:
    """2 g over 2 h at 08:00 on the 20th, then 1 g over 1 h every 12 h × 3 (the README's worked example)."""
    return [
        services.DoseLine(START, Decimal(2000), Decimal(2)),
        services.DoseLine(START + timedelta(hours=12), Decimal(1000), Decimal(1), 2, Decimal(12)),
    ]


@pytest.fixture
def course(frozen: None, pharmacist: User):  # type: ignore[no-untyped-def]
    course = services.course_create(actor=pharmacist, details=details())
    services.doses_add(course=course, actor=pharmacist, lines=loading_and_q12h())
    return course
