"""Reads of the screening app. One access function per reader; others get 404 like a missing row."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import Http404

from medcard import roles
from medcard.models import User
from medcard.selectors import user_has_role
from reservations.services import booking_for_account
from screening.models import Upload


def upload_for_account(*, account: User, upload_id: int) -> Upload:
    """An upload for one of the account's bookings, or Http404 (also for uploads of other accounts)."""
    upload = (
        Upload.objects.select_related("booking").filter(pk=upload_id, booking__account=account).first()
        if account.is_authenticated and account.kind == User.Kind.PATIENT
        else None
    )
    if upload is None:
        raise Http404("No such upload on this account.")
    return upload


def upload_for_staff(*, staff: User, upload_id: int) -> Upload:
    """Any upload, for front-desk staff (and superusers); Http404 for everyone else."""
    if not user_has_role(user=staff, role=roles.FRONT_DESK):
        raise Http404("No such upload.")
    upload = Upload.objects.select_related("booking__patient").filter(pk=upload_id).first()
    if upload is None:
        raise Http404("No such upload.")
    return upload


def uploads_for_booking(*, account: User, booking_id: int) -> QuerySet[Upload]:
    """The uploads of one of the account's bookings, oldest first; Http404 for others' bookings."""
    booking = booking_for_account(account=account, booking_id=booking_id)
    return Upload.objects.filter(booking=booking).order_by("created_at", "id")


def upload_derivative_bytes(*, upload: Upload) -> bytes:
    """The stored derivative. Call only with an upload returned by one of the access functions above."""
    with default_storage.open(upload.derivative_name, "rb") as handle:
        data: bytes = handle.read()
    return data
