"""API for a booking's uploads (mounted under /api/v1/): parse, authorise, call a service or selector."""

from __future__ import annotations

from typing import cast

from django.http import Http404
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital.api import error_body
from medcard.api import IsPatientAccount
from medcard.models import User
from screening import selectors, services, uploads
from screening.models import Upload

# Refusals of the file itself are 4xx by kind; the booking's state and limits are conflicts, as elsewhere.
REFUSAL_STATUS = {
    "too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "type_not_allowed": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "too_many_uploads": status.HTTP_409_CONFLICT,
    "booking_closed": status.HTTP_409_CONFLICT,
}


def _account(request: Request) -> User:
    """The signed-in patient account (the permission class has already required one)."""
    return cast(User, request.user)


class UploadOut(serializers.Serializer):
    class Meta:
        ref_name = "Upload"

    id = serializers.IntegerField()
    booking_id = serializers.IntegerField()
    status = serializers.CharField()
    kind = serializers.ChoiceField(choices=Upload.Kind.choices)
    content_type = serializers.CharField(help_text="Media type of the cleaned copy served at file_url.")
    filename = serializers.CharField()
    byte_size = serializers.IntegerField(help_text="Size of the file as sent, in bytes.")
    width_px = serializers.IntegerField(allow_null=True)
    height_px = serializers.IntegerField(allow_null=True)
    page_count = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField(help_text="SHA-256 of the file as sent.")
    created_at = serializers.DateTimeField()
    file_url = serializers.SerializerMethodField()

    def get_file_url(self, upload: Upload) -> str:
        return reverse("screening:upload-file", args=[upload.pk])


class BookingUploadsApi(APIView):
    permission_classes = (IsPatientAccount,)
    parser_classes = (MultiPartParser,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "UploadRequest"

        # Empty files reach the service, which refuses them with the stable code "empty".
        file = serializers.FileField(allow_empty_file=True, help_text="A JPEG, PNG or HEIC photo, or a PDF. "
                                     "The type is read from the content, never from the name.")  # fmt: skip

    @extend_schema(responses=UploadOut(many=True), summary="The files sent for one of my appointments")
    def get(self, request: Request, booking_id: int) -> Response:
        try:
            rows = selectors.uploads_for_booking(account=_account(request), booking_id=booking_id)
        except Http404:
            raise NotFound() from None
        return Response(UploadOut(rows, many=True).data)

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={201: UploadOut},
        summary="Send a photo or PDF of a test report (refusals carry a stable error code)",
        description=(
            "Error codes: empty, too_large (413), type_not_allowed (415), too_many_pixels, truncated, "
            "polyglot, pdf_encrypted, pdf_active_content, too_many_pages, unreadable (422); "
            "too_many_uploads, booking_closed (409)."
        ),
    )
    def post(self, request: Request, booking_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        uploaded = data.validated_data["file"]
        try:
            upload = services.upload_accept(
                account=_account(request),
                booking_id=booking_id,
                filename=uploaded.name or "",
                data=uploads.read_capped(uploaded),
            )
        except Http404:
            raise NotFound() from None
        except services.UploadRefused as exc:
            code = REFUSAL_STATUS.get(exc.code, status.HTTP_422_UNPROCESSABLE_ENTITY)
            return Response(error_body(exc.code, exc.message), status=code)
        return Response(UploadOut(upload).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("bookings/<int:booking_id>/uploads/", BookingUploadsApi.as_view(), name="api-booking-uploads"),
]
