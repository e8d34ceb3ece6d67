"""Finding a number without signing in: department search (Chinese, English, pinyin initials), dates and
doctors with numbers left, a session's slices and why one cannot be booked, in pages and in the API."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from core.clock import HOSPITAL_TZ
from reservations import discovery, schedules
from reservations.models import ClinicType, Department, Doctor, Session, Slot, WeeklyTemplate

SATURDAY = date(2026, 12, 12)  # released at 07:00 local on 28 November under the default rule
URLS = pytest.mark.urls("tests.reservations.discovery_test_urls")


def _local(*args: int) -> datetime:
    return datetime(*args, tzinfo=HOSPITAL_TZ)  # type: ignore[misc]


RELEASE = _local(2026, 11, 28, 7, 0)


def _department(code: str, name_zh: str, name_en: str, **extra: object) -> Department:
    return Department.objects.create(code=code, name_zh=name_zh, name_en=name_en, **extra)


def _weekly(department: Department, *, doctor: str | None, weekday: int = 5, **template: object) -> None:
    """A weekly morning (08:00-10:00, four 30-minute slices of 2 numbers) of a chief physician or a room."""
    clinic_type, _ = ClinicType.objects.get_or_create(
        code="expert", defaults={"name_zh": "专家门诊", "name_en": "Expert clinic", "fee": Decimal("50")}
    )
    values: dict[str, object] = {
        "department": department, "clinic_type": clinic_type, "weekday": weekday, "half_day": "am",
        "start_time": time(8, 0), "end_time": time(10, 0), "quota_per_slice": 2,
    }  # fmt: skip
    if doctor:
        values["doctor"] = Doctor.objects.create(
            code=doctor, department=department, name_zh="王建国", name_en="Wang Jianguo", title="chief"
        )
    else:
        values["room"] = "CT-2"
    values.update(template)
    WeeklyTemplate.objects.create(**values)


@pytest.fixture
def neurology(db: None) -> Department:
    """神经内科 with Dr Wang on Saturday mornings; sessions generated from the release day on."""
    department = _department("neurology", "神经内科", "Neurology", sort_order=1)
    _weekly(department, doctor="dr-wang")
    schedules.sessions_generate(days_ahead=21, today=date(2026, 11, 28))
    return department


def _session(on: date) -> Session:
    return Session.objects.get(date=on)


def _take(session: Session, numbers: int) -> None:
    """Use up ``numbers`` numbers, first slices first (as bookings would)."""
    for slot in session.slots.order_by("starts_at"):
        taken = min(numbers, slot.capacity)
        Slot.objects.filter(pk=slot.pk).update(taken=taken)
        numbers -= taken


# --- Search ------------------------------------------------------------------------------------------------


@pytest.fixture
def departments(db: None) -> None:
    _department("neurology", "神经内科", "Neurology", pinyin_initials="sjnk")
    _department("cardiology", "心血管内科", "Cardiology", pinyin_initials="xxgnk")
    _department("neurosurgery", "神经外科", "Neurosurgery", pinyin_initials="sjwk")
    _department("dermatology", "皮肤科", "Dermatology")  # initials not filled yet


def _codes(query: str) -> list[str]:
    return list(discovery.department_search(query=query).values_list("code", flat=True))


@pytest.mark.usefixtures("departments")
def test_search_finds_a_department_by_its_chinese_name() -> None:
    assert _codes("神经内科") == ["neurology"]
    assert sorted(_codes("神经")) == ["neurology", "neurosurgery"]


@pytest.mark.usefixtures("departments")
def test_search_finds_a_department_by_its_english_name_in_any_case() -> None:
    assert _codes("CARDIO") == ["cardiology"]
    assert _codes("neurosurgery") == ["neurosurgery"]


@pytest.mark.usefixtures("departments")
def test_search_finds_a_department_by_pinyin_initials() -> None:
    assert _codes("sjnk") == ["neurology"]
    assert _codes("SJNK") == ["neurology"]
    assert sorted(_codes("nk")) == ["cardiology", "neurology"]


@pytest.mark.usefixtures("departments")
def test_search_finds_a_department_by_full_pinyin_typed_as_one_word() -> None:
    assert _codes("shenjingneike") == ["neurology"]
    assert _codes("ShenJing NeiKe") == ["neurology"]
    assert sorted(_codes("shenjing")) == ["neurology", "neurosurgery"]
    assert _codes("pifu") == ["dermatology"]  # initials not filled yet: full pinyin still works


@pytest.mark.usefixtures("departments")
def test_search_finds_a_department_by_a_symptom_named_in_its_description() -> None:
    Department.objects.filter(code="neurology").update(
        description_zh="头痛、头晕、肢体麻木、癫痫、脑血管病", description_en="Headache, dizziness, stroke"
    )
    assert _codes("头痛") == ["neurology"]
    assert _codes("headache") == ["neurology"]


@pytest.mark.usefixtures("departments")
def test_search_by_initials_works_before_they_are_filled_in() -> None:
    assert _codes("pfk") == ["dermatology"]


@pytest.mark.usefixtures("departments")
def test_an_empty_search_lists_every_department_and_nonsense_finds_none() -> None:
    assert len(_codes("  ")) == 4
    assert _codes("zzzz") == []
    assert _codes("'; drop table") == []


@pytest.mark.usefixtures("departments")
def test_pinyin_refresh_fills_only_the_empty_initials() -> None:
    Department.objects.filter(code="neurology").update(pinyin_initials="custom")
    assert discovery.department_pinyin_refresh() == 1
    assert Department.objects.get(code="dermatology").pinyin_initials == "pfk"
    assert Department.objects.get(code="neurology").pinyin_initials == "custom"
    assert discovery.department_pinyin_refresh() == 0


def test_pinyin_initials_of_department_names() -> None:
    assert discovery.pinyin_initials("神经内科") == "sjnk"
    assert discovery.pinyin_initials("心血管内科") == "xxgnk"
    assert discovery.pinyin_initials("MRI 检查室") == "mrijcs"


# --- Availability ------------------------------------------------------------------------------------------


def test_a_session_is_listed_from_its_release_moment_on(neurology: Department) -> None:
    before = discovery.doctors_with_availability(
        department=neurology, on=SATURDAY, now=RELEASE - timedelta(seconds=1)
    )
    after = discovery.doctors_with_availability(department=neurology, on=SATURDAY, now=RELEASE)
    assert before == []
    [row] = after
    assert row.doctor is not None and row.doctor.code == "dr-wang"
    assert (row.title, row.clinic_type.code, row.fee) == ("主任医师", "expert", Decimal("50.00"))
    assert (row.remaining, row.bookable_remaining) == (8, 8)


def test_remaining_numbers_subtract_what_is_taken(neurology: Department) -> None:
    _take(_session(SATURDAY), 3)
    [row] = discovery.doctors_with_availability(department=neurology, on=SATURDAY, now=RELEASE)
    assert row.remaining == 5


def test_slices_closed_by_the_cut_off_are_not_counted_as_bookable(neurology: Department) -> None:
    # 08:45 local: the 08:00 and 08:30 slices are closed (30-minute cut-off), 09:00 closed too at 08:30.
    now = _local(2026, 12, 12, 8, 45)
    [row] = discovery.doctors_with_availability(department=neurology, on=SATURDAY, now=now)
    assert (row.remaining, row.bookable_remaining) == (8, 2)


def test_a_stopped_session_is_not_listed(neurology: Department) -> None:
    Session.objects.filter(date=SATURDAY).update(status="stopped", stopped_reason="专家外出会诊")
    assert discovery.doctors_with_availability(department=neurology, on=SATURDAY, now=RELEASE) == []


def test_available_dates_count_the_numbers_left_on_each_released_date(neurology: Department) -> None:
    _take(_session(date(2026, 12, 5)), 8)
    dates = discovery.available_dates(department=neurology, now=RELEASE, days=15)
    assert dates == [(date(2026, 11, 28), 8), (date(2026, 12, 5), 0), (SATURDAY, 8)]
    earlier = discovery.available_dates(department=neurology, now=RELEASE - timedelta(seconds=1), days=15)
    assert [day for day, _ in earlier] == [date(2026, 11, 28), date(2026, 12, 5)]


def test_available_dates_count_only_numbers_that_can_still_be_booked(neurology: Department) -> None:
    now = _local(2026, 12, 12, 8, 45)  # 08:00-09:00 slices closed by the 30-minute cut-off
    dates = dict(discovery.available_dates(department=neurology, now=now, days=15))
    assert dates[SATURDAY] == 2
    later = dict(discovery.available_dates(department=neurology, now=_local(2026, 12, 12, 9, 45), days=15))
    assert later[SATURDAY] == 0


@URLS
def test_a_department_page_on_the_day_shows_only_bookable_numbers_in_a_date_strip_anchored_to_doctors(
    client: Client, neurology: Department
) -> None:
    with time_machine.travel(_local(2026, 12, 12, 8, 45), tick=False):
        page = client.get("/booking/departments/neurology/").content.decode()
    today = page[page.index('href="?date=2026-12-12#doctors"') :]
    assert today[: today.index("</li>")].count("剩余 2 个号") == 1  # 8 on the session, 6 of them closed
    doctors = page[page.index('<h2 id="doctors">') :]
    assert "剩余 2 个号" in doctors and "剩余 8 个号" not in doctors


def test_the_next_release_is_tomorrow_at_07_00_for_the_following_date(neurology: Department) -> None:
    upcoming = discovery.department_next_release(department=neurology, now=RELEASE)
    assert upcoming.date == date(2026, 12, 13)
    assert upcoming.release_at == _local(2026, 11, 29, 7, 0)


def test_slices_say_why_they_cannot_be_booked(neurology: Department) -> None:
    session = _session(SATURDAY)
    Slot.objects.filter(session=session, starts_at=_local(2026, 12, 12, 9, 30)).update(taken=2)
    unreleased = discovery.session_slots(session=session, now=RELEASE - timedelta(seconds=1))
    assert {row.unbookable_reason for row in unreleased} == {"not_released"}
    rows = discovery.session_slots(session=session, now=_local(2026, 12, 12, 7, 59, 59))
    assert [(row.starts_at_local, row.remaining, row.unbookable_reason) for row in rows] == [
        (time(8, 0), 2, "closed"),
        (time(8, 30), 2, None),
        (time(9, 0), 2, None),
        (time(9, 30), 0, "full"),
    ]
    assert rows[1].bookable and rows[1].booking_closes_at == _local(2026, 12, 12, 8, 0)
    assert rows[3].ends_at_local == time(10, 0)
    Session.objects.filter(pk=session.pk).update(status="stopped", stopped_reason="停诊")
    session.refresh_from_db()
    assert {row.unbookable_reason for row in discovery.session_slots(session=session, now=RELEASE)} == {
        "stopped"
    }


# --- Pages -------------------------------------------------------------------------------------------------


@URLS
@pytest.mark.usefixtures("departments")
def test_the_department_page_searches_without_javascript(client: Client) -> None:
    page = client.get("/booking/departments/", {"q": "sjnk"}).content.decode()
    assert '<form method="get"' in page and 'name="q"' in page and 'value="sjnk"' in page
    assert "神经内科" in page and "心血管内科" not in page
    assert 'href="/booking/departments/neurology/"' in page


@URLS
@pytest.mark.usefixtures("departments")
def test_the_department_list_follows_the_language(client: Client) -> None:
    page = client.get("/booking/departments/", {"q": "cardio"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Cardiology" in page


@URLS
def test_a_department_page_shows_dates_and_doctors_with_numbers_left(
    client: Client, neurology: Department
) -> None:
    _take(_session(SATURDAY), 3)
    with time_machine.travel(RELEASE, tick=False):
        response = client.get("/booking/departments/neurology/", {"date": "2026-12-12"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'href="?date=2026-12-12#doctors"' in page and 'href="?date=2026-12-05#doctors"' in page
    assert "王建国" in page and "主任医师" in page
    assert "¥50.00" in page
    assert re.search(r"\b5\b", page)
    assert f'href="/booking/departments/neurology/sessions/{_session(SATURDAY).pk}/"' in page


@URLS
def test_a_department_page_does_not_show_an_unreleased_date(client: Client, neurology: Department) -> None:
    with time_machine.travel(RELEASE - timedelta(seconds=1), tick=False):
        page = client.get("/booking/departments/neurology/", {"date": "2026-12-12"}).content.decode()
    assert 'href="?date=2026-12-12#doctors"' not in page and 'href="?date=2026-12-05#doctors"' in page
    assert "王建国" not in page


@URLS
def test_an_unknown_department_is_404(client: Client, neurology: Department) -> None:
    assert client.get("/booking/departments/no-such/").status_code == 404


@URLS
def test_the_session_page_has_a_hold_form_on_each_bookable_slice(
    client: Client, neurology: Department
) -> None:
    session = _session(SATURDAY)
    full = Slot.objects.get(session=session, starts_at=_local(2026, 12, 12, 9, 30))
    Slot.objects.filter(pk=full.pk).update(taken=2)
    with time_machine.travel(RELEASE, tick=False):
        page = client.get(f"/booking/departments/neurology/sessions/{session.pk}/").content.decode()
    assert page.count('action="/booking/hold/"') == 3
    assert page.count('name="slot_id"') == 3
    assert f'value="{full.pk}"' not in page
    assert "09:30" in page and "csrfmiddlewaretoken" in page


@URLS
def test_the_session_page_of_an_unreleased_session_offers_no_hold(
    client: Client, neurology: Department
) -> None:
    session = _session(SATURDAY)
    with time_machine.travel(RELEASE - timedelta(seconds=1), tick=False):
        page = client.get(f"/booking/departments/neurology/sessions/{session.pk}/").content.decode()
    assert 'name="slot_id"' not in page
    assert "2026-11-28 07:00" in page  # when the numbers are released, in local time


@URLS
def test_a_session_under_another_department_is_404(client: Client, neurology: Department) -> None:
    _department("eye", "眼科", "Ophthalmology")
    assert client.get(f"/booking/departments/eye/sessions/{_session(SATURDAY).pk}/").status_code == 404


# --- API ---------------------------------------------------------------------------------------------------


@URLS
@pytest.mark.usefixtures("departments")
def test_the_search_api_answers_without_signing_in(client: Client) -> None:
    response = client.get("/api/v1/departments/search/", {"q": "sjnk"})
    assert response.status_code == 200
    [found] = response.json()
    assert (found["code"], found["name_zh"], found["pinyin_initials"]) == ("neurology", "神经内科", "sjnk")


@URLS
@pytest.mark.usefixtures("departments")
def test_a_search_too_long_names_the_field(client: Client) -> None:
    response = client.get("/api/v1/departments/search/", {"q": "x" * 41})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["q"]


@URLS
def test_the_availability_api_lists_sessions_and_dates(client: Client, neurology: Department) -> None:
    _take(_session(SATURDAY), 3)
    with time_machine.travel(RELEASE, tick=False):
        body = client.get("/api/v1/departments/neurology/availability/", {"date": "2026-12-12"}).json()
    assert body["date"] == "2026-12-12"
    assert {"date": "2026-12-12", "remaining": 5} in body["dates"]
    [session] = body["sessions"]
    assert session["doctor"]["title"] == "chief" and session["fee"] == "50.00"
    assert (session["remaining"], session["bookable_remaining"]) == (5, 5)
    assert session["starts_at"].endswith("+08:00")
    assert body["next_release_date"] == "2026-12-13"


@URLS
@pytest.mark.parametrize("value", ["12/12/2026", "2026-13-01", "tomorrow"])
def test_a_bad_date_names_the_field(client: Client, neurology: Department, value: str) -> None:
    response = client.get("/api/v1/departments/neurology/availability/", {"date": value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == ["date"]


@URLS
def test_a_blank_availability_date_is_refused_with_its_message(client: Client, neurology: Department) -> None:
    response = client.get(
        "/api/v1/departments/neurology/availability/", {"date": ""}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "date": ["Give a date as YYYY-MM-DD, or leave it out for today."]
    }


@URLS
def test_the_availability_of_an_unknown_department_is_404(client: Client, db: None) -> None:
    response = client.get("/api/v1/departments/nowhere/availability/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@URLS
def test_the_slots_api_gives_local_times_and_reasons(client: Client, neurology: Department) -> None:
    session = _session(SATURDAY)
    with time_machine.travel(_local(2026, 12, 12, 7, 59, 59), tick=False):
        body = client.get(f"/api/v1/sessions/{session.pk}/slots/").json()
    assert body["session"]["department"]["code"] == "neurology"
    assert [(s["start_local"], s["bookable"], s["unbookable_reason"]) for s in body["slots"]] == [
        ("08:00", False, "closed"),
        ("08:30", True, None),
        ("09:00", True, None),
        ("09:30", True, None),
    ]
    assert client.get("/api/v1/sessions/999999/slots/").status_code == 404
