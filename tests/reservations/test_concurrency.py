"""Real concurrent connections on PostgreSQL: no oversell and no double booking, ever."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection, connections

from core.errors import AppError
from reservations import services
from reservations.models import Booking, Slot
from tests import factories
from tests.conftest import require_or_skip

pytestmark = pytest.mark.django_db(transaction=True)


def _at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run every call in its own thread and database connection, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = calls[index]()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    require_or_skip(connection.vendor == "postgresql", "row locks and concurrent connections need PostgreSQL")


def test_fifty_simultaneous_holds_on_five_numbers_give_exactly_five() -> None:
    slot = factories.clinic_session(capacity=5).slots.get()
    accounts = [factories.patient_account(mobile=str(13600000000 + n), name=f"并发{n}") for n in range(50)]
    calls = [
        (
            lambda a=a: services.hold_create(
                account=a, patient_id=factories.verified_patient_of(a).pk, slot_id=slot.pk
            )
        )
        for a in accounts
    ]
    results = _at_once(calls)
    held = [r for r in results if isinstance(r, Booking)]
    refusals = Counter(r.code for r in results if isinstance(r, AppError))
    assert len(held) == 5
    assert refusals == Counter({"full": 45})
    assert all(r.waitlist for r in results if isinstance(r, AppError))
    slot.refresh_from_db()
    assert slot.taken == 5 == Booking.objects.filter(slot=slot, status="held").count()


def test_the_same_patient_from_two_phones_gets_one_booking(patient) -> None:  # type: ignore[no-untyped-def]
    slot = factories.clinic_session(capacity=5).slots.get()
    patient_id = factories.verified_patient_of(patient).pk
    results = _at_once(
        [lambda: services.hold_create(account=patient, patient_id=patient_id, slot_id=slot.pk)] * 2
    )
    assert sum(isinstance(r, Booking) for r in results) == 1
    refused = [r for r in results if isinstance(r, AppError)]
    assert len(refused) == 1 and refused[0].code in {"already_booked", "hold_pending"}
    slot.refresh_from_db()
    assert slot.taken == 1


def test_the_same_patient_on_two_sessions_at_once_gets_one_hold(patient) -> None:  # type: ignore[no-untyped-def]
    first = factories.clinic_session(capacity=5, department_code="dep-a").slots.get()
    second = factories.clinic_session(capacity=5, department_code="dep-b").slots.get()
    patient_id = factories.verified_patient_of(patient).pk
    results = _at_once([
        lambda: services.hold_create(account=patient, patient_id=patient_id, slot_id=first.pk),
        lambda: services.hold_create(account=patient, patient_id=patient_id, slot_id=second.pk),
    ])  # fmt: skip
    assert sum(isinstance(r, Booking) for r in results) == 1
    assert Slot.objects.filter(pk__in=[first.pk, second.pk], taken=1).count() == 1


def test_the_database_refuses_an_oversell_even_without_the_service() -> None:
    from django.db import IntegrityError, transaction

    slot = factories.clinic_session(capacity=1).slots.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(taken=2)


def test_rooms_calling_at_the_same_instant_never_get_the_same_patient() -> None:
    from datetime import timedelta

    import time_machine

    from medcard import roles
    from reservations.models import QueueEntry

    session = factories.clinic_session(fee="0.00", capacity=20, days_ahead=0, hour=22)
    slot = session.slots.get()
    desk = factories.staff()
    doctor = factories.staff(role=roles.DOCTOR)
    accounts = [factories.patient_account(mobile=str(13700000000 + n), name=f"叫号{n}") for n in range(8)]
    for account in accounts:
        # Booked two hours before the 22:00 session: at the real time of day it may have closed already.
        with time_machine.travel(slot.starts_at - timedelta(hours=2), tick=False):
            booking = services.hold_create(
                account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
            )
        with time_machine.travel(slot.starts_at - timedelta(minutes=10), tick=False):
            services.booking_check_in(staff=desk, booking_id=booking.pk)
    rooms = [f"{n}诊室" for n in range(12)]  # more rooms than patients: four find the queue empty
    results = _at_once(
        [
            lambda room=room: services.queue_call_next(doctor=doctor, session_id=session.pk, room=room)
            for room in rooms
        ]
    )
    called = [r for r in results if isinstance(r, QueueEntry)]
    empty = [r for r in results if isinstance(r, AppError) and r.code == "queue_empty"]
    assert len(called) == 8 and len(empty) == 4, results
    assert len({entry.pk for entry in called}) == 8
    by_room = dict(QueueEntry.objects.filter(session=session).values_list("pk", "room"))
    assert sorted(by_room.values()) == sorted(entry.room for entry in called)
