"""Sessions generated from weekly templates, booking rules, and the clock of a session (release, cut-offs),
all in Asia/Shanghai local time while storage is UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from core.clock import HOSPITAL_TZ
from reservations import schedules
from reservations.models import BookingRule, ClinicType, Department, Doctor, Session, Slot, WeeklyTemplate

SATURDAY = date(2026, 12, 12)  # a Saturday, 14 days after Saturday 28 November 2026


def _local(*args: int) -> datetime:
    return datetime(*args, tzinfo=HOSPITAL_TZ)  # type: ignore[misc]


def _clinic(
    *, weekday: int = 5, doctor: bool = True, fee: str = "50.00", code: str = "neurology", **template: object
) -> WeeklyTemplate:
    """A department with a chief physician (or an examination room) holding one morning a week."""
    department, _ = Department.objects.get_or_create(
        code=code, defaults={"name_zh": "神经内科", "name_en": "Neurology"}
    )
    clinic_type, _ = ClinicType.objects.get_or_create(
        code="expert", defaults={"name_zh": "专家门诊", "name_en": "Expert clinic", "fee": Decimal(fee)}
    )
    values: dict[str, object] = {
        "department": department,
        "clinic_type": clinic_type,
        "weekday": weekday,
        "half_day": "am",
        "start_time": time(8, 0),
        "end_time": time(11, 30),
        "quota_per_slice": 4,
        "desk_quota_per_slice": 1,
    }
    if doctor:
        values["doctor"] = Doctor.objects.create(
            code=f"dr-{code}-{weekday}", department=department, name_zh="王建国", name_en="Wang Jianguo",
            title="chief",
        )  # fmt: skip
    else:
        values["room"] = "CT-2"
    values.update(template)
    return WeeklyTemplate.objects.create(**values)


@pytest.mark.django_db
def test_generation_makes_a_session_with_thirty_minute_slices_in_local_time() -> None:
    _clinic()
    created = schedules.sessions_generate(days_ahead=14, today=date(2026, 11, 28))
    assert created == 3  # Saturdays 28 November, 5 and 12 December
    session = Session.objects.get(date=SATURDAY)
    assert session.starts_at == _local(2026, 12, 12, 8, 0)
    assert session.starts_at.astimezone(UTC) == datetime(2026, 12, 12, 0, 0, tzinfo=UTC)
    assert session.ends_at == _local(2026, 12, 12, 11, 30)
    assert session.fee == Decimal("50.00") and session.half_day == "am" and session.status == "open"
    slots = list(session.slots.order_by("starts_at"))
    assert [s.starts_at.astimezone(HOSPITAL_TZ).strftime("%H:%M") for s in slots] == [
        "08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00",
    ]  # fmt: skip
    assert all(s.ends_at - s.starts_at == timedelta(minutes=30) for s in slots)
    assert {(s.capacity, s.desk_capacity, s.taken) for s in slots} == {(4, 1, 0)}


@pytest.mark.django_db
def test_running_generation_twice_creates_nothing_new() -> None:
    _clinic()
    _clinic(doctor=False, code="ct")
    first = schedules.sessions_generate(days_ahead=14, today=date(2026, 11, 28))
    counts = (Session.objects.count(), Slot.objects.count())
    assert first == 6
    assert schedules.sessions_generate(days_ahead=14, today=date(2026, 11, 28)) == 0
    assert (Session.objects.count(), Slot.objects.count()) == counts


@pytest.mark.django_db
def test_generation_never_alters_an_existing_session() -> None:
    template = _clinic()
    schedules.sessions_generate(days_ahead=0, today=SATURDAY)
    session = Session.objects.get()
    Session.objects.filter(pk=session.pk).update(status="stopped", stopped_reason="专家外出会诊")
    template.clinic_type.fee = Decimal("80.00")
    template.clinic_type.save()
    template.quota_per_slice = 10
    template.save()
    assert schedules.sessions_generate(days_ahead=0, today=SATURDAY) == 0
    session.refresh_from_db()
    assert (session.status, session.fee) == ("stopped", Decimal("50.00"))
    assert set(session.slots.values_list("capacity", flat=True)) == {4}


@pytest.mark.django_db
def test_a_fee_change_applies_to_sessions_generated_afterwards() -> None:
    template = _clinic()
    schedules.sessions_generate(days_ahead=0, today=SATURDAY)
    ClinicType.objects.filter(pk=template.clinic_type_id).update(fee=Decimal("80.00"))
    schedules.sessions_generate(days_ahead=7, today=SATURDAY)
    assert dict(Session.objects.values_list("date", "fee")) == {
        SATURDAY: Decimal("50.00"),
        SATURDAY + timedelta(days=7): Decimal("80.00"),
    }


@pytest.mark.django_db
def test_inactive_templates_and_other_weekdays_make_no_session() -> None:
    _clinic(active=False)
    _clinic(weekday=0, code="cardiology")  # Mondays
    assert schedules.sessions_generate(days_ahead=5, today=SATURDAY) == 1  # Monday 14 December only
    assert Session.objects.get().date == date(2026, 12, 14)


@pytest.mark.django_db
def test_a_last_slice_that_does_not_fit_ends_with_the_session() -> None:
    _clinic(start_time=time(13, 30), end_time=time(15, 0), half_day="pm", slice_minutes=40)
    schedules.sessions_generate(days_ahead=0, today=SATURDAY)
    ends = [s.ends_at.astimezone(HOSPITAL_TZ).time() for s in Slot.objects.order_by("starts_at")]
    assert ends == [time(14, 10), time(14, 50), time(15, 0)]


@pytest.mark.django_db
def test_a_room_session_without_a_doctor_is_generated_per_room() -> None:
    _clinic(doctor=False, code="ct")
    _clinic(doctor=False, code="ct", room="CT-3")
    assert schedules.sessions_generate(days_ahead=0, today=SATURDAY) == 2
    assert sorted(Session.objects.values_list("room", flat=True)) == ["CT-2", "CT-3"]


@pytest.mark.django_db
def test_generation_starts_from_the_local_date_not_the_utc_date() -> None:
    _clinic()  # Saturdays
    # 00:30 on Saturday in Shanghai is still Friday in UTC.
    with time_machine.travel(_local(2026, 12, 12, 0, 30), tick=False):
        assert schedules.sessions_generate(days_ahead=0) == 1
    assert Session.objects.get().date == SATURDAY


@pytest.mark.django_db
def test_the_command_generates_up_to_the_longest_release_window() -> None:
    _clinic(weekday=SATURDAY.weekday())
    department = Department.objects.create(code="eye", name_zh="眼科", name_en="Ophthalmology")
    BookingRule.objects.create(department=department, release_days_ahead=21)
    out = StringIO()
    with time_machine.travel(_local(2026, 11, 28, 1, 0), tick=False):
        call_command("generate_sessions", stdout=out)
    assert Session.objects.latest("date").date == date(2026, 12, 19)  # 28 Nov + 21 days
    assert "4 sessions" in out.getvalue()
    with time_machine.travel(_local(2026, 11, 28, 1, 0), tick=False):
        call_command("generate_sessions", "--days", "30", stdout=StringIO())
    assert Session.objects.count() == 5


@pytest.mark.django_db
def test_the_generation_task_uses_the_default_rule_window() -> None:
    from reservations.tasks_schedules import sessions_generate_task

    _clinic()
    with time_machine.travel(_local(2026, 11, 28, 1, 0), tick=False):
        assert sessions_generate_task() == 3  # 14 days: 28 Nov, 5 and 12 Dec
    assert BookingRule.objects.get(department__isnull=True).release_days_ahead == 14


@pytest.mark.django_db
def test_a_department_without_its_own_rule_uses_the_hospital_default() -> None:
    neurology = Department.objects.create(code="neurology", name_zh="神经内科", name_en="Neurology")
    eye = Department.objects.create(code="eye", name_zh="眼科", name_en="Ophthalmology")
    own = BookingRule.objects.create(department=eye, release_days_ahead=7, release_time=time(6, 30))
    default = schedules.booking_rule_for(department=neurology)
    assert default.department is None and default.release_days_ahead == 14
    assert default.release_time == time(7, 0)
    assert schedules.booking_rule_for(department=neurology) == default
    assert BookingRule.objects.filter(department__isnull=True).count() == 1
    assert schedules.booking_rule_for(department=eye) == own


# --- The clock of a session --------------------------------------------------------------------------------


@pytest.fixture
def saturday_session(db: None) -> Session:
    _clinic()
    schedules.sessions_generate(days_ahead=0, today=SATURDAY)
    return Session.objects.get()


def test_a_session_14_days_ahead_is_released_at_07_00_local(saturday_session: Session) -> None:
    release = schedules.session_release_at(session=saturday_session)
    assert release == _local(2026, 11, 28, 7, 0)
    assert release.astimezone(UTC) == datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    with time_machine.travel(_local(2026, 11, 28, 6, 59, 59), tick=False):
        assert not schedules.session_is_released(session=saturday_session, now=timezone.now())
    with time_machine.travel(_local(2026, 11, 28, 7, 0, 0), tick=False):
        assert schedules.session_is_released(session=saturday_session, now=timezone.now())


def test_a_department_rule_moves_the_release(saturday_session: Session) -> None:
    BookingRule.objects.create(
        department=saturday_session.department, release_days_ahead=7, release_time=time(0, 0)
    )
    assert schedules.session_release_at(session=saturday_session) == _local(2026, 12, 5, 0, 0)
    assert not schedules.session_is_released(session=saturday_session, now=_local(2026, 12, 4, 23, 59, 59))
    assert schedules.session_is_released(session=saturday_session, now=_local(2026, 12, 5, 0, 0))


def test_booking_a_slice_closes_30_minutes_before_it_starts(saturday_session: Session) -> None:
    rule = schedules.booking_rule_for(department=saturday_session.department)
    slot = saturday_session.slots.order_by("starts_at").first()
    assert slot is not None
    assert schedules.slot_booking_closes_at(slot=slot, rule=rule) == _local(2026, 12, 12, 7, 30)


def test_cancelling_is_possible_until_23_59_local_the_day_before(saturday_session: Session) -> None:
    rule = schedules.booking_rule_for(department=saturday_session.department)
    deadline = schedules.cancel_deadline(session=saturday_session, rule=rule)
    assert deadline == _local(2026, 12, 11, 23, 59)
    assert deadline.astimezone(UTC) == datetime(2026, 12, 11, 15, 59, tzinfo=UTC)
    rule.cancel_deadline_days_before, rule.cancel_deadline_time = 0, time(0, 0)
    assert schedules.cancel_deadline(session=saturday_session, rule=rule) == _local(2026, 12, 12, 0, 0)


def test_the_waitlist_closes_12_hours_before_the_session(saturday_session: Session) -> None:
    rule = schedules.booking_rule_for(department=saturday_session.department)
    assert schedules.waitlist_closes_at(session=saturday_session, rule=rule) == _local(2026, 12, 11, 20, 0)


def test_released_through_turns_over_at_the_release_time() -> None:
    rule = BookingRule(release_days_ahead=14, release_time=time(7, 0))
    assert schedules.released_through(rule=rule, now=_local(2026, 11, 28, 6, 59, 59)) == date(2026, 12, 11)
    assert schedules.released_through(rule=rule, now=_local(2026, 11, 28, 7, 0)) == SATURDAY
    # 07:30 on 29 November in Shanghai is still 28 November in UTC: the local date counts.
    assert schedules.released_through(rule=rule, now=_local(2026, 11, 29, 7, 30)) == date(2026, 12, 13)
