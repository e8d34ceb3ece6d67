"""Celery tasks of the batch simulations: thin, idempotent wrappers around services, keyed by primary key.

``dosing.batch_chunk`` runs one chunk (acks late: a worker killed mid-chunk gives the message back and another
worker computes the chunk again; the unique (job, index) row makes sure it is stored and counted once).
"""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from dosing.batch import services

CHUNK_SOFT_LIMIT_S = 240
CHUNK_HARD_LIMIT_S = 300


@shared_task(
    name="dosing.batch_chunk",
    acks_late=True,
    soft_time_limit=CHUNK_SOFT_LIMIT_S,
    time_limit=CHUNK_HARD_LIMIT_S,
)
def batch_chunk(job_id: int, index: int) -> bool:
    """Compute and store one chunk, then finish the job if it was the last one."""
    try:
        services.batch_chunk_store(job_id=job_id, index=index)
    except SoftTimeLimitExceeded:
        services.batch_job_fail(job_id=job_id, error=f"chunk {index} took longer than {CHUNK_SOFT_LIMIT_S} s")
        raise
    except Exception as exc:
        services.batch_job_fail(job_id=job_id, error=f"chunk {index}: {type(exc).__name__}: {exc}")
        raise
    return services.batch_job_finish(job_id=job_id)


@shared_task(name="dosing.batch_enqueue", acks_late=True)
def batch_enqueue(job_id: int) -> None:
    """Queue the chunks of a job that are not stored yet (used to resume a job whose messages were lost)."""
    services.batch_job_enqueue(job_id=job_id)
