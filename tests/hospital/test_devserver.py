"""The dev runner behind ``make run``: the port it listens on is the one payments come back to, and a
restart keeps the demo users signed in."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from hospital.devserver import run_environment
from medcard import services
from medcard.models import User

ROOT = Path(__file__).resolve().parents[2]

PRINT_PAYMENT_ADDRESSES = """
from django.conf import settings
from reservations.payments.keys import wechatpay_config
print("ADDRESS", settings.PUBLIC_BASE_URL)
print("ADDRESS", wechatpay_config().api_base.rsplit("/", 1)[0])
"""


def _payment_addresses(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PRINT_PAYMENT_ADDRESSES],
        cwd=ROOT,
        env={**env, "DATABASE_URL": "sqlite:///:memory:"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [line.split()[1] for line in done.stdout.splitlines() if line.startswith("ADDRESS ")]


def test_make_run_on_another_port_sends_the_payment_sandbox_to_that_port(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    public, sandbox = _payment_addresses(run_environment("127.0.0.1", 8123))
    assert public == "http://127.0.0.1:8123"
    assert sandbox == "http://127.0.0.1:8123/sandbox-gateway"


def test_make_run_on_all_interfaces_names_the_loopback_for_the_payment_return(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    assert run_environment("0.0.0.0", 8124)["PUBLIC_BASE_URL"] == "http://127.0.0.1:8124"  # noqa: S104


def test_an_explicit_public_address_wins_over_the_port(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://tunnel.example.test")
    assert run_environment("127.0.0.1", 8125)["PUBLIC_BASE_URL"] == "https://tunnel.example.test"


@pytest.mark.django_db
def test_restarting_make_run_keeps_the_demo_patient_signed_in() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    client = Client()
    assert client.login(mobile=services.DEMO_PATIENT_MOBILE, password=services.DEMO_PATIENT_PASSWORD)
    assert client.get("/booking/appointments/").status_code == 200
    call_command("seed_demo", stdout=io.StringIO())  # what the next `make run` does first
    assert client.get("/booking/appointments/").status_code == 200


@pytest.mark.django_db
def test_restarting_make_run_resets_a_changed_demo_password() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    desk = User.objects.get(username="desk")
    desk.set_password("changed-by-someone")
    desk.save()
    call_command("seed_demo", stdout=io.StringIO())
    desk.refresh_from_db()
    assert desk.check_password("demo-desk-2026")
