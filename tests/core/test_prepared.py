"""Prepared queries: the same rows and objects as the queryset they were built from, with new parameters."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.prepared import Prepared
from medcard.models import Patient, User
from reservations import services
from reservations.models import Booking, Slot
from tests import factories


def _fields(obj: object) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_it_finds_what_the_queryset_finds_for_each_new_parameter() -> None:
    slots = [factories.clinic_session(capacity=n + 1).slots.get() for n in range(3)]
    prepared = Prepared(
        lambda pk: Slot.objects.select_related("session__department", "session__doctor").filter(pk=pk)[:1]
    )
    for slot in slots:  # compiled on the first call, reused after
        [found] = prepared(slot.pk)
        [expected] = list(prepared.queryset(slot.pk))
        assert _fields(found) == _fields(expected)
        # select_related objects are in hand: no further query
        with CaptureQueriesContext(connection) as queries:
            assert _fields(found.session) == _fields(expected.session)
            assert _fields(found.session.department) == _fields(expected.session.department)
            assert found.session.doctor is not None and expected.session.doctor is not None
            assert found.session.doctor.name_zh == expected.session.doctor.name_zh
        assert not queries.captured_queries
    assert prepared(-1) == []
    # A key beyond the 64-bit range finds nothing, as the queryset's lookup does (SQLite could not take it).
    for beyond in (2**63, -(2**63) - 1, 2**64):
        assert prepared(beyond) == [] == list(prepared.queryset(beyond))


@pytest.mark.django_db
def test_values_list_rows_with_a_date_parameter_match_the_queryset(patient: User) -> None:
    session = factories.clinic_session(capacity=3)
    prepared = Prepared(
        lambda account_id, since: (
            Booking.objects.filter(account_id=account_id, visit_date__gte=since)
            .order_by("pk")
            .values_list("id", "status", "visit_date", "fee")
        )
    )
    booking = services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=session.slots.get().pk
    )
    for since in (session.date, session.date + timedelta(days=1), date(2000, 1, 1)):
        assert prepared(patient.pk, since) == list(prepared.queryset(patient.pk, since))
    assert prepared(patient.pk, session.date) == [(booking.pk, "held", session.date, booking.fee)]


@pytest.mark.django_db
def test_a_parameter_keeps_the_type_it_was_first_given() -> None:
    prepared = Prepared(lambda pk: User.objects.filter(pk=pk)[:1])
    user = factories.patient_account(name="张三")
    assert prepared(user.pk)[0].pk == user.pk
    assert prepared(str(user.pk))[0].pk == user.pk  # "5" is 5, as in a lookup
    with pytest.raises(ValueError):
        prepared("not a number")
    with pytest.raises(TypeError):
        prepared(True)


@pytest.mark.django_db(transaction=True)  # outside the test's own transaction
def test_a_locking_read_is_refused_outside_a_transaction(patient: User) -> None:
    locked = Prepared(lambda pk: Patient.objects.select_for_update().filter(pk=pk)[:1])
    pk = factories.verified_patient_of(patient).pk
    with transaction.atomic():
        assert locked(pk)[0].pk == pk
    with pytest.raises(TransactionManagementError):
        locked(pk)


def test_unsupported_parameters_and_querysets_are_refused() -> None:
    with pytest.raises(TypeError):
        Prepared(lambda when: Booking.objects.filter(created_at__gte=when))(timezone.now())
    with pytest.raises(ValueError):
        Prepared(lambda pk: Booking.objects.filter(pk=pk).values("id"))(1)


@pytest.mark.django_db
def test_a_session_of_a_missing_or_deactivated_account_is_signed_out(client: Client, patient: User) -> None:
    client.force_login(patient)
    assert client.get("/api/v1/me/").status_code == 200
    User.objects.filter(pk=patient.pk).update(is_active=False)
    assert client.get("/api/v1/me/").status_code in (401, 403)
    client.force_login(factories.patient_account(name="赵六"))
    session = client.session
    session["_auth_user_id"] = "999999999"  # an account that no longer exists
    session.save()
    assert client.get("/api/v1/me/").status_code in (401, 403)
