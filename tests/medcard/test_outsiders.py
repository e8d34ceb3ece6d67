"""A patient account reaches only its own patients: every other id answers 404, in pages and API alike."""

from __future__ import annotations

import pytest
from django.test import Client

from medcard.models import Patient, User

PAGES_GET = ["/accounts/patients/{id}/", "/accounts/patients/{id}/qr/", "/accounts/patients/{id}/print/",
             "/accounts/patients/{id}/access/", "/accounts/patients/{id}/report-lost/"]  # fmt: skip
PAGES_POST = ["/accounts/patients/{id}/report-lost/", "/accounts/patients/{id}/correct/",
              "/accounts/patients/{id}/verify/"]  # fmt: skip
API_GET = ["/api/v1/patients/{id}/", "/api/v1/patients/{id}/card-token/", "/api/v1/patients/{id}/access-log/"]
API_POST = ["/api/v1/patients/{id}/report-lost/"]


@pytest.fixture
def victim(patient: User) -> Patient:
    return Patient.objects.get(links__account=patient)


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES_GET + API_GET)
def test_an_outsider_gets_404_reading_another_accounts_patient(
    url: str, victim: Patient, outsider: User
) -> None:
    response = _as(outsider).get(url.format(id=victim.pk))
    assert response.status_code == 404
    if url.startswith("/api/"):
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES_POST + API_POST)
def test_an_outsider_gets_404_changing_another_accounts_patient(
    url: str, victim: Patient, outsider: User
) -> None:
    card = victim.cards.get(status="active")
    response = _as(outsider).post(url.format(id=victim.pk), {"name": "x", "id_number": "y"})
    assert response.status_code == 404
    card.refresh_from_db()
    assert card.status == "active"


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES_GET + API_GET)
def test_an_id_that_does_not_exist_looks_the_same_as_someone_elses(url: str, outsider: User) -> None:
    assert _as(outsider).get(url.format(id=999_999)).status_code == 404


@pytest.mark.django_db
def test_the_owner_reaches_every_one_of_those_endpoints(victim: Patient, patient: User) -> None:
    client = _as(patient)
    for url in PAGES_GET + API_GET:
        assert client.get(url.format(id=victim.pk)).status_code == 200, url


@pytest.mark.django_db
def test_an_outsider_list_shows_only_their_own_patients(victim: Patient, outsider: User) -> None:
    rows = _as(outsider).get("/api/v1/patients/").json()
    assert victim.pk not in [row["id"] for row in rows]
    assert len(rows) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("url", API_GET)
def test_staff_cannot_use_patient_endpoints(url: str, victim: Patient, desk: User) -> None:
    assert _as(desk).get(url.format(id=victim.pk)).status_code == 403
