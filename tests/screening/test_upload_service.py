"""Accepting uploads: ownership, limits, storage names, originals, and nothing left behind a refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.http import Http404

from core.errors import AppError
from medcard.models import AuditEvent, User
from reservations import services as reservations
from reservations.models import Booking
from screening import selectors, services
from screening.models import Upload
from tests import factories
from tests.screening import samples


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _stored(media: Path) -> list[Path]:
    return sorted(path for path in media.rglob("*") if path.is_file()) if media.exists() else []


def booking_of(account: User) -> Booking:
    slot = factories.clinic_session(capacity=5, fee="0.00").slots.get()
    return reservations.hold_create(
        account=account, patient_id=factories.verified_patient_of(account).pk, slot_id=slot.pk
    )


def _accept(
    account: User, booking: Booking, data: bytes | None = None, filename: str = "report.jpg"
) -> Upload:
    return services.upload_accept(
        account=account, booking_id=booking.pk, filename=filename, data=data or samples.jpeg()
    )


@pytest.mark.django_db
def test_an_upload_is_stored_as_its_derivative_under_a_random_name(patient: User, _media: Path) -> None:
    booking = booking_of(patient)
    upload = _accept(patient, booking, filename="C:\\photos\\化验单.jpg")
    assert (upload.kind, upload.status, upload.filename) == ("jpeg", "accepted", "化验单.jpg")
    assert (upload.width_px, upload.height_px, upload.page_count) == (64, 48, None)
    assert upload.derivative_name.startswith("screening/") and upload.derivative_name.endswith(".jpg")
    assert "化验单" not in upload.derivative_name and "report" not in upload.derivative_name
    assert len(Path(upload.derivative_name).stem) >= 32
    assert _stored(_media) == [_media / upload.derivative_name]
    assert selectors.upload_derivative_bytes(upload=upload).startswith(b"\xff\xd8\xff")


@pytest.mark.django_db
def test_two_uploads_of_the_same_bytes_get_different_names(patient: User) -> None:
    booking = booking_of(patient)
    data = samples.jpeg()
    first, second = _accept(patient, booking, data), _accept(patient, booking, data)
    assert first.sha256 == second.sha256
    assert first.derivative_name != second.derivative_name


@pytest.mark.django_db
def test_the_original_is_not_kept_by_default(patient: User, _media: Path) -> None:
    original = samples.jpeg()
    upload = _accept(patient, booking_of(patient), original)
    assert upload.original_name == ""
    assert [path.read_bytes() for path in _stored(_media)] != [original]
    assert len(_stored(_media)) == 1


@pytest.mark.django_db
def test_the_original_is_kept_when_configured(patient: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SCREENING_KEEP_ORIGINALS = True
    original = samples.jpeg()
    upload = _accept(patient, booking_of(patient), original)
    assert upload.original_name.endswith(".original")
    with default_storage.open(upload.original_name, "rb") as handle:
        assert handle.read() == original


@pytest.mark.django_db
def test_a_pdf_upload_records_its_page_count(patient: User) -> None:
    upload = _accept(patient, booking_of(patient), samples.pdf(pages=2), filename="report.pdf")
    assert (upload.kind, upload.page_count, upload.width_px, upload.content_type) == (
        "pdf", 2, None, "application/pdf")  # fmt: skip


@pytest.mark.django_db
def test_a_refused_file_leaves_no_row_and_no_file(patient: User, _media: Path) -> None:
    booking = booking_of(patient)
    with pytest.raises(AppError) as refused:
        _accept(patient, booking, samples.jpeg() + samples.zip_bytes())
    assert refused.value.code == "polyglot"
    assert not Upload.objects.exists() and _stored(_media) == []


@pytest.mark.django_db
def test_a_booking_of_another_account_is_not_found_and_nothing_is_written(
    patient: User, outsider: User, _media: Path
) -> None:
    booking = booking_of(patient)
    with pytest.raises(Http404):
        _accept(outsider, booking)
    assert not Upload.objects.exists() and _stored(_media) == []


@pytest.mark.django_db
def test_too_many_uploads_for_one_booking_are_refused(patient: User, settings, _media: Path) -> None:  # type: ignore[no-untyped-def]
    settings.SCREENING_MAX_UPLOADS_PER_BOOKING = 2
    booking = booking_of(patient)
    _accept(patient, booking)
    _accept(patient, booking)
    with pytest.raises(AppError) as refused:
        _accept(patient, booking)
    assert refused.value.code == "too_many_uploads"
    assert Upload.objects.count() == 2 and len(_stored(_media)) == 2


@pytest.mark.django_db
def test_a_cancelled_booking_takes_no_uploads(patient: User) -> None:
    booking = booking_of(patient)
    reservations.booking_cancel(account=patient, booking_id=booking.pk, reason="")
    with pytest.raises(AppError) as refused:
        _accept(patient, booking)
    assert refused.value.code == "booking_closed"


@pytest.mark.django_db
def test_a_failed_insert_removes_the_files_already_written(patient: User, _media: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    booking = booking_of(patient)

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(Upload.objects, "create", broken)
    with pytest.raises(RuntimeError):
        _accept(patient, booking)
    assert _stored(_media) == []


# --- Access functions ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_the_owner_and_clinicians_reach_an_upload(
    patient: User, outsider: User, clinician: User, pharmacist: User
) -> None:
    upload = _accept(patient, booking_of(patient))
    assert selectors.upload_for_account(account=patient, upload_id=upload.pk) == upload
    assert selectors.upload_for_staff(staff=clinician, upload_id=upload.pk) == upload
    for attempt in (
        lambda: selectors.upload_for_account(account=outsider, upload_id=upload.pk),
        lambda: selectors.upload_for_account(account=clinician, upload_id=upload.pk),
        lambda: selectors.upload_for_staff(staff=pharmacist, upload_id=upload.pk),
        lambda: selectors.upload_for_staff(staff=patient, upload_id=upload.pk),
        lambda: selectors.uploads_for_booking(account=outsider, booking_id=upload.booking_id),
    ):
        with pytest.raises(Http404):
            attempt()


@pytest.mark.django_db
def test_a_staff_read_is_audited_for_the_patient(patient: User, clinician: User) -> None:
    upload = _accept(patient, booking_of(patient))
    services.upload_staff_read_record(staff=clinician, upload=upload)
    event = AuditEvent.objects.get(actor=clinician)
    assert event.patient == factories.verified_patient_of(patient)
    assert event.actor_is_staff and event.fields == "screening_upload" and event.action == "upload_viewed"


@pytest.mark.django_db
def test_the_database_refuses_an_image_row_with_a_page_count(patient: User) -> None:
    from django.db import IntegrityError, transaction

    upload = _accept(patient, booking_of(patient))
    with pytest.raises(IntegrityError), transaction.atomic():
        Upload.objects.filter(pk=upload.pk).update(page_count=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        Upload.objects.filter(pk=upload.pk).update(sha256="abc")
