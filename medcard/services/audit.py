"""The append-only audit trail of personal data: every staff read and every change writes one row."""

from __future__ import annotations

from medcard.models import AuditEvent, Patient, User


def audit_record(
    *,
    actor: User | None,
    patient: Patient | None,
    action: str,
    fields: str = "",
    reason: str = "",
    detail: str = "",
) -> AuditEvent:
    """Write one audit row, inside the transaction of the change it records, so both or neither land."""
    return AuditEvent.objects.create(
        actor=actor,
        actor_is_staff=bool(actor is not None and actor.kind == User.Kind.STAFF),
        patient=patient,
        action=action,
        fields=fields,
        reason=reason[:300],
        detail=detail[:300],
    )
