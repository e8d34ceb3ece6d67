"""The morning's hot path: how many queries one hold costs, pinned so it cannot silently grow."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from medcard.models import User
from reservations import reference, schedules
from tests import factories

# The signed-in user; the slice with its session (outside the transaction: most of a flash crowd is refused on
# it); then, in the transaction (a savepoint here, BEGIN/COMMIT in production): the patient locked, one read
# of the patient's bookings for every rule (the active ones, and the recent no-shows the no-show rule counts),
# the conditional update of the slice, the booking's insert. The answer is built from rows in hand. The
# session comes from the cache (Redis in production, the file cache on the SQLite dev set-up), the booking
# rule too.
# 9 when the no-show rule read its rows apart; 8 since they come with the other rules' rows; 7 on PostgreSQL
# since the conditional update and the insert are one statement (reservations/services/hold_insert.py).
HOLD_QUERIES = {"postgresql": 7, "sqlite": 8}


@pytest.mark.django_db
def test_a_hold_over_the_api_costs_a_fixed_number_of_queries(patient: User, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    session = factories.clinic_session(capacity=5)
    slot = session.slots.get()
    patient_id = factories.verified_patient_of(patient).pk
    client = Client()
    client.force_login(patient)
    # Before the morning: the department's booking rule is read (and cached), and so are the session's
    # reference rows (each process keeps them for a second: reservations/reference.py); the patient signs in.
    schedules.booking_rule_for(department=session.department)
    monkeypatch.setattr(reference, "LOCAL_REFERENCE_S", 60.0)  # however slow this machine's first request
    reference.attach_reference_rows(session)
    client.get("/api/v1/me/")
    with CaptureQueriesContext(connection) as queries:
        answer = client.post(
            "/api/v1/bookings/holds/",
            {"patient_id": patient_id, "slot_id": slot.pk},
            content_type="application/json",
        )
    assert answer.status_code == 201
    hold_queries = [q["sql"] for q in queries.captured_queries]
    assert len(hold_queries) == HOLD_QUERIES[connection.vendor], "\n".join(hold_queries)
    # The slice is read with its session only: no five-table join to plan for every hold.
    assert not [sql for sql in hold_queries if '"reservations_department"' in sql]
    # The outage-safe session store reads the session from the cache: no session row read on either set-up.
    assert not [sql for sql in hold_queries if '"django_session"' in sql]


@pytest.mark.django_db
def test_a_holds_answer_built_from_rows_in_hand_is_the_bookings_own(patient: User) -> None:
    session = factories.clinic_session(capacity=5)
    patient_id = factories.verified_patient_of(patient).pk
    client = Client()
    client.force_login(patient)
    held = client.post(
        "/api/v1/bookings/holds/",
        {"patient_id": patient_id, "slot_id": session.slots.get().pk},
        content_type="application/json",
    ).json()
    shown = client.get(f"/api/v1/bookings/{held['id']}/").json()
    assert held == shown and held["status"] == "held" and held["patient_id"] == patient_id
    # The department and doctor come from the process's reference rows, not from the slice's read.
    assert (held["department"], held["doctor"]) == ("神经内科", "王医生")
