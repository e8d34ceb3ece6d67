"""The hold's last statement: one number of the slice taken and the booking inserted with it, or neither."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from medcard.models import User
from reservations.models import Booking, Slot
from reservations.services.hold_insert import insert_taking_capacity
from tests import factories


def _unsaved(account: User, slot: Slot) -> Booking:
    session = slot.session
    return Booking(
        patient=factories.verified_patient_of(account), account=account, session=session, slot=slot,
        department=session.department, visit_date=session.date, fee=session.fee, status=Booking.Status.HELD,
        hold_expires_at=timezone.now(),
    )  # fmt: skip


@pytest.mark.django_db
def test_a_free_number_is_taken_with_the_insert_in_one_statement_on_postgresql(patient: User) -> None:
    slot = factories.clinic_session(capacity=2).slots.get()
    booking = _unsaved(patient, slot)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert insert_taking_capacity(booking)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == (1 if connection.vendor == "postgresql" else 2), statements
    stored = Booking.objects.get(pk=booking.pk)
    assert (stored.slot_id, stored.status, stored.created_at) == (slot.pk, "held", booking.created_at)
    assert Slot.objects.get(pk=slot.pk).taken == 1


@pytest.mark.django_db
def test_a_full_slice_inserts_nothing(patient: User) -> None:
    slot = factories.clinic_session(capacity=1).slots.get()
    Slot.objects.filter(pk=slot.pk).update(taken=1)
    booking = _unsaved(patient, slot)
    with transaction.atomic():
        assert not insert_taking_capacity(booking)
    assert booking.pk is None and not Booking.objects.exists()
    assert Slot.objects.get(pk=slot.pk).taken == 1


@pytest.mark.django_db
def test_a_refused_insert_gives_the_number_back(patient: User) -> None:
    slot = factories.clinic_session(capacity=5).slots.get()
    with transaction.atomic():
        assert insert_taking_capacity(_unsaved(patient, slot))
    with pytest.raises(IntegrityError), transaction.atomic():  # a second active number in the session
        insert_taking_capacity(_unsaved(patient, slot))
    assert Slot.objects.get(pk=slot.pk).taken == 1
    assert Booking.objects.count() == 1


@pytest.mark.django_db
def test_the_combined_insert_stores_what_create_would(patient: User, outsider: User) -> None:
    slot = factories.clinic_session(capacity=5).slots.get()
    combined = _unsaved(patient, slot)
    with transaction.atomic():
        assert insert_taking_capacity(combined)
    created = _unsaved(outsider, slot)
    created.hold_expires_at = combined.hold_expires_at
    created.save(force_insert=True)
    skip = {"id", "patient", "account", "created_at", "updated_at"}
    for field in Booking._meta.concrete_fields:
        if field.name in skip:
            continue
        assert getattr(Booking.objects.get(pk=combined.pk), field.attname) == getattr(
            Booking.objects.get(pk=created.pk), field.attname
        ), field.name
    stored = Booking.objects.get(pk=combined.pk)
    assert stored.created_at == combined.created_at and stored.updated_at == combined.updated_at
