"""Accepting an upload; for a screened booking, the file's reading and the case's decision follow.

Uploads are checked and re-encoded before anything is written, outside any transaction (a full decode of a
20 MB photo takes a while); the files are written next, and the row last. A refusal at any step leaves
nothing behind: no file and no row.

Settings read here (all optional): ``SCREENING_MAX_UPLOADS_PER_BOOKING`` (default 10) and
``SCREENING_KEEP_ORIGINALS`` (default false), plus the ``SCREENING_MAX_*`` caps read by ``screening.uploads``.
"""

from __future__ import annotations

import functools
import logging
import secrets
import unicodedata

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from medcard.models import AuditEvent, User
from medcard.services.audit import audit_record
from medcard.services.outbox import task_send
from reservations.models import ACTIVE_BOOKING_STATES, Booking
from reservations.selectors import booking_for_account
from screening import tasks
from screening.models import ScreeningCase, Upload
from screening.services.cases import case_upload_received
from screening.uploads import AppError, inspect_and_derive

logger = logging.getLogger(__name__)

STORAGE_FOLDER = "screening"
FILENAME_MAX_CHARS = 120


def max_uploads_per_booking() -> int:
    return settings.SCREENING_MAX_UPLOADS_PER_BOOKING


def keep_originals() -> bool:
    return settings.SCREENING_KEEP_ORIGINALS


def clean_filename(filename: str) -> str:
    """The client's file name, for display only: the last path part, no control characters, bounded.

    >>> clean_filename("C:\\\\Users\\\\wang\\\\化验单.jpg\\x00")
    '化验单.jpg'
    >>> clean_filename("../../etc/passwd")
    'passwd'
    """
    last = filename.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(ch for ch in last if unicodedata.category(ch)[0] != "C")
    return printable.strip()[:FILENAME_MAX_CHARS]


def _too_many(limit: int) -> AppError:
    return AppError("too_many_uploads", n=limit)


def _check_booking(booking: Booking) -> None:
    if booking.status not in ACTIVE_BOOKING_STATES:
        raise AppError(
            "booking_closed", _("This appointment is no longer active, so no files can be added to it.")
        )
    if Upload.objects.filter(booking=booking).count() >= max_uploads_per_booking():
        raise _too_many(max_uploads_per_booking())


def upload_accept(*, account: User, booking_id: int, filename: str, data: bytes) -> Upload:
    """Check, clean and store one file for one of the account's bookings.

    Rules: the booking is the account's (Http404 otherwise, also for bookings that exist) and still active; it
    has fewer than ``SCREENING_MAX_UPLOADS_PER_BOOKING`` uploads; the bytes pass ``inspect_and_derive``
    (``AppError`` with a stable code otherwise). The derivative is stored under a random name in
    ``screening/``; the original only when ``SCREENING_KEEP_ORIGINALS`` is on.

    No audit row: ``medcard.AuditEvent.Action`` has no upload action yet (the upload row itself records
    who sent what, when, with the original's checksum). For a screened booking, the case goes back to
    ``processing`` and the pipeline is queued after commit.
    """
    booking = booking_for_account(account=account, booking_id=booking_id)
    _check_booking(booking)  # cheap checks first, so a refused upload is not decoded for nothing
    derived = inspect_and_derive(data)
    # 144 random bits: names cannot be guessed or enumerated, and two uploads of the same bytes differ.
    token = secrets.token_urlsafe(24)
    written: list[str] = []
    try:
        derivative_name = default_storage.save(
            f"{STORAGE_FOLDER}/{token}.{derived.extension}", ContentFile(derived.data)
        )
        written.append(derivative_name)
        original_name = ""
        if keep_originals():
            # No extension: the original is never served, and nothing should guess a type from its name.
            original_name = default_storage.save(f"{STORAGE_FOLDER}/{token}.original", ContentFile(data))
            written.append(original_name)
        with transaction.atomic():
            # Two uploads for one booking at once could both pass the count above: lock the booking row so
            # the count and the insert happen as one step.
            Booking.objects.select_for_update().filter(pk=booking.pk).first()
            if Upload.objects.filter(booking=booking).count() >= max_uploads_per_booking():
                raise _too_many(max_uploads_per_booking())
            upload = Upload.objects.create(
                booking=booking,
                account=account,
                filename=clean_filename(filename),
                derivative_name=derivative_name,
                original_name=original_name,
                kind=derived.kind,
                byte_size=derived.byte_size,
                width_px=derived.width_px,
                height_px=derived.height_px,
                page_count=derived.page_count,
                sha256=derived.sha256,
            )
            case = ScreeningCase.objects.filter(booking=booking).first()
            if case is not None:
                case_upload_received(case=case, now=timezone.now())
                # One chain per upload (read, then decide), once the upload row is committed.
                transaction.on_commit(
                    functools.partial(pipeline_enqueue, upload_id=upload.pk, case_id=case.pk), robust=True
                )
    except BaseException:
        for name in written:  # nothing stays behind a refusal or a failure
            default_storage.delete(name)
        raise
    logger.info("upload %s accepted for booking %s (%s, %d bytes)", upload.pk, booking.pk, upload.kind,
                upload.byte_size)  # fmt: skip
    return upload


def pipeline_enqueue(*, upload_id: int, case_id: int) -> None:
    """Queue the upload's chain: ``screening.extract`` (on the OCR queue), then ``screening.decide_case``."""
    from celery import chain

    task_send(chain(tasks.extract.si(upload_id), tasks.decide_case.si(case_id)))


def upload_staff_read_record(*, staff: User, upload: Upload) -> None:
    """Audit a staff member's read of an upload (a patient's lab report is personal data)."""
    with transaction.atomic():
        audit_record(
            actor=staff,
            patient=upload.booking.patient,
            action=AuditEvent.Action.UPLOAD_VIEWED,
            fields="screening_upload",
            detail=f"upload {upload.pk} of booking {upload.booking_id}",
        )
