"""A batch job on real Celery workers over Redis: a worker SIGKILLed mid-chunk loses nothing, counts
nothing twice.

The workers are separate processes reading the test database (PostgreSQL: the worker connects to the test
database by name), so the job's rows, the chunks' unique constraint and the compare-and-set completion are the
real ones.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.db import connection

from dosing.batch import services
from dosing.batch.models import BatchChunk, BatchJob
from dosing.engine import simulate
from hospital.devserver import dev_environment
from medcard.models import User
from tests.conftest import redis_url_for_tests, require_or_skip
from tests.hospital.test_worker import Workers, _wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SPEC = {
    "model": "goti_2018",
    "population": "adult_general",
    "n_patients": 12_000,
    "chunk_size": 2000,
    "seed": 11,
    "regimens": [
        {"dose_mg": 1000.0, "interval_h": 12.0, "infusion_h": 1.0},
        {"dose_mg": 1250.0, "interval_h": 12.0, "infusion_h": 1.5},
    ],
}
BLOCKED_CHUNK = 2


def _database_url() -> str:
    s = connection.settings_dict
    host = f"{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{host}/{s['NAME']}"


class BatchWorkers(Workers):
    """The hospital's worker command, plus the probe that counts (and once blocks) chunk computations."""

    include = "tests.dosing.batch.batch_worker_probe"


@pytest.fixture
def batch_workers(settings) -> Iterator[tuple[Workers, redis.Redis, str]]:  # type: ignore[no-untyped-def]
    require_or_skip(connection.vendor == "postgresql", "the worker must share the test database (PostgreSQL)")
    url = redis_url_for_tests()
    require_or_skip(url is not None, "no Redis on 127.0.0.1:6379 and no REDIS_URL")
    assert url is not None
    queue = f"batch-{uuid.uuid4().hex[:10]}"
    settings.DOSING_BATCH_QUEUE = queue
    env = {
        **dev_environment(),
        "REDIS_URL": url,
        "DATABASE_URL": _database_url(),
        "BATCH_PROBE_KEY": queue,
        "CELERY_VISIBILITY_TIMEOUT": "3",  # an unacknowledged chunk goes back to the queue after 3 s
    }
    workers = BatchWorkers(env, queue)
    store = redis.Redis.from_url(url)
    try:
        yield workers, store, queue
    finally:
        workers.stop_all()
        for key in store.scan_iter(f"{queue}*"):
            store.delete(key)
        store.close()


def test_worker_killed_mid_chunk_loses_nothing_and_counts_nothing_twice(
    batch_workers: tuple[Workers, redis.Redis, str], pharmacist: User
) -> None:
    workers, store, key = batch_workers
    first = workers.start(BATCH_PROBE_BLOCK_CHUNK=str(BLOCKED_CHUNK))
    job = services.batch_job_create(user=pharmacist, kind="pta", title="kill", spec=dict(SPEC))
    assert job.n_chunks == 6

    # the first worker stores chunks 0 and 1, then blocks inside chunk 2: kill the whole worker there
    _wait_for(lambda: store.get(f"{key}:blocked"), 120, "the worker to reach the blocked chunk")
    stored = set(BatchChunk.objects.filter(job=job).values_list("index", flat=True))
    assert BLOCKED_CHUNK not in stored
    workers.kill(first)
    job.refresh_from_db()
    assert job.status == "running" and job.chunks_done == len(stored) < job.n_chunks

    time.sleep(
        4
    )  # past the visibility timeout: the killed worker's chunk counts as lost and is handed out again
    workers.start()
    _wait_for(
        lambda: BatchJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists(),
        180,
        "the job to finish",
    )
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert job.chunks_done == job.n_chunks == 6
    assert sorted(BatchChunk.objects.filter(job=job).values_list("index", flat=True)) == list(range(6))
    assert int(store.get(f"{key}:computed:{BLOCKED_CHUNK}")) == 2  # type: ignore[arg-type]  # computed twice, stored once
    assert job.result == simulate.pta_run(simulate.pta_spec(SPEC))


def test_two_workers_give_the_single_process_result(
    batch_workers: tuple[Workers, redis.Redis, str], pharmacist: User
) -> None:
    workers, _, _ = batch_workers
    workers.start()
    workers.start()
    job = services.batch_job_create(user=pharmacist, kind="pta", title="two", spec=dict(SPEC))
    _wait_for(
        lambda: BatchJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists(),
        180,
        "the job to finish",
    )
    job.refresh_from_db()
    assert job.status == "done" and job.result == simulate.pta_run(simulate.pta_spec(SPEC))
