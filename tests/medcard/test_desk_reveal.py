"""Unmasking at the desk: only a patient the same staff member just looked up; an alert past a few an hour."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from medcard import roles, services, tokens
from medcard.models import AuditEvent, Patient, User
from tests import factories


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _holder(account: User) -> Patient:
    return Patient.objects.get(links__account=account, links__relationship="self")


def _look_up(client: Client, holder: Patient) -> None:
    card = holder.cards.get(status="active")
    token = tokens.token_sign(
        card_number=card.number,
        now=timezone.now(),
        lifetime_s=60,
        private_key=tokens.private_key_from_settings(),
    )
    assert client.post("/api/v1/desk/lookups/", {"token": token}).status_code == 200


def _reveal(client: Client, holder: Patient):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/desk/patients/{holder.pk}/reveal/",
        {"field": "id_number", "reason": "insurance form"},
        HTTP_ACCEPT_LANGUAGE="en",
    )


@pytest.mark.django_db
def test_a_patient_not_looked_up_cannot_be_unmasked_by_id(patient: User, desk: User) -> None:
    holder = _holder(patient)
    response = _reveal(_client(desk), holder)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "not_looked_up"
    assert holder.id_number not in response.content.decode()
    page = _client(desk).post(
        f"/accounts/desk/patients/{holder.pk}/reveal/", {"field": "id_number", "reason": "insurance form"}
    )
    assert page.status_code == 400 and holder.id_number not in page.content.decode()
    assert not AuditEvent.objects.filter(action="field_revealed").exists()


@pytest.mark.django_db
def test_a_look_up_by_another_staff_member_or_of_another_patient_does_not_count(
    patient: User, outsider: User, desk: User
) -> None:
    colleague = _client(factories.staff(role=roles.FRONT_DESK, username="desk2"))
    _look_up(colleague, _holder(patient))
    client = _client(desk)
    _look_up(client, _holder(outsider))
    assert _reveal(client, _holder(patient)).status_code == 422
    assert _reveal(colleague, _holder(patient)).status_code == 200


@pytest.mark.django_db
def test_the_look_up_counts_for_the_window_and_no_longer(patient: User, desk: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DESK_REVEAL_WINDOW_MINUTES = 15
    holder = _holder(patient)
    client = _client(desk)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _look_up(client, holder)
    with time_machine.travel(start + timedelta(minutes=14, seconds=59), tick=False):
        assert _reveal(client, holder).status_code == 200
    with time_machine.travel(start + timedelta(minutes=15, seconds=1), tick=False):
        assert _reveal(client, holder).status_code == 422


@pytest.mark.django_db
def test_unmasking_more_patients_than_the_threshold_in_an_hour_alerts_administrators(
    desk: User,
    administrator: User,
    settings,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    settings.DESK_REVEAL_ALERT_PATIENTS_PER_HOUR = 3
    holders = [_holder(factories.patient_account(name=f"患者{n}")) for n in range(5)]
    client = _client(desk)
    for holder in holders[:3]:
        _look_up(client, holder)
        assert _reveal(client, holder).status_code == 200
        assert _reveal(client, holder).status_code == 200  # the same patient twice is still one patient
    assert not AuditEvent.objects.filter(action="reveal_alert").exists()  # at the threshold: no alert
    with caplog.at_level(logging.ERROR, logger="medcard.services.desk"):
        for holder in holders[3:]:
            _look_up(client, holder)
            assert _reveal(client, holder).status_code == 200  # the alert does not stop the desk's work
    alert = AuditEvent.objects.get(action="reveal_alert")  # one alert an hour, not one per reveal
    assert (alert.actor, alert.patient, alert.detail) == (desk, None, "4")
    assert [r.__dict__.get("alert") for r in caplog.records] == ["desk_reveal"]
    page = _client(administrator).get("/accounts/audit/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Alerts in the last 7 days" in page and "4 patients unmasked within an hour" in page
    assert f"?staff={desk.username}" in page
    assert not AuditEvent.objects.filter(action="reveal_alert", patient__isnull=False).exists()


@pytest.mark.django_db
def test_the_alert_counts_only_the_last_hour(desk: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DESK_REVEAL_ALERT_PATIENTS_PER_HOUR = 2
    holders = [_holder(factories.patient_account(name=f"患者{n}")) for n in range(3)]
    start = timezone.now()
    for n, holder in enumerate(holders):
        with time_machine.travel(start + timedelta(minutes=31 * n), tick=False):
            services.desk_lookup_token(
                staff=desk,
                token=tokens.token_sign(
                    card_number=holder.cards.get(status="active").number,
                    now=timezone.now(),
                    lifetime_s=60,
                    private_key=tokens.private_key_from_settings(),
                ),
            )
            services.desk_reveal(staff=desk, patient=holder, field="mobile", reason="callback")
    # 0, 31 and 62 minutes: never more than two patients within one hour
    assert not AuditEvent.objects.filter(action="reveal_alert").exists()
