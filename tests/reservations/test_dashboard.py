"""The administrators' dashboard of the day per department and its CSV (UTF-8 with a BOM, for Excel)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.clock import HOSPITAL_TZ
from medcard.models import User
from reservations.models import Booking, QueueEntry, QueueEvent, Session
from tests import factories


def _booking(session: Session, status: str) -> Booking:
    account = factories.patient_account()
    return Booking.objects.create(
        patient=factories.verified_patient_of(account), account=account, session=session,
        slot=session.slots.get(), department=session.department, visit_date=session.date, status=status,
        fee=Decimal("50.00"),
    )  # fmt: skip


def _queued(booking: Booking, number: int, state: str, checked_in: datetime, calls: list[datetime]) -> None:
    entry = QueueEntry.objects.create(
        booking=booking, session=booking.session, number=number, state=state, slot_starts_at=checked_in,
        checked_in_at=checked_in, room="3" if calls else "", called_at=calls[-1] if calls else None,
    )  # fmt: skip
    for n, at in enumerate(calls):
        QueueEvent.objects.create(
            entry=entry, session=booking.session, action="call" if n == 0 else "recall",
            from_state="waiting", to_state="called", room="3", at=at,
        )  # fmt: skip


@pytest.fixture
def day(db: None) -> datetime:
    """Today's neurology: a patient waiting, one seen after a 20-minute wait, a no-show, one booked not yet
    arrived, one cancelled; cardiology: one booked."""
    neurology = factories.clinic_session(days_ahead=0, capacity=9)
    cardiology = factories.clinic_session(days_ahead=0, department_code="cardiology", capacity=9)
    eight = datetime.combine(timezone.localdate(), datetime.min.time(), tzinfo=HOSPITAL_TZ) + timedelta(
        hours=8
    )
    _queued(_booking(neurology, "checked_in"), 1, "waiting", eight, [])
    seen = _booking(neurology, "completed")
    _queued(seen, 2, "completed", eight, [eight + timedelta(minutes=20), eight + timedelta(minutes=40)])
    _booking(neurology, "no_show")
    _booking(neurology, "booked")
    _booking(neurology, "cancelled")
    _booking(cardiology, "booked")
    return eight


@pytest.fixture
def administrator_client(administrator: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(administrator)
    return client


@pytest.mark.usefixtures("day")
def test_the_dashboard_counts_the_day_of_each_department(administrator_client: Client) -> None:
    response = administrator_client.get(reverse("reservations:staff-dashboard"))
    assert response.status_code == 200
    rows = {row.department.code: row for row in response.context["rows"]}
    n = rows["neurology"]
    assert (n.booked, n.checked_in, n.waiting, n.seen, n.no_shows) == (4, 2, 1, 1, 1)
    assert n.average_wait_minutes == 20.0  # to the first call; the recall does not count
    assert (rows["cardiology"].booked, rows["cardiology"].average_wait_minutes) == (1, None)
    assert "平均候诊（分钟）" in response.content.decode()


@pytest.mark.usefixtures("day")
def test_another_date_can_be_picked(administrator_client: Client) -> None:
    tomorrow = timezone.localdate() + timedelta(days=1)
    response = administrator_client.get(
        reverse("reservations:staff-dashboard"), {"date": tomorrow.isoformat()}
    )
    assert response.context["rows"] == [] and response.context["day"] == tomorrow


@pytest.mark.usefixtures("day")
def test_the_csv_opens_in_excel_with_chinese_names(administrator_client: Client) -> None:
    response = administrator_client.get(
        reverse("reservations:staff-dashboard-csv"), {"date": timezone.localdate().isoformat()}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    header, *rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert header[2] == "科室（中文）" and header[-1] == "平均候诊（分钟）"
    by_code = {row[1]: row for row in rows}
    assert by_code["neurology"][2:] == ["神经内科", "Neurology", "4", "2", "1", "1", "1", "20.0"]
    assert by_code["cardiology"][-1] == ""


def test_the_dashboard_is_for_administrators_only(desk: User) -> None:
    client = Client()
    client.force_login(desk)
    assert client.get(reverse("reservations:staff-dashboard")).status_code == 404
    assert client.get(reverse("reservations:staff-dashboard-csv")).status_code == 404
    assert Client().get(reverse("reservations:staff-dashboard")).status_code == 302  # to the staff sign-in
