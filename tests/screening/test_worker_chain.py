"""An upload's chain through real Celery workers on Redis: queue routing, OCR, the decision, the messages.

Nothing runs in the test's process but the upload and the patient's confirmation: ``screening.extract`` goes
to ``SCREENING_OCR_QUEUE`` (routed by the settings, as in production), ``screening.decide_case`` and
``screening.case_notify`` to the default queue, each consumed by ``celery worker`` subprocesses that share the
test's PostgreSQL database and Redis. Needs PostgreSQL (a worker cannot see SQLite's in-memory test database)
and Redis; in CI a missing one fails the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

from hospital.celery import app as celery_app
from hospital.devserver import dev_environment
from medcard.models import User
from screening import services
from screening.models import ScreeningCase, ScreeningRun
from tests.conftest import redis_url_for_tests, require_or_skip
from tests.hospital.test_worker import Workers, _wait_for
from tests.screening.test_cases import RISK, hold, screened_session
from tests.screening.test_real_ocr_decisions import report

pytestmark = [pytest.mark.worker, pytest.mark.timeout(600)]


@pytest.fixture
def workers(
    transactional_db: None, settings: Any, tmp_path: Path
) -> Iterator[tuple[Workers, dict[str, str]]]:
    """Private queues for this run; the test's process routes to them as the workers' settings do."""
    require_or_skip(connection.vendor == "postgresql", "a real worker needs the PostgreSQL test database")
    url = redis_url_for_tests()
    require_or_skip(url is not None, "no Redis on 127.0.0.1:6379 and no REDIS_URL")
    assert url is not None
    run = uuid.uuid4().hex[:10]
    names = {"ocr": f"ocr-{run}", "default": f"default-{run}", "outbox": f"outbox-{run}", "redis": url}
    database = connection.settings_dict
    env = {
        **dev_environment(),
        "REDIS_URL": url,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}",
        "DJANGO_SETTINGS_MODULE": "tests.screening.worker_settings",
        "HOSPITAL_VAR_DIR": str(tmp_path),  # MEDIA_ROOT is tmp_path/media in both processes
        "SCREENING_OCR_QUEUE": names["ocr"],
        "TEST_WORKER_DEFAULT_QUEUE": names["default"],
        "TEST_WORKER_OUTBOX": names["outbox"],
    }
    settings.MEDIA_ROOT = tmp_path / "media"
    saved = (
        celery_app.conf.task_routes,
        celery_app.conf.task_default_queue,
        celery_app.conf.task_always_eager,
    )
    celery_app.conf.task_routes = {"screening.extract": {"queue": names["ocr"]}}
    celery_app.conf.task_default_queue = names["default"]
    celery_app.conf.task_always_eager = False
    _routing_reset()
    launcher = Workers(env, run)
    store = redis.Redis.from_url(url)
    try:
        yield launcher, names
    finally:
        launcher.stop_all()  # before the database is flushed: a worker's connection would block it
        celery_app.conf.task_routes, celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = (
            saved
        )
        _routing_reset()
        for key in (names["ocr"], names["default"], names["outbox"]):
            store.delete(key)
        for key in store.scan_iter(f"*{run}*"):
            store.delete(key)
        store.close()


def _routing_reset() -> None:
    """Make the next send read the routes and default queue set above. Celery caches its router, its route
    table and its queues on first use, so a test earlier in this process that sent a task would otherwise
    have fixed the routes of every later one (the extraction would go to the settings' queue, not ours)."""
    amqp = celery_app.amqp
    amqp._rtable = None
    for name in ("router", "queues", "default_queue"):
        amqp.__dict__.pop(name, None)


def _status(booking_id: int) -> Callable[[], str]:
    return lambda: ScreeningCase.objects.get(booking_id=booking_id).status


def test_an_upload_is_read_on_the_ocr_queue_and_decided_and_announced_by_real_workers(
    patient: User, workers: tuple[Workers, dict[str, str]]
) -> None:
    launcher, names = workers
    store = redis.Redis.from_url(names["redis"])
    launcher.start(names["default"], probes=False)  # decisions and messages only, for now
    booking = hold(patient, screened_session(), RISK)
    spec = report(41, "renal_function", font="noto-serif-sc", creatinine=92)
    from screening.synth import render_bytes

    data, ext = render_bytes(spec, "scan")
    upload = services.upload_accept(account=patient, booking_id=booking.pk, filename=f"r.{ext}", data=data)

    # The reading waits on the OCR queue, where the settings route it, until a worker consumes that queue.
    _wait_for(lambda: store.llen(names["ocr"]) == 1, 30, "screening.extract on the OCR queue")
    assert ScreeningCase.objects.get(booking=booking).status == "processing"
    assert not ScreeningRun.objects.filter(upload=upload, step="extract").exists()

    launcher.start(names["ocr"], probes=False)
    _wait_for(lambda: _status(booking.pk)() != "processing", 300, "the workers to read and decide")
    extract = ScreeningRun.objects.get(upload=upload, step="extract")
    assert (extract.status, extract.ocr_engine["name"]) == ("ok", "rapidocr")
    creatinine = next(a for a in extract.outputs["extraction"]["analytes"] if a["code"] == "creatinine")
    assert creatinine["value"] == 92.0
    case = ScreeningCase.objects.get(booking=booking)
    assert (case.status, case.reason_codes) == ("confirm", [])
    decided = ScreeningRun.objects.filter(case=case, step="decide").latest("id")
    assert decided.id > extract.id and decided.outputs  # decided from what the OCR worker read

    def outbox() -> list[dict[str, Any]]:
        return [json.loads(m) for m in store.lrange(names["outbox"], 0, -1)]

    _wait_for(lambda: any(m["kind"] == "screening_confirm" for m in outbox()), 60, "the confirm message")
    services.case_confirm(account=patient, booking_id=booking.pk, correct=True)
    assert ScreeningCase.objects.get(booking=booking).status == "approved"
    _wait_for(lambda: any(m["kind"] == "screening_approved" for m in outbox()), 60, "the approval message")
    approved = next(m for m in outbox() if m["kind"] == "screening_approved")
    assert approved["account_id"] == patient.pk and booking.patient.masked_name in approved["text"]
    assert [m["kind"] for m in outbox()].count("screening_approved") == 1  # sent once
    store.close()
