"""The append-only audit trail: every staff read of personal data, every change of it, and every staff
action write one row."""

from __future__ import annotations

from typing import Any

from medcard.models import AuditEvent, Patient, User


def audit_record(
    *,
    actor: User | None,
    patient: Patient | None,
    action: str,
    fields: str = "",
    reason: str = "",
    detail: str = "",
    target: str = "",
    changes: dict[str, list[Any]] | None = None,
) -> AuditEvent:
    """Write one audit row, inside the transaction of the change it records, so both or neither land.

    A staff action names the object it changed (``target``) and each changed field's value before and after
    (``changes``: ``{"status": ["open", "stopped"]}``)."""
    return AuditEvent.objects.create(
        actor=actor,
        actor_is_staff=bool(actor is not None and actor.kind == User.Kind.STAFF),
        patient=patient,
        action=action,
        fields=fields,
        reason=reason[:300],
        detail=detail[:300],
        target=target[:60],
        changes=changes or {},
    )
