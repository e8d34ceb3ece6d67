"""Fixtures shared by the payment gateway tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reservations.payments.base import Notification
from reservations.payments.sandbox import gateway as sandbox
from reservations.payments.sandbox import tasks
from tests.reservations.payment_transport import client_transport


@pytest.fixture(scope="session")
def sandbox_key_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("sandbox-keys"))


@pytest.fixture
def sandbox_mode(settings, monkeypatch, sandbox_key_dir) -> None:  # type: ignore[no-untyped-def]
    """The sandbox gateway with this session's test keys, its notifications sent in-process, retries at once,
    and the cashier's pages in English (the tests read their text; the site's default is Chinese)."""
    settings.PAYMENT_SANDBOX = True
    settings.PAYMENT_SANDBOX_KEY_DIR = sandbox_key_dir
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    settings.LANGUAGE_CODE = "en"
    monkeypatch.setattr(sandbox, "notify_transport", client_transport())
    monkeypatch.setattr(sandbox, "RETRY_TIME_SCALE", 0.0)


@pytest.fixture
def received(sandbox_mode, monkeypatch) -> Iterator[list[Notification]]:  # type: ignore[no-untyped-def]
    """Sandbox mode with in-process delivery; collects what reaches the reservations service."""
    monkeypatch.setattr(
        sandbox,
        "enqueue_delivery",
        lambda order_no, countdown_s: tasks.sandbox_notification_deliver.apply(args=(order_no,)),
    )
    notifications: list[Notification] = []
    monkeypatch.setattr(
        "reservations.services.payment_notification_receive",
        lambda *, notification: notifications.append(notification),
        raising=False,
    )
    yield notifications
