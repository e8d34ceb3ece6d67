"""Celery tasks of the screening: thin, idempotent wrappers around services, keyed by primary key.

One chain per upload, queued after the upload commits: ``screening.extract`` (reads the file: OCR, about
3 s a page, on ``SCREENING_OCR_QUEUE``) then ``screening.decide_case``. Each step's service claims its work
by a unique run key, so a duplicate delivery (``acks_late`` redelivers when a worker dies) does nothing.
"""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from reservations.notifications import NotificationDeliveryError

# Only the package here, its members looked up when a task runs: the services enqueue these tasks.
from screening import services

EXTRACT_RETRIES = 3
# A file whose reading got the worker killed (hard time limit, out of memory) is given this many deliveries,
# then recorded as failed: a poisoned file must not loop through the workers for ever.
EXTRACT_MAX_DELIVERIES = 3


@shared_task(
    name="screening.extract", bind=True, acks_late=True, soft_time_limit=60, time_limit=90,
    max_retries=EXTRACT_RETRIES,
)  # fmt: skip
def extract(self, upload_id: int) -> int | None:
    """Read one upload and store the extraction run; storage errors are retried with backoff, then the
    run is stored as failed (the case still gets decided: the file counts as unread)."""
    deliveries_key = f"screening:extract-deliveries:{upload_id}"
    cache.add(deliveries_key, 0, timeout=24 * 3600)
    deliveries = cache.incr(deliveries_key)
    worker_lost = deliveries > EXTRACT_MAX_DELIVERIES + EXTRACT_RETRIES
    try:
        run = services.pipeline.upload_extract(
            upload_id=upload_id,
            last_attempt=self.request.retries >= EXTRACT_RETRIES,
            give_up="too_many_attempts" if worker_lost else "",
        )
    except services.pipeline.StorageUnavailable as exc:
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc
    return run.pk if run is not None else None


@shared_task(name="screening.decide_case", acks_late=True, soft_time_limit=30, time_limit=45)
def decide_case(case_id: int) -> int | None:
    """Decide a case from everything read so far (nothing happens for the same inputs twice)."""
    run = services.pipeline.case_decide(case_id=case_id)
    return run.pk if run is not None else None


@shared_task(
    name="screening.case_notify", autoretry_for=(NotificationDeliveryError,), max_retries=3, retry_backoff=30
)
def case_notify(case_id: int, kind: str, revision: int) -> int:
    """Send one screening message; a duplicate delivery sends nothing (a claim per case, kind, revision)."""
    return services.notify.case_notify_send(case_id=case_id, kind=kind, revision=revision)


@shared_task(name="screening.resume_stuck")
def resume_stuck() -> int:
    """Every 5 minutes (beat): queue again the chains and decisions that a lost task left undone."""
    return services.pipeline.cases_resume_stuck()
