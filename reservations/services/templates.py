"""Weekly templates changed by an administrator: their future sessions follow.

The nightly generator (``schedules.sessions_generate``) never alters an existing session, so a change of a
template reaches only dates not generated yet. :func:`template_sessions_regenerate` brings the generated
future to the template at once, without touching what a patient holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction

from core.clock import local_today
from medcard.models import AuditEvent, User
from medcard.services.audit import audit_record
from reservations import schedules
from reservations.discovery import availability_changed
from reservations.models import Booking, Session, Slot, WaitlistEntry, WeeklyTemplate

# The generator's own get-or-create of one session, keyed on the unique constraints.
from reservations.schedules import _session_create


@dataclass(frozen=True)
class Regenerated:
    """What a regeneration did: sessions made afresh, removed, and kept because patients hold numbers."""

    created: int
    removed: int
    kept: int
    quotas_updated: int


def _untouched(session_ids: list[int]) -> set[int]:
    """The sessions that must stay: any booking (even cancelled: its history points at the session and its
    slice) or waitlist entry, or staff stopped them."""
    held = set(Booking.objects.filter(session_id__in=session_ids).values_list("session_id", flat=True))
    held |= set(WaitlistEntry.objects.filter(session_id__in=session_ids).values_list("session_id", flat=True))
    held |= set(
        Session.objects.filter(pk__in=session_ids, status=Session.Status.STOPPED).values_list("pk", flat=True)
    )
    return held


def template_sessions_regenerate(
    *, staff: User | None, template_id: int, today: date | None = None
) -> Regenerated:
    """Make the template's sessions from tomorrow to the generation horizon match the template again.

    Rules, in order:
    1. Today's sessions are never touched (the clinic day has started).
    2. A future session of the template with no booking, no waitlist entry and not stopped is removed and made
       afresh from the template (so a new weekday, time, slice length or quota applies), or just removed when
       the template is inactive.
    3. A session with bookings is kept with its slices; only the quotas of its slices follow the template,
       never below the numbers already taken (the database refuses an oversold slice anyway).
    4. Dates the template now covers and that have no session get one, as the nightly generator would.
    The change is audited with the acting member of staff, in the same transaction.
    """
    first = (today or local_today()) + timedelta(days=1)
    last = first + timedelta(days=max(schedules.generation_horizon_days() - 1, 0))
    with transaction.atomic():
        # Locked: two administrators saving the same template regenerate one after the other.
        template = (
            WeeklyTemplate.objects.select_for_update().select_related("clinic_type").get(pk=template_id)
        )
        future = list(
            Session.objects.filter(template=template, date__gte=first, date__lte=last).values_list(
                "pk", flat=True
            )
        )
        # Locked before looking for bookings: a hold takes its number by updating its slice row, so it either
        # committed before (its booking is seen and the session kept) or waits, then finds the slice gone.
        list(Slot.objects.select_for_update().filter(session_id__in=future).values_list("pk", flat=True))
        kept = _untouched(future)
        removable = [pk for pk in future if pk not in kept]
        Slot.objects.filter(session_id__in=removable).delete()
        Session.objects.filter(pk__in=removable).delete()
        changed = []
        for slot in Slot.objects.select_for_update().filter(
            session_id__in=kept, session__status=Session.Status.OPEN
        ):
            capacity = max(template.quota_per_slice + slot.extra, slot.taken)
            desk = max(template.desk_quota_per_slice, slot.desk_taken)
            if (capacity, desk) != (slot.capacity, slot.desk_capacity):
                slot.capacity, slot.desk_capacity = capacity, desk
                changed.append(slot)
        Slot.objects.bulk_update(changed, ["capacity", "desk_capacity"])  # one statement, rows locked above
        quotas = len(changed)
        created = 0
        if template.active:
            day = first
            while day <= last:
                # The generator's own door: it keys on the unique constraints, so a kept session stays.
                if day.weekday() == template.weekday and _session_create(template=template, day=day):
                    created += 1
                day += timedelta(days=1)
        result = Regenerated(created=created, removed=len(removable), kept=len(kept), quotas_updated=quotas)
        audit_record(
            actor=staff,
            patient=None,
            action=AuditEvent.Action.SESSIONS_REGENERATED,
            target=f"weeklytemplate {template.pk}",
            detail=f"{first.isoformat()}..{last.isoformat()}",
            changes={
                "sessions": [len(future), len(future) - len(removable) + created],
                "removed": [0, len(removable)],
                "created": [0, created],
                "kept_with_bookings": [0, len(kept)],
                "slice_quotas_updated": [0, quotas],
            },
        )
        availability_changed(department_id=template.department_id)
    return result
