"""Fixtures shared by the payment gateway tests."""

from __future__ import annotations

import pytest

from reservations.payments import sandbox


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
    monkeypatch.setattr(sandbox, "notify_transport", sandbox.client_transport())
    monkeypatch.setattr(sandbox, "RETRY_TIME_SCALE", 0.0)
