"""The screening tests read the pages' English text; the site's default language is Simplified Chinese."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _english_pages(settings) -> None:  # type: ignore[no-untyped-def]
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks run in the test's process when enqueued; each test starts with an empty sandbox outbox."""
    from hospital.celery import app as celery_app
    from reservations import notifications

    eager, propagates = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    notifications.outbox.clear()
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = eager, propagates
    notifications.outbox.clear()


@pytest.fixture
def private_media(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Uploaded files go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
