"""Fixtures shared by the whole suite: the cast of users, a client per role, environment probes."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.test import Client

from medcard import roles
from medcard.models import User
from tests import factories

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_or_skip(condition: bool, reason: str) -> None:
    """Skip locally when a real part is missing; in CI the same gap is a failure, never a silent skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


def redis_url_for_tests() -> str | None:
    """REDIS_URL when set, else the machine's local Redis when it answers."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1):
            return url
    except OSError:
        return None


def chromium_path() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.fixture(autouse=True)
def _private_cache(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Each test gets an empty in-process cache, so clearing it never touches a shared Redis (where CI also
    keeps the broker's queues) and no heartbeat or rate-limit gate leaks between tests."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.core.cache import cache

    from reservations import discovery, reference, schedules, shield

    cache.clear()
    shield.forget_local_hints()  # the shield's per-process memory of "full" hints is a cache too
    schedules.forget_local_rules()  # and so is the per-process memory of booking rules
    reference.forget_reference_rows()  # and of departments, clinic types and doctors (SQLite reuses keys)
    discovery.forget_slot_departments()  # and of each slice's department (the same)
    yield
    from django.utils import translation

    translation.deactivate()  # a request's language (the admin's, say) must not leak into the next test


@pytest.fixture
def before_late_sessions() -> Iterator[None]:
    """Run the test at 20:00 local time today (the clock ticks on from there): tests that book today's 22:00
    or 23:00 sessions at the desk or online would otherwise fail late in the evening, once booking has closed
    or the slice has begun."""
    import time_machine
    from django.utils import timezone

    evening = timezone.localtime().replace(hour=20, minute=0, second=0, microsecond=0)
    with time_machine.travel(evening, tick=True):
        yield


@pytest.fixture
def patient(db: None) -> User:
    """A patient account holder (the 'owner' of patient-owned rows)."""
    return factories.patient_account(name="王小明")


@pytest.fixture
def outsider(db: None) -> User:
    """Another patient account, who must never reach the first one's rows."""
    return factories.patient_account(name="李大海")


@pytest.fixture
def desk(db: None) -> User:
    return factories.staff(role=roles.FRONT_DESK, username="desk1")


@pytest.fixture
def clinician(db: None) -> User:
    """A clinician who decides screening cases (radiology)."""
    return factories.staff(role=roles.CLINICIAN, username="radiology1")


@pytest.fixture
def pharmacist(db: None) -> User:
    return factories.staff(role=roles.PHARMACIST, username="pharm1")


@pytest.fixture
def administrator(db: None) -> User:
    return factories.staff(role=roles.ADMINISTRATOR, username="admin1")


@pytest.fixture
def patient_client(patient: User) -> Iterator[Client]:
    client = Client()
    client.force_login(patient)
    yield client
