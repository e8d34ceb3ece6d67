"""The front desk's flow: find the patient, see their numbers, check in, print the ticket; the day's
sessions page (filters, pages, names revealed with a reason, its place kept); confirmation before stopping a
session or taking a fee, with the method, amount and receipt recorded."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from medcard import tokens
from medcard.models import AuditEvent, Card, User
from reservations import services
from reservations.models import Booking, Payment, Session
from tests import factories

# The desk works on today's 23:00 session: run at 20:00 local time, before it starts, whatever the hour.
pytestmark = pytest.mark.usefixtures("before_late_sessions")


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _booked(account: User, session: Session) -> Booking:
    """A booked (paid) number: free sessions book at once."""
    booking = services.hold_create(
        account=account,
        patient_id=factories.verified_patient_of(account).pk,
        slot_id=session.slots.first().pk,
    )
    booking.refresh_from_db()
    return booking


def _today(**kwargs) -> Session:  # type: ignore[no-untyped-def]
    session = factories.clinic_session(fee="0.00", days_ahead=0, hour=23, **kwargs)
    Session.objects.filter(pk=session.pk).update(room="3诊室")
    session.refresh_from_db()
    return session


def _near(session: Session):  # type: ignore[no-untyped-def]
    """Ten minutes before the session starts: inside its check-in window."""
    return time_machine.travel(session.starts_at - timedelta(minutes=10), tick=True)


def _token(account: User) -> str:
    card = Card.objects.get(patient=factories.verified_patient_of(account), status="active")
    return tokens.token_sign(
        card_number=card.number,
        now=timezone.now(),
        lifetime_s=60,
        private_key=tokens.private_key_from_settings(),
    )


@pytest.mark.django_db
def test_a_scanned_card_opens_the_patients_numbers_of_today_and_later(patient: User, desk: User) -> None:
    today = _booked(patient, _today())
    later = _booked(patient, factories.clinic_session(fee="0.00", days_ahead=3, department_code="cardiology"))
    client = _as(desk)
    answer = client.post("/booking/desk/", {"code": _token(patient)})
    assert answer.status_code == 302
    page = client.get(answer["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    today_part, later_part = page.split('data-testid="upcoming"')
    assert f"booking-{today.pk}" in today_part and "Check in" in today_part
    assert f"booking-{later.pk}" in later_part and "Check in" not in later_part
    assert factories.verified_patient_of(patient).name not in page  # masked
    details = set(
        AuditEvent.objects.filter(action="desk_lookup", actor=desk).values_list("detail", flat=True)
    )
    assert details == {"token", "appointments"}


@pytest.mark.django_db
def test_a_card_number_without_a_second_factor_opens_nothing(patient: User, desk: User) -> None:
    card = Card.objects.get(patient=factories.verified_patient_of(patient))
    answer = _as(desk).post("/booking/desk/", {"code": card.number}, HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 400 and "second factor" in answer.content.decode()
    holder = factories.verified_patient_of(patient)
    answer = _as(desk).post("/booking/desk/", {"code": card.number, "id_last4": holder.id_number[-4:]})
    assert answer.status_code == 302 and answer["Location"] == f"/booking/desk/patients/{holder.pk}/"


@pytest.mark.django_db
def test_check_in_at_the_desk_prints_a_ticket_with_number_room_and_how_many_ahead(
    patient: User, outsider: User, desk: User
) -> None:
    session = _today()
    first, mine = _booked(outsider, session), _booked(patient, session)
    client = _as(desk)
    with _near(session):
        client.post(f"/booking/desk/appointments/{first.pk}/check-in/")
        answer = client.post(f"/booking/desk/appointments/{mine.pk}/check-in/")
    assert answer.status_code == 302 and answer["Location"] == f"/booking/desk/appointments/{mine.pk}/ticket/"
    ticket = client.get(answer["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="ticket-number">2<' in ticket
    assert "Room 3诊室" in ticket and "1 patient ahead of you" in ticket


@pytest.mark.django_db
def test_checking_in_twice_keeps_the_first_number(patient: User, desk: User) -> None:
    session = _today()
    booking = _booked(patient, session)
    with _near(session):
        services.booking_check_in(staff=desk, booking_id=booking.pk)
        again = services.booking_check_in(staff=desk, booking_id=booking.pk)
    assert again.queue_number == 1
    assert AuditEvent.objects.filter(action="checked_in").count() == 1


@pytest.mark.django_db
def test_checking_in_on_another_day_names_the_right_day(patient: User, desk: User) -> None:
    booking = _booked(patient, factories.clinic_session(fee="0.00", days_ahead=2))
    answer = _as(desk).post(f"/booking/desk/appointments/{booking.pk}/check-in/", HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 409 and booking.visit_date.isoformat() in answer.content.decode()
    booking.refresh_from_db()
    assert booking.status == "booked" and booking.queue_number is None


@pytest.mark.django_db
def test_a_search_by_mobile_name_or_card_is_audited_even_when_nothing_matches(
    patient: User, desk: User
) -> None:
    holder = factories.verified_patient_of(patient)
    card = Card.objects.get(patient=holder)
    client = _as(desk)
    for query in (holder.mobile, card.number):
        answer = client.post("/booking/desk/", {"query": query})
        assert answer.status_code == 302 and answer["Location"] == f"/booking/desk/patients/{holder.pk}/"
    page = client.post("/booking/desk/", {"query": "无此人名"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "No patient matches." in page
    refused = client.post("/booking/desk/", {"query": "12"}, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 400 and "Search by a full name" in refused.content.decode()
    details = list(
        AuditEvent.objects.filter(action="desk_lookup").order_by("id").values_list("detail", flat=True)
    )
    assert details == ["search:mobile", "search:card_number", "search:name:0"]


@pytest.mark.django_db
def test_the_sessions_page_filters_by_department_doctor_and_half_day_and_pages(desk: User) -> None:
    for n in range(10):
        factories.clinic_session(days_ahead=0, department_code="cardiology", hour=8 + n % 2 * 6)
    wanted = factories.clinic_session(days_ahead=0, department_code="neurology", doctor_code="dr-li", hour=14)
    client = _as(desk)
    day = wanted.date.isoformat()
    page = client.get("/booking/staff/sessions/", {"date": day}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "11 sessions" in page and "Page 1 of 2" in page
    assert page.count('data-testid="session-') == 8
    page2 = client.get("/booking/staff/sessions/", {"date": day, "page": 2}).content.decode()
    assert page2.count('data-testid="session-') == 3
    by_doctor = client.get("/booking/staff/sessions/", {"date": day, "doctor": "dr-li"}).content.decode()
    assert by_doctor.count('data-testid="session-') == 1 and f"session-{wanted.pk}" in by_doctor
    mornings = client.get(
        "/booking/staff/sessions/", {"date": day, "department": "cardiology", "half_day": "am"}
    ).content.decode()
    assert mornings.count('data-testid="session-') == 5 and f"session-{wanted.pk}" not in mornings


@pytest.mark.django_db
def test_after_a_check_in_the_page_names_the_patient_and_number_and_keeps_its_place(
    patient: User, desk: User
) -> None:
    session = _today()
    booking = _booked(patient, session)
    here = f"/booking/staff/sessions/?date={booking.visit_date.isoformat()}&department=neurology&page=1"
    client = _as(desk)
    with _near(session):
        answer = client.post(
            f"/booking/staff/appointments/{booking.pk}/check-in/", {"next": here}, HTTP_ACCEPT_LANGUAGE="en"
        )
    assert answer["Location"] == f"{here}#session-{booking.session_id}"
    page = client.get(answer["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"{booking.patient.name} checked in: queue number 1." in page


@pytest.mark.django_db
def test_full_names_are_shown_only_after_a_reason_and_each_is_audited(
    patient: User, outsider: User, desk: User
) -> None:
    session = _today()
    _booked(patient, session), _booked(outsider, session)
    client = _as(desk)
    url = "/booking/staff/sessions/"
    name = factories.verified_patient_of(patient).name
    assert (
        f"<strong>{name}</strong>" not in client.get(url, {"date": session.date.isoformat()}).content.decode()
    )
    client.post(f"/booking/staff/sessions/{session.pk}/reveal/", {"reason": ""})
    assert not AuditEvent.objects.filter(action="field_revealed").exists()
    client.post(f"/booking/staff/sessions/{session.pk}/reveal/", {"reason": "叫号核对姓名"})
    assert f"<strong>{name}</strong>" in client.get(url, {"date": session.date.isoformat()}).content.decode()
    events = AuditEvent.objects.filter(action="field_revealed", target=f"session {session.pk}")
    assert events.count() == 2 and {e.reason for e in events} == {"叫号核对姓名"}


@pytest.mark.django_db
def test_stopping_a_session_asks_for_confirmation_first(patient: User, desk: User) -> None:
    session = factories.clinic_session(fee="0.00")
    _booked(patient, session)
    client = _as(desk)
    step = client.get(
        f"/booking/staff/sessions/{session.pk}/stop/", {"reason": "医生外出会诊"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "1 number will be cancelled" in step.content.decode()
    client.post(f"/booking/staff/sessions/{session.pk}/stop/", {"reason": "医生外出会诊"})
    session.refresh_from_db()
    assert session.status == "open"
    client.post(f"/booking/staff/sessions/{session.pk}/stop/", {"reason": "医生外出会诊", "confirm": "yes"})
    session.refresh_from_db()
    assert session.status == "stopped"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["cash", "card"])
def test_a_fee_at_the_desk_is_confirmed_with_method_and_amount_and_printed_on_a_receipt(
    patient: User, desk: User, method: str
) -> None:
    booking = services.hold_create(
        account=patient,
        patient_id=factories.verified_patient_of(patient).pk,
        slot_id=factories.clinic_session(fee="50.00").slots.get().pk,
    )
    client = _as(desk)
    url = f"/booking/staff/appointments/{booking.pk}/desk-payment/"
    assert 'data-testid="amount">50.00<' in client.get(url).content.decode()
    client.post(url, {"method": method, "amount": "50.00"})  # no confirmation: nothing happens
    assert not Payment.objects.filter(booking=booking).exists()
    wrong = client.post(
        url, {"method": method, "amount": "5.00", "confirm": "yes"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert wrong.status_code == 422 and not Payment.objects.filter(booking=booking).exists()
    done = client.post(url, {"method": method, "amount": "50.00", "confirm": "yes"})
    payment = Payment.objects.get(booking=booking)
    assert done["Location"] == f"/booking/staff/receipts/{payment.pk}/"
    assert (payment.status, payment.desk_method, payment.amount) == ("paid", method, Decimal("50.00"))
    receipt = client.get(done["Location"]).content.decode()
    assert payment.receipt_no in receipt and payment.receipt_no.startswith("R")
    event = AuditEvent.objects.get(action="desk_payment")
    assert event.changes["method"] == [None, method] and event.changes["receipt"] == [
        None,
        payment.receipt_no,
    ]


@pytest.mark.django_db
def test_desk_pages_are_hidden_from_patients_and_pharmacists(patient: User, pharmacist: User) -> None:
    booking = _booked(patient, _today())
    for user in (patient, pharmacist):
        client = _as(user)
        assert client.get("/booking/desk/").status_code == 404
        assert client.get(f"/booking/desk/patients/{booking.patient_id}/").status_code == 404
        assert client.post(f"/booking/desk/appointments/{booking.pk}/check-in/").status_code == 404
        assert client.get(f"/booking/staff/sessions/{booking.session_id}/stop/").status_code == 404
    booking.refresh_from_db()
    assert booking.status == "booked"
