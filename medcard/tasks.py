"""Celery tasks of the medcard app: thin wrappers around services, idempotent, keyed by primary key."""

from __future__ import annotations

from celery import shared_task

from medcard import services
from medcard.models import Patient


@shared_task(name="medcard.patient_verify_retry", acks_late=True)
def patient_verify_retry(patient_id: int) -> str:
    """Ask the identity provider again about a patient it could not answer for; does nothing once decided."""
    if not Patient.objects.filter(pk=patient_id).exists():
        return "gone"
    return services.patient_verify(patient_id=patient_id)


@shared_task(name="medcard.outbox_flush")
def outbox_flush() -> int:
    """Send again the tasks the broker could not take while it was down (see medcard.services.outbox)."""
    return services.outbox_flush()
