"""The account's copy of every message the platform sends it ("my messages").

Whatever sends a message to a patient (the reservations and screening notifiers, a staff action) calls
:func:`message_record` with a key naming that message; the database keeps one row per account and key, so a
task delivered twice, or retried after a channel failed, stores the message once.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from medcard.models import Message


def message_record(
    *,
    account_id: int,
    kind: str,
    title: str,
    text: str,
    dedupe_key: str,
    booking_id: int | None = None,
    sent_at: datetime | None = None,
) -> bool:
    """Store one sent message for the account; return False when that key was already stored.

    ``dedupe_key`` names the message (e.g. ``booking:12:booked``, ``screening:3:approved:2``): recording the
    same key for the same account again changes nothing (the unique constraint
    ``medcard_message_once_per_key`` decides, so two workers at once store one row).
    """
    key = dedupe_key[:120]
    if Message.objects.filter(account_id=account_id, dedupe_key=key).exists():
        return False
    # INSERT ... ON CONFLICT DO NOTHING: of two deliveries of one task racing past the check above, the
    # database keeps one row, and no IntegrityError poisons an enclosing transaction.
    Message.objects.bulk_create(
        [
            Message(
                account_id=account_id,
                kind=kind[:40],
                title=title[:100],
                text=text,
                dedupe_key=key,
                booking_id=booking_id,
                created_at=sent_at or timezone.now(),
            )
        ],
        ignore_conflicts=True,
    )
    return True


def messages_mark_read(*, account_id: int, message_ids: list[int] | None = None) -> int:
    """Mark the account's unread messages read (only those in ``message_ids`` when given); return how many.

    Only the account's own rows are touched: an id of another account's message changes nothing.
    """
    unread = Message.objects.filter(account_id=account_id, read_at__isnull=True)
    if message_ids is not None:
        unread = unread.filter(pk__in=message_ids)
    return unread.update(read_at=timezone.now())
