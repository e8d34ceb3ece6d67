"""Celery task discovery looks for ``dosing.tasks``: register the tasks of each sub-package."""

from dosing.batch.tasks import batch_chunk, batch_enqueue

__all__ = ["batch_chunk", "batch_enqueue"]
