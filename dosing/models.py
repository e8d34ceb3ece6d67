"""The dosing app's models, one module per sub-domain."""

from dosing.batch.models import BatchChunk, BatchJob

__all__ = ["BatchChunk", "BatchJob"]
