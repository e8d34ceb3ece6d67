from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db.utils import OperationalError
from django.test import Client
from django.utils import timezone

from hospital import health
from hospital.celery import app as celery_app


@pytest.mark.django_db
def test_healthz_is_200_when_database_broker_and_worker_are_fine(client: Client) -> None:
    health.worker_heartbeat_record(hostname="worker-a@host1")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["database"]["ok"] and body["broker"]["ok"] and body["worker"]["ok"]
    assert body["worker"]["hostname"] == "worker-a@host1"


@pytest.mark.django_db
def test_healthz_says_degraded_before_any_worker_has_started(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["status"], body["degraded"]) == (False, "degraded", ["worker"])
    assert body["worker"] == {"ok": False, "error": "no heartbeat yet"}


@pytest.mark.django_db
def test_healthz_says_degraded_when_the_last_heartbeat_is_stale(client: Client, settings: object) -> None:
    with time_machine.travel(timezone.now() - timedelta(minutes=5), tick=False):
        health.worker_heartbeat_record(hostname="worker-a@host1")
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["degraded"] == ["worker"]
    assert response.json()["worker"]["error"] == "heartbeat is stale"


@pytest.mark.django_db
def test_healthz_says_degraded_but_serves_when_the_broker_is_unreachable(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    health.worker_heartbeat_record(hostname="worker-a@host1")
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(celery_app.conf, "broker_transport_options", {})
    response = client.get("/healthz")
    assert response.status_code == 200  # the load balancer keeps this host: pages work from the database
    body = response.json()
    assert (body["status"], body["degraded"]) == ("degraded", ["broker"])
    assert body["broker"]["ok"] is False
    assert body["database"]["ok"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_fails(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    health.worker_heartbeat_record(hostname="worker-a@host1")

    def broken_cursor(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["database"] == {"ok": False, "error": "OperationalError"}


@pytest.mark.django_db
def test_healthz_is_not_cached(client: Client) -> None:
    response = client.get("/healthz")
    assert "no-cache" in response["Cache-Control"]
