"""Writes of the batch simulations: create a job, store a chunk, finish the job.

How a job runs (each step idempotent, so a redelivered task does no harm):

1. ``batch_job_create`` validates the inputs with the engine, stores the job with its chunk count, and after
   commit queues one task per chunk as a Celery group.
2. ``batch_chunk_store`` (in each chunk task) computes the chunk outside any transaction, then inserts its
   row and counts it in one transaction; the unique (job, index) constraint makes a second insert of the
   same chunk fail, so a chunk redelivered after its worker died is stored once and counted once.
3. ``batch_job_finish`` (after every chunk) merges the chunks when all are stored and marks the job done by
   compare-and-set, so two workers finishing the last chunks at once store the result once.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from functools import cache
from pathlib import Path
from typing import Any

from celery import group
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from dosing.batch import tasks
from dosing.batch.models import BatchChunk, BatchJob
from dosing.engine import simulate
from medcard.models import User

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000


@cache
def engine_version() -> str:
    """A digest of the engine's code and model files: which engine produced a stored result."""
    root = Path(simulate.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("*.py"), *root.glob("models/*.json")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return "sha256:" + digest.hexdigest()[:16]


def _engine_spec(
    kind: str, spec: dict[str, Any], input_csv: str
) -> simulate.PtaSpec | simulate.EvaluationSpec:
    """The engine's job from the stored inputs (an evaluation's cohort is the uploaded CSV, stored once)."""
    if kind == BatchJob.Kind.PTA:
        return simulate.pta_spec(spec)
    return simulate.evaluation_spec({**spec, "cohort_csv": input_csv})


def batch_job_create(
    *, user: User, kind: str, title: str, spec: dict[str, Any], input_csv: str = "", input_filename: str = ""
) -> BatchJob:
    """Validate a job's inputs with the engine, store the job and queue its chunks after commit.

    ``spec`` is the engine's job document (``simulate.pta_spec`` / ``simulate.evaluation_spec``) except that
    an evaluation's cohort comes as ``input_csv``. Raises ``simulate.SimulationInputError`` (nothing
    stored) when the inputs are invalid.
    """
    if kind not in BatchJob.Kind.values:
        raise simulate.SimulationInputError(f"unknown kind {kind!r}")
    spec = {k: v for k, v in spec.items() if k != "cohort_csv"}
    engine_spec = _engine_spec(kind, spec, input_csv)
    with transaction.atomic():
        job = BatchJob.objects.create(
            kind=kind,
            title=title.strip()[:120] or str(BatchJob.Kind(kind).label),
            created_by=user,
            created_at=timezone.now(),
            model_id=engine_spec.model_id,
            spec=spec,
            input_csv=input_csv,
            input_filename=input_filename[:200],
            engine_version=engine_version(),
            n_chunks=engine_spec.n_chunks,
        )
        transaction.on_commit(lambda: batch_job_enqueue(job_id=job.pk), robust=True)
    return job


def batch_job_enqueue(*, job_id: int) -> None:
    """Queue every chunk not stored yet, as one Celery group (any number of workers take them)."""
    job = BatchJob.objects.get(pk=job_id)
    stored = set(BatchChunk.objects.filter(job=job).values_list("index", flat=True))
    missing = [k for k in range(job.n_chunks) if k not in stored]
    if missing:
        group(tasks.batch_chunk.s(job.pk, k) for k in missing).apply_async(queue=settings.DOSING_BATCH_QUEUE)


def batch_chunk_store(*, job_id: int, index: int) -> bool:
    """Compute chunk ``index`` of a job and store it; False when it was stored already (nothing twice)."""
    job = BatchJob.objects.get(pk=job_id)
    if job.status in (BatchJob.Status.DONE, BatchJob.Status.FAILED):
        return False
    if BatchChunk.objects.filter(job=job, index=index).exists():
        return False
    # queued -> running once, whoever starts first (compare-and-set)
    BatchJob.objects.filter(pk=job_id, status=BatchJob.Status.QUEUED).update(
        status=BatchJob.Status.RUNNING, started_at=timezone.now()
    )
    started = time.perf_counter()
    spec = _engine_spec(job.kind, job.spec, job.input_csv)  # validated at creation; parsed again here
    if isinstance(spec, simulate.PtaSpec):
        result = simulate.pta_chunk(spec, index)
    else:
        result = simulate.evaluation_chunk(spec, index)
    seconds = time.perf_counter() - started
    try:
        with transaction.atomic():
            BatchChunk.objects.create(
                job=job,
                index=index,
                result=result,
                computed_at=timezone.now(),
                worker=socket.gethostname(),
                seconds=seconds,
            )
            # counted in the same transaction as the insert: a duplicate insert rolls back and counts nothing
            BatchJob.objects.filter(pk=job_id).update(chunks_done=F("chunks_done") + 1)
    except IntegrityError:
        return False  # another delivery of this chunk stored it first
    return True


def batch_job_finish(*, job_id: int) -> bool:
    """Merge the chunks and mark the job done once every chunk is stored; True if this call finished it."""
    job = BatchJob.objects.get(pk=job_id)
    if job.status != BatchJob.Status.RUNNING or job.chunks_done < job.n_chunks:
        return False
    partials = list(BatchChunk.objects.filter(job=job).order_by("index").values_list("result", flat=True))
    spec = _engine_spec(job.kind, job.spec, job.input_csv)
    if isinstance(spec, simulate.PtaSpec):
        result = simulate.pta_merge(spec, partials)
    else:
        result = simulate.evaluation_merge(spec, partials)
    # compare-and-set: of two workers merging at once, one stores the result
    won = BatchJob.objects.filter(
        pk=job_id, status=BatchJob.Status.RUNNING, chunks_done=F("n_chunks")
    ).update(status=BatchJob.Status.DONE, result=result, finished_at=timezone.now())
    return bool(won)


def batch_job_fail(*, job_id: int, error: str) -> None:
    """Mark an unfinished job failed (a chunk raised: a bug, since the inputs were validated up front)."""
    logger.error("batch job %s failed: %s", job_id, error)
    BatchJob.objects.filter(pk=job_id, status__in=[BatchJob.Status.QUEUED, BatchJob.Status.RUNNING]).update(
        status=BatchJob.Status.FAILED, error=error[:MAX_ERROR_CHARS], finished_at=timezone.now()
    )
