"""The clinic day's queue: check-in windows (time-machine at their edges), the order of calling (slice, then
arrival; late arrivals after on-time ones; priority and returning patients interleaved; a skipped patient
back after N others), the state machine (no backward move except the explicit ones), every move recorded,
and the doctor's console with its permissions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client

from core.errors import AppError
from medcard import roles
from medcard.models import Patient, User
from reservations import selectors, services
from reservations.models import Booking, QueueEntry, QueueEvent, QueueRule, Session
from tests import factories


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def doctor(db: None) -> User:
    return factories.staff(role=roles.DOCTOR)


def _session(*, slices: int = 2, capacity: int = 10) -> Session:
    return factories.clinic_session(fee="0.00", days_ahead=0, hour=22, slices=slices, capacity=capacity)


def _book(session: Session, *, slice_index: int = 0, name: str = "排队") -> Booking:
    account = factories.patient_account(name=name)
    slot = session.slots.order_by("starts_at")[slice_index]
    # Booked two hours before the 22:00 session: at the real time of day its booking may have closed.
    return services.hold_create(
        account=account,
        patient_id=factories.verified_patient_of(account).pk,
        slot_id=slot.pk,
        now=slot.starts_at - timedelta(hours=2),
    )


def _check_in(desk: User, booking: Booking, *, minutes_before_slice: float = 10) -> QueueEntry:
    booking.refresh_from_db()
    with time_machine.travel(booking.slot.starts_at - timedelta(minutes=minutes_before_slice), tick=False):
        services.booking_check_in(staff=desk, booking_id=booking.pk)
    return QueueEntry.objects.get(booking=booking)


# --- Check-in windows --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_check_in_opens_60_minutes_before_the_slice_and_names_the_time_before_that(desk: User) -> None:
    booking = _book(_session())
    opens = booking.slot.starts_at - timedelta(minutes=60)
    with time_machine.travel(opens - timedelta(seconds=1), tick=False), pytest.raises(AppError) as early:
        services.booking_check_in(staff=desk, booking_id=booking.pk)
    assert early.value.code == "check_in_too_early" and "21:00" in early.value.message
    with time_machine.travel(opens, tick=False):
        services.booking_check_in(staff=desk, booking_id=booking.pk)
    assert QueueEntry.objects.get(booking=booking).on_time


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("after_start", "on_time"), [(timedelta(minutes=15), True), (timedelta(minutes=15, seconds=1), False)]
)
def test_on_time_until_the_slice_start_plus_the_grace(
    desk: User, after_start: timedelta, on_time: bool
) -> None:
    booking = _book(_session())
    with time_machine.travel(booking.slot.starts_at + after_start, tick=False):
        services.booking_check_in(staff=desk, booking_id=booking.pk)
    assert QueueEntry.objects.get(booking=booking).on_time is on_time


@pytest.mark.django_db
def test_a_department_sets_its_own_window(desk: User) -> None:
    session = _session()
    QueueRule.objects.create(department=session.department, opens_minutes_before=30, grace_minutes=0)
    booking = _book(session)
    with (
        time_machine.travel(booking.slot.starts_at - timedelta(minutes=31), tick=False),
        pytest.raises(AppError),
    ):
        services.booking_check_in(staff=desk, booking_id=booking.pk)
    with time_machine.travel(booking.slot.starts_at + timedelta(seconds=1), tick=False):
        services.booking_check_in(staff=desk, booking_id=booking.pk)
    assert not QueueEntry.objects.get(booking=booking).on_time


# --- Order of calling --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_calls_go_by_slice_then_arrival_and_late_arrivals_come_after_on_time_ones(
    desk: User, doctor: User
) -> None:
    session = _session()
    second_slice = _check_in(desk, _book(session, slice_index=1), minutes_before_slice=50)
    late = _check_in(desk, _book(session), minutes_before_slice=-20)  # 20 minutes after its slice started
    first_slice = _check_in(desk, _book(session), minutes_before_slice=5)
    order = [
        services.queue_call_next(doctor=doctor, session_id=session.pk, room="1诊室").pk for _ in range(3)
    ]
    assert order == [first_slice.pk, second_slice.pk, late.pk]


@pytest.mark.django_db
def test_priority_patients_take_every_second_call_and_80_year_olds_are_priority(
    desk: User, doctor: User
) -> None:
    session = _session()
    normal = [_check_in(desk, _book(session), minutes_before_slice=30 - n) for n in range(3)]
    elder_booking = _book(session, name="老人")
    Patient.objects.filter(pk=elder_booking.patient_id).update(birth_date=date(1930, 1, 1))
    elder = _check_in(desk, elder_booking, minutes_before_slice=1)
    flagged = _check_in(desk, _book(session), minutes_before_slice=0.5)
    services.queue_flag(staff=desk, entry_id=flagged.pk, priority=True, reason="孕妇")
    assert elder.priority
    calls = [
        services.queue_call_next(doctor=doctor, session_id=session.pk, room="1诊室").pk for _ in range(5)
    ]
    assert calls == [normal[0].pk, elder.pk, normal[1].pk, flagged.pk, normal[2].pk]


@pytest.mark.django_db
def test_returning_patients_with_results_are_interleaved_by_their_own_ratio(desk: User, doctor: User) -> None:
    session = _session()
    QueueRule.objects.create(department=session.department, results_every=3)
    normal = [_check_in(desk, _book(session), minutes_before_slice=30 - n) for n in range(4)]
    back = _check_in(desk, _book(session), minutes_before_slice=1)
    services.queue_flag(staff=desk, entry_id=back.pk, with_results=True)
    calls = [
        services.queue_call_next(doctor=doctor, session_id=session.pk, room="1诊室").pk for _ in range(5)
    ]
    assert calls == [normal[0].pk, normal[1].pk, back.pk, normal[2].pk, normal[3].pk]


@pytest.mark.django_db
def test_a_skipped_patient_goes_back_after_three_others(desk: User, doctor: User) -> None:
    session = _session()
    entries = [_check_in(desk, _book(session), minutes_before_slice=30 - n) for n in range(5)]
    first = services.queue_call_next(doctor=doctor, session_id=session.pk, room="1诊室")
    services.queue_move(actor=doctor, entry_id=first.pk, action="skip", room="1诊室")
    calls = [
        services.queue_call_next(doctor=doctor, session_id=session.pk, room="1诊室").pk for _ in range(4)
    ]
    assert calls == [entries[1].pk, entries[2].pk, entries[3].pk, entries[0].pk]


@pytest.mark.django_db
def test_the_phone_shows_how_many_are_ahead_and_says_so_when_two_are(desk: User, doctor: User) -> None:
    session = _session()
    entries = [_check_in(desk, _book(session), minutes_before_slice=30 - n) for n in range(4)]
    place = selectors.my_place(booking=entries[3].booking)
    assert (place["ahead"], place["two_ahead"]) == (3, False) and place["wait_minutes"] > 0
    services.queue_call_next(doctor=doctor, session_id=session.pk, room="1诊室")
    assert selectors.my_place(booking=entries[3].booking)["two_ahead"] is True


# --- The state machine -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_queue_moves_only_forward_except_skip_and_a_staff_requeue(desk: User, doctor: User) -> None:
    session = _session()
    entry = _check_in(desk, _book(session))
    for action in ("recall", "skip", "complete", "absent", "requeue"):
        with pytest.raises(AppError) as refused:
            services.queue_move(actor=doctor, entry_id=entry.pk, action=action)
        assert refused.value.code == "queue_move"
    services.queue_call_next(doctor=doctor, session_id=session.pk, room="2诊室")
    services.queue_move(actor=doctor, entry_id=entry.pk, action="recall", room="2诊室")
    with pytest.raises(AppError):
        services.queue_move(actor=doctor, entry_id=entry.pk, action="requeue")
    services.queue_move(actor=doctor, entry_id=entry.pk, action="complete", room="2诊室")
    for action in ("recall", "skip", "complete", "absent", "requeue"):
        with pytest.raises(AppError):
            services.queue_move(actor=doctor, entry_id=entry.pk, action=action)
    entry.refresh_from_db()
    assert entry.state == "completed" and entry.booking.status == "completed"
    moves = list(
        QueueEvent.objects.filter(entry=entry)
        .order_by("id")
        .values_list("action", "from_state", "to_state", "actor")
    )
    assert moves == [
        ("check_in", "", "waiting", desk.pk),
        ("call", "waiting", "called", doctor.pk),
        ("recall", "called", "called", doctor.pk),
        ("complete", "called", "completed", doctor.pk),
    ]


@pytest.mark.django_db
def test_an_absent_patient_is_put_back_in_line_only_by_staff(desk: User, doctor: User) -> None:
    session = _session()
    entry = _check_in(desk, _book(session))
    services.queue_call_next(doctor=doctor, session_id=session.pk, room="1诊室")
    services.queue_move(actor=doctor, entry_id=entry.pk, action="absent", room="1诊室")
    answer = _as(desk).post(f"/booking/staff/queue/{entry.pk}/requeue/")
    assert answer.status_code == 302
    entry.refresh_from_db()
    assert entry.state == "waiting"
    assert _as(doctor).post(f"/booking/staff/queue/{entry.pk}/requeue/").status_code == 404


@pytest.mark.django_db
def test_another_room_cannot_move_my_patient(desk: User, doctor: User) -> None:
    session = _session()
    entry = _check_in(desk, _book(session))
    services.queue_call_next(doctor=doctor, session_id=session.pk, room="1诊室")
    with pytest.raises(AppError) as refused:
        services.queue_move(actor=doctor, entry_id=entry.pk, action="complete", room="2诊室")
    assert refused.value.code == "queue_other_room"


# --- The console -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_console_calls_the_next_patient_into_my_room(desk: User, doctor: User) -> None:
    session = _session()
    entry = _check_in(desk, _book(session, name="张三丰"))
    client = _as(doctor)
    answer = client.post(f"/booking/console/sessions/{session.pk}/call/", {"room": "5诊室"})
    assert answer.status_code == 302
    page = client.get(answer["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'data-testid="called-{entry.number}"' in page and "张三丰" in page
    client.post(f"/booking/console/entries/{entry.pk}/complete/", {"room": "5诊室"})
    entry.refresh_from_db()
    assert entry.state == "completed"
    empty = client.post(f"/booking/console/sessions/{session.pk}/call/", {"room": "5诊室"}, follow=True)
    assert "Nobody is waiting" in empty.content.decode() or "无人" in empty.content.decode()


@pytest.mark.django_db
def test_the_console_is_for_doctors_only(patient: User, desk: User, pharmacist: User) -> None:
    session = _session()
    entry = _check_in(desk, _book(session))
    for user in (patient, desk, pharmacist):
        client = _as(user)
        assert client.get(f"/booking/console/sessions/{session.pk}/").status_code == 404
        assert client.post(f"/booking/console/sessions/{session.pk}/call/", {"room": "1"}).status_code == 404
    entry.refresh_from_db()
    assert entry.state == "waiting" and not QueueEvent.objects.filter(action="call").exists()


@pytest.mark.django_db(transaction=True)
def test_a_live_stream_gives_its_database_connection_back_while_it_waits() -> None:
    """Each phone following its place keeps a stream open for minutes: it holds no connection meanwhile."""
    from django.db import connection

    booking = _book(_session(), name="等候")
    client = _as(booking.account)
    stream = client.get(f"/booking/appointments/{booking.pk}/queue/stream/")
    assert stream.status_code == 200
    frames = iter(stream.streaming_content)
    first = next(frames).decode()
    assert first.startswith("event: place")
    # Closed until the next change needs a read (Django never closes an in-memory SQLite test database).
    in_memory = connection.vendor == "sqlite" and connection.is_in_memory_db()
    assert connection.connection is None or in_memory
    stream.close()
