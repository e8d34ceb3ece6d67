"""An administrator who is not a superuser (the role given by ``staff_create``) manages schedules, rules and
refunds in the admin, reads accounts and patients there (masked), cannot change an account, and deletes
configuration only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from hospital.permissions import administrator_permissions_sync
from medcard import roles
from medcard.models import User
from reservations import services
from tests import factories


def _admin_client(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_an_administrator_manages_schedules_rules_and_refunds_in_the_admin(
    administrator: User, patient: User
) -> None:
    assert not administrator.is_superuser
    session = factories.clinic_session(capacity=3)
    services.hold_create(
        account=patient, patient_id=factories.verified_patient_of(patient).pk, slot_id=session.slots.get().pk
    )
    client = _admin_client(administrator)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    page = index.content.decode()
    for name in ("session", "weeklytemplate", "bookingrule", "queuerule", "payment", "refund", "department"):
        assert reverse(f"admin:reservations_{name}_changelist") in page, name
    assert reverse("admin:screening_screeningexamsetting_changelist") in page
    assert client.get(reverse("admin:reservations_session_change", args=[session.pk])).status_code == 200
    # The refund action is offered on bookings; a rule can be changed; configuration can be deleted, a
    # session cannot (it is cancelled instead).
    bookings = client.get(reverse("admin:reservations_booking_changelist")).content.decode()
    assert 'value="refund_manually"' in bookings
    assert administrator.has_perm("reservations.change_bookingrule")
    assert administrator.has_perm("reservations.delete_weeklytemplate")
    assert not administrator.has_perm("reservations.delete_session")
    assert client.get(reverse("admin:reservations_session_delete", args=[session.pk])).status_code == 403


@pytest.mark.django_db
def test_an_administrator_reads_accounts_and_patients_but_cannot_change_an_account(
    administrator: User, patient: User
) -> None:
    client = _admin_client(administrator)
    assert client.get(reverse("admin:medcard_patient_changelist")).status_code == 200
    desk = factories.staff(role=roles.FRONT_DESK)
    change = reverse("admin:medcard_user_change", args=[desk.pk])
    assert client.get(change).status_code == 200  # read-only view
    refused = client.post(change, {"username": desk.username, "is_staff": "on", "groups": []})
    assert refused.status_code == 403
    desk.refresh_from_db()
    assert not desk.is_superuser and desk.groups.filter(name=roles.FRONT_DESK).exists()


@pytest.mark.django_db
def test_other_staff_roles_get_nothing_in_the_admin() -> None:
    for role in (roles.FRONT_DESK, roles.CLINICIAN, roles.PHARMACIST, roles.DOCTOR):
        user = factories.staff(role=role)
        assert not user.has_perm("reservations.view_session") and not user.has_perm("medcard.view_patient")


@pytest.mark.django_db
def test_the_grants_are_only_added_and_a_second_sync_changes_nothing(administrator: User) -> None:
    group = Group.objects.get(name=roles.ADMINISTRATOR)
    before = set(group.permissions.values_list("pk", flat=True))
    assert administrator_permissions_sync() == len(before)
    assert set(group.permissions.values_list("pk", flat=True)) == before
