"""Handing tasks to the broker so that none is lost while Redis is down.

Services enqueue after commit through :func:`task_send`. When the broker cannot take the task, it is written
to the ``TaskOutbox`` table (the database is up: the transaction that asked for the task just committed) and
the request goes on. :func:`outbox_flush` sends the kept tasks again, oldest first: after the next successful
send in the same process, and every minute from beat (``medcard.outbox_flush``). Tasks are idempotent (see
STYLE.md), so a task sent twice by two flushers at once is harmless.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import signature as celery_signature
from django.utils import timezone

from medcard.models import TaskOutbox

logger = logging.getLogger(__name__)

FLUSH_BATCH = 500
KEEP_SENT = timedelta(days=7)


class _State:
    # Whether this process may have left tasks in the outbox: checked once after start, then only after a
    # failed send, so a healthy process never queries the table on its hot path.
    maybe_pending = True


def _publish(sig: Any) -> str:
    result = sig.apply_async()
    return str(result.id)


def task_send(sig: Any) -> None:
    """Send a Celery signature (``task.si(...)``, a chain) now; keep it in the outbox if the broker fails."""
    try:
        _publish(sig)
    except Exception as exc:  # kombu's OperationalError, redis errors, refused connections: all "not now"
        TaskOutbox.objects.create(signature=dict(sig), last_error=f"{type(exc).__name__}: {exc}"[:200])
        _State.maybe_pending = True
        logger.error("broker unreachable: task kept in the outbox", extra={"task": dict(sig).get("task")})
        return
    if _State.maybe_pending:
        outbox_flush()


def outbox_flush(*, limit: int = FLUSH_BATCH) -> int:
    """Send the kept tasks again, oldest first; stop at the first failure (the broker is still down).

    Returns how many were sent. Sent rows are kept a week (with their task id) for the record.
    """
    sent = 0
    for row in TaskOutbox.objects.filter(sent_at__isnull=True).order_by("id")[:limit]:
        try:
            task_id = _publish(celery_signature(row.signature))
        except Exception as exc:
            TaskOutbox.objects.filter(pk=row.pk).update(
                attempts=row.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:200]
            )
            return sent
        TaskOutbox.objects.filter(pk=row.pk, sent_at__isnull=True).update(
            sent_at=timezone.now(), task_id=task_id
        )
        sent += 1
    if sent < limit:
        _State.maybe_pending = False
    TaskOutbox.objects.filter(sent_at__lt=timezone.now() - KEEP_SENT).delete()
    if sent:
        logger.warning("outbox flushed", extra={"sent": sent})
    return sent


def outbox_pending_count() -> int:
    """How many tasks wait in the outbox (for /healthz)."""
    return TaskOutbox.objects.filter(sent_at__isnull=True).count()
