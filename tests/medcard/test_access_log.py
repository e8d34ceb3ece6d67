"""The patient's view of who read their record: every read reachable, a page at a time."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from medcard.models import AuditEvent, Patient, User

READS = 230


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _holder_with_reads(patient: User, desk: User) -> Patient:
    holder = Patient.objects.get(links__account=patient, links__relationship="self")
    start = timezone.now() - timedelta(days=30)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=desk,
            actor_is_staff=True,
            patient=holder,
            action=AuditEvent.Action.DESK_LOOKUP,
            detail="token",
            reason=f"read-{n:03d}",
            at=start + timedelta(minutes=n),
        )
        for n in range(READS)
    )
    return holder


@pytest.mark.django_db
def test_every_staff_read_is_reachable_in_the_api_page_by_page(patient: User, desk: User) -> None:
    holder = _holder_with_reads(patient, desk)
    client = _client(patient)
    url: str | None = f"/api/v1/patients/{holder.pk}/access-log/"
    reasons: list[str] = []
    while url:
        body = client.get(url).json()
        assert body["count"] == READS
        reasons += [row["reason"] for row in body["results"]]
        url = body["next"]
    assert reasons == [f"read-{n:03d}" for n in reversed(range(READS))]  # newest first, none missing


@pytest.mark.django_db
def test_every_staff_read_is_reachable_on_the_page_by_following_older(patient: User, desk: User) -> None:
    holder = _holder_with_reads(patient, desk)
    client = _client(patient)
    path = f"/accounts/patients/{holder.pk}/access/"
    query = ""
    seen: set[str] = set()
    for _ in range(20):
        html = client.get(path + query, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        seen |= set(re.findall(r"read-\d{3}", html))
        older = re.search(r'href="(\?page=\d+)">Older<', html)
        if older is None:
            break
        query = older.group(1)
    assert seen == {f"read-{n:03d}" for n in range(READS)}


@pytest.mark.django_db
def test_an_outsider_cannot_page_through_someone_elses_access_log(
    patient: User, outsider: User, desk: User
) -> None:
    holder = _holder_with_reads(patient, desk)
    assert _client(outsider).get(f"/api/v1/patients/{holder.pk}/access-log/?page=2").status_code == 404
    assert _client(outsider).get(f"/accounts/patients/{holder.pk}/access/?page=2").status_code == 404
