"""The availability pages and API under the morning's reloads: their rows are cached, and every hold, cancel,
expiry, stopped session and extra number shows at once (the cache is on, and transactions really commit)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from medcard.models import User
from reservations import services
from reservations.models import Session
from reservations.services import staff as staff_services
from reservations.services.payments import holds_expire_due
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _availability_cache_on(settings) -> None:  # type: ignore[no-untyped-def]
    settings.AVAILABILITY_CACHE_SECONDS = 30
    settings.LANGUAGE_CODE = "en"


def _counts(session: Session) -> tuple[int, int, int, int]:
    """Numbers left as a patient sees them: the department API's session and date, the session's slices in
    the API, and the session page."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    code, day = session.department.code, session.date.isoformat()
    availability = client.get(f"/api/v1/departments/{code}/availability/?date={day}").json()
    in_session = next(row["remaining"] for row in availability["sessions"] if row["id"] == session.pk)
    on_date = next(row["remaining"] for row in availability["dates"] if row["date"] == day)
    slices = client.get(f"/api/v1/sessions/{session.pk}/slots/").json()["slots"]
    page = client.get(f"/booking/departments/{code}/sessions/{session.pk}/").content.decode()
    shown = re.search(r"(\d+) numbers? left", page)
    return in_session, on_date, sum(row["remaining"] for row in slices), int(shown.group(1)) if shown else 0


def _hold(account: User, session: Session):  # type: ignore[no-untyped-def]
    return services.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=session.slots.get().pk
    )


def test_a_second_look_at_the_availability_is_served_from_the_cache() -> None:
    session = factories.clinic_session(capacity=3, days_ahead=2)
    client = Client()
    url = f"/api/v1/departments/{session.department.code}/availability/?date={session.date.isoformat()}"
    with CaptureQueriesContext(connection) as first:
        assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get(url).status_code == 200
    assert len(second) < len(first)
    assert not [q for q in second.captured_queries if "reservations_slot" in q["sql"]]


def test_cached_counts_follow_a_hold_and_a_cancel(patient: User, outsider: User) -> None:
    session = factories.clinic_session(capacity=3, days_ahead=2)
    assert _counts(session) == (3, 3, 3, 3)
    assert _counts(session) == (3, 3, 3, 3)  # now cached
    booking = _hold(patient, session)
    assert _counts(session) == (2, 2, 2, 2)
    _hold(outsider, session)
    assert _counts(session) == (1, 1, 1, 1)
    services.booking_cancel(account=patient, booking_id=booking.pk)
    assert _counts(session) == (2, 2, 2, 2)


def test_cached_counts_follow_an_expired_hold_giving_its_number_back(patient: User) -> None:
    session = factories.clinic_session(capacity=2, days_ahead=2)
    _hold(patient, session)
    assert _counts(session) == (1, 1, 1, 1)
    assert holds_expire_due(now=timezone.now() + timedelta(minutes=20)) == 1
    assert _counts(session) == (2, 2, 2, 2)


def test_cached_counts_follow_extra_numbers_and_a_stopped_session(patient: User) -> None:
    desk = factories.staff()
    session = factories.clinic_session(capacity=2, days_ahead=2)
    _hold(patient, session)
    assert _counts(session) == (1, 1, 1, 1)
    staff_services.slot_extra_add(staff=desk, slot_id=session.slots.get().pk, count=2)
    assert _counts(session) == (3, 3, 3, 3)
    staff_services.session_stop(staff=desk, session_id=session.pk, reason="doctor ill")
    client = Client()
    url = f"/api/v1/departments/{session.department.code}/availability/?date={session.date.isoformat()}"
    assert client.get(url).json()["sessions"] == []


def test_a_reload_of_a_sessions_slices_reads_the_session_alone() -> None:
    """The session's department, clinic type and doctor come from the process's reference rows: a reload
    costs one single-table read (the slices and the rule are cached), and answers exactly as before."""
    session = factories.clinic_session(capacity=3, days_ahead=2, slices=2)
    client = Client()
    url = f"/api/v1/sessions/{session.pk}/slots/"
    first = client.get(url).json()
    with CaptureQueriesContext(connection) as again:
        assert client.get(url).json() == first
    statements = [q["sql"] for q in again.captured_queries]
    assert len(statements) == 1 and '"reservations_session"' in statements[0], statements
    assert not [sql for sql in statements if "JOIN" in sql]
    assert first["session"]["department"]["code"] == session.department.code
    assert first["session"]["doctor"]["name"] == session.doctor.name
    assert len(first["slots"]) == 2


def test_a_session_is_found_under_its_own_department_and_by_a_real_key_only() -> None:
    session = factories.clinic_session(capacity=3, days_ahead=2)
    factories.clinic_session(capacity=3, days_ahead=2, department_code="cardiology")
    client = Client()
    code = session.department.code
    assert client.get(f"/booking/departments/{code}/sessions/{session.pk}/").status_code == 200
    assert client.get(f"/booking/departments/cardiology/sessions/{session.pk}/").status_code == 404
    assert client.get(f"/booking/departments/{code}/sessions/{2**64}/").status_code == 404
    assert client.get(f"/api/v1/sessions/{2**64}/slots/").status_code == 404
    assert client.get("/api/v1/departments/no-such/availability/").status_code == 404
    assert client.get("/booking/departments/no-such/").status_code == 404
