"""The upload page, the file view and the API, through HTTP: who may send, who may see, and what is sent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from medcard.models import AuditEvent, User
from reservations.models import Booking
from screening.models import Upload
from tests.screening import samples
from tests.screening.test_upload_service import booking_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.screening.screening_test_urls")]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(booking: Booking) -> str:
    return f"/screening/bookings/{booking.pk}/uploads/"


def _api(booking: Booking) -> str:
    return f"/api/v1/bookings/{booking.pk}/uploads/"


def _file(data: bytes, name: str = "report.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def _send(client: Client, booking: Booking, data: bytes, name: str = "report.jpg") -> Upload:
    response = client.post(_page(booking), {"file": _file(data, name)})
    assert response.status_code == 302
    return Upload.objects.filter(booking=booking).latest("id")


# --- The phone page -----------------------------------------------------------------------------------------


def test_the_page_lists_uploads_and_offers_a_multipart_form(patient_client: Client, patient: User) -> None:
    booking = booking_of(patient)
    _send(patient_client, booking, samples.jpeg(), "化验单.jpg")
    page = patient_client.get(_page(booking))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in html and 'name="file"' in html
    assert "化验单.jpg" in html and "js/upload_progress.js" in html  # the progress script is a static file


def test_uploading_without_javascript_redirects_back_with_a_message(
    patient_client: Client, patient: User
) -> None:
    booking = booking_of(patient)
    response = patient_client.post(_page(booking), {"file": _file(samples.png(), "scan.png")}, follow=True)
    assert response.status_code == 200
    assert "Received scan.png" in response.content.decode()
    assert Upload.objects.get(booking=booking).kind == "png"


def test_a_refused_file_is_explained_on_the_page(patient_client: Client, patient: User, _media: Path) -> None:
    booking = booking_of(patient)
    exe = b"MZ\x90\x00" + b"\x00" * 200
    response = patient_client.post(_page(booking), {"file": _file(exe, "report.jpg")}, follow=True)
    assert "Only photos (JPEG, PNG, HEIC) and PDF files" in response.content.decode()
    assert not Upload.objects.exists() and not _media.exists()


def test_an_oversized_file_is_refused_without_reading_all_of_it(
    patient_client: Client, patient: User, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.SCREENING_MAX_UPLOAD_BYTES = 1000
    booking = booking_of(patient)
    response = patient_client.post(_page(booking), {"file": _file(samples.jpeg((400, 400)))}, follow=True)
    assert "larger than" in response.content.decode()
    assert not Upload.objects.exists()


def test_another_accounts_booking_page_is_not_found(outsider: User, patient: User, _media: Path) -> None:
    booking = booking_of(patient)
    client = _client(outsider)
    assert client.get(_page(booking)).status_code == 404
    assert client.post(_page(booking), {"file": _file(samples.jpeg())}).status_code == 404
    assert not Upload.objects.exists() and not _media.exists()


# --- The file view ------------------------------------------------------------------------------------------


def test_the_owner_gets_the_cleaned_image_with_safe_headers(patient_client: Client, patient: User) -> None:
    upload = _send(patient_client, booking_of(patient), samples.jpeg((2, 1), orientation=6))
    response = patient_client.get(f"/screening/uploads/{upload.pk}/file/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == f'inline; filename="upload-{upload.pk}.jpg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    with Image.open(io.BytesIO(response.content)) as img:
        assert img.size == (1, 2) and not img.getexif()


def test_a_pdf_is_served_as_a_download(patient_client: Client, patient: User) -> None:
    upload = _send(patient_client, booking_of(patient), samples.pdf(), "report.pdf")
    response = patient_client.get(f"/screening/uploads/{upload.pk}/file/")
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_outsider_gets_404_for_the_file(patient_client: Client, patient: User, outsider: User) -> None:
    upload = _send(patient_client, booking_of(patient), samples.jpeg())
    assert _client(outsider).get(f"/screening/uploads/{upload.pk}/file/").status_code == 404


def test_a_clinician_can_fetch_the_file_and_the_read_is_audited(
    patient_client: Client, patient: User, clinician: User
) -> None:
    upload = _send(patient_client, booking_of(patient), samples.jpeg())
    response = _client(clinician).get(f"/screening/uploads/{upload.pk}/file/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert AuditEvent.objects.filter(actor=clinician, fields="screening_upload").count() == 1


def test_a_pharmacist_gets_404_for_the_file(patient_client: Client, patient: User, pharmacist: User) -> None:
    upload = _send(patient_client, booking_of(patient), samples.jpeg())
    assert _client(pharmacist).get(f"/screening/uploads/{upload.pk}/file/").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(patient_client: Client, patient: User) -> None:
    upload = _send(patient_client, booking_of(patient), samples.jpeg())
    response = Client().get(f"/screening/uploads/{upload.pk}/file/")
    assert response.status_code == 302 and "/accounts/" in response["Location"]


# --- The API ------------------------------------------------------------------------------------------------


def test_the_api_accepts_a_multipart_upload(patient_client: Client, patient: User) -> None:
    booking = booking_of(patient)
    response = patient_client.post(_api(booking), {"file": _file(samples.heic(), "IMG_0001.HEIC")})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["content_type"], body["booking_id"]) == ("heic", "image/jpeg", booking.pk)
    assert body["file_url"] == f"/screening/uploads/{body['id']}/file/"
    assert patient_client.get(body["file_url"]).status_code == 200


def test_the_api_lists_a_bookings_uploads(patient_client: Client, patient: User) -> None:
    booking = booking_of(patient)
    patient_client.post(_api(booking), {"file": _file(samples.jpeg())})
    patient_client.post(_api(booking), {"file": _file(samples.pdf(), "r.pdf", "application/pdf")})
    body = patient_client.get(_api(booking)).json()
    assert [row["kind"] for row in body] == ["jpeg", "pdf"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 422, "empty"),
        (b"<html><script>alert(1)</script></html>", 415, "type_not_allowed"),
        (samples.jpeg() + samples.zip_bytes(), 422, "polyglot"),
        (samples.pdf_javascript(), 422, "pdf_active_content"),
    ],
)
def test_the_api_refuses_with_a_stable_code(
    patient_client: Client, patient: User, data: bytes, status: int, code: str
) -> None:
    response = patient_client.post(_api(booking_of(patient)), {"file": _file(data)})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Upload.objects.exists()


def test_the_api_answers_404_for_another_accounts_booking(
    patient: User, outsider: User, _media: Path
) -> None:
    booking = booking_of(patient)
    client = _client(outsider)
    assert client.get(_api(booking)).status_code == 404
    assert client.post(_api(booking), {"file": _file(samples.jpeg())}).status_code == 404
    assert not Upload.objects.exists() and not _media.exists()


def test_the_api_refuses_uploads_past_the_per_booking_limit(
    patient_client: Client, patient: User, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.SCREENING_MAX_UPLOADS_PER_BOOKING = 1
    booking = booking_of(patient)
    assert patient_client.post(_api(booking), {"file": _file(samples.jpeg())}).status_code == 201
    response = patient_client.post(_api(booking), {"file": _file(samples.jpeg())})
    assert response.status_code == 409 and response.json()["error"]["code"] == "too_many_uploads"


def test_staff_cannot_use_the_patient_api(patient: User, clinician: User) -> None:
    assert _client(clinician).get(_api(booking_of(patient))).status_code == 403


def test_the_schema_describes_the_upload_endpoint_as_multipart(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()
    operation = schema["paths"]["/api/v1/bookings/{booking_id}/uploads/"]
    assert "multipart/form-data" in operation["post"]["requestBody"]["content"]
    assert "Upload" in schema["components"]["schemas"]
