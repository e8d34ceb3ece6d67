"""API for a booking's uploads and screening (mounted under /api/v1/): parse, authorise, call a service."""

from __future__ import annotations

from typing import cast

from django.http import Http404
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from medcard.api import IsPatientAccount
from medcard.models import User
from screening import reasons, selectors, services, uploads
from screening.models import CASE_STATUSES, ScreeningCase, Upload


def _account(request: Request) -> User:
    """The signed-in account (the permission class has already required one)."""
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
        return Response(UploadOut(upload).data, status=status.HTTP_201_CREATED)


# --- Screening cases --------------------------------------------------------------------------------------


class ScreeningReasonOut(serializers.Serializer):
    class Meta:
        ref_name = "ScreeningReason"

    code = serializers.CharField()
    fixable = serializers.BooleanField()
    message = serializers.CharField(help_text="What happened, for the patient.")
    how_to_fix = serializers.CharField(help_text="How to fix it by sending another report; may be empty.")


class ScreeningCaseOut(serializers.Serializer):
    class Meta:
        ref_name = "ScreeningCase"

    booking_id = serializers.IntegerField()
    exam = serializers.CharField(source="exam_code")
    status = serializers.CharField(help_text=", ".join(CASE_STATUSES))
    reasons = serializers.SerializerMethodField()
    critical_fields = serializers.ListField(
        child=serializers.DictField(), help_text="Values read, for the patient to confirm (status confirm)."
    )
    patient_confirmed = serializers.BooleanField(allow_null=True)
    review_due_at = serializers.DateTimeField(allow_null=True)
    hold_expires_at = serializers.DateTimeField(source="booking.hold_expires_at", allow_null=True)
    booking_status = serializers.CharField(source="booking.status")

    @extend_schema_field(ScreeningReasonOut(many=True))
    def get_reasons(self, case: ScreeningCase) -> list[dict[str, object]]:
        rows = [r for r in case.decision.get("reasons", []) if isinstance(r, dict) and r.get("code")]
        out, seen = [], set()
        for row in rows:
            if row["code"] in seen:
                continue
            seen.add(row["code"])
            text = reasons.describe(str(row["code"]), row.get("params") or {})
            out.append({"code": row["code"], "fixable": bool(row.get("fixable")), "message": text["patient"],
                        "how_to_fix": text["fix"]})  # fmt: skip
        return out


def _case(request: Request, booking_id: int) -> ScreeningCase:
    try:
        return selectors.case_for_account(account=_account(request), booking_id=booking_id)
    except Http404:
        raise NotFound() from None


class BookingScreeningApi(APIView):
    permission_classes = (IsPatientAccount,)

    @extend_schema(responses=ScreeningCaseOut, summary="The screening of one of my appointments")
    def get(self, request: Request, booking_id: int) -> Response:
        return Response(ScreeningCaseOut(_case(request, booking_id)).data)


class ScreeningConfirmApi(APIView):
    permission_classes = (IsPatientAccount,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ScreeningConfirmRequest"

        correct = serializers.BooleanField(help_text="Are the values read from the report right?")

    @extend_schema(
        request=InputSerializer,
        responses={200: ScreeningCaseOut},
        summary="Confirm (or dispute: the case goes to staff) the values read from my report",
    )
    def post(self, request: Request, booking_id: int) -> Response:
        _case(request, booking_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_confirm(
            account=_account(request), booking_id=booking_id, correct=data.validated_data["correct"]
        )
        return Response(ScreeningCaseOut(case).data)


class ScreeningReviewRequestApi(APIView):
    permission_classes = (IsPatientAccount,)

    @extend_schema(
        request=None,
        responses={200: ScreeningCaseOut},
        summary="Ask for a manual review of an automatic decline (the number is held again if free)",
    )
    def post(self, request: Request, booking_id: int) -> Response:
        _case(request, booking_id)
        case = services.case_review_request(account=_account(request), booking_id=booking_id)
        return Response(ScreeningCaseOut(case).data)


# --- Staff: the review queue and decisions -----------------------------------------------------------------
# Authenticated users only; the selectors answer 404 to anyone but front-desk staff, as for a missing case.


class QueueRowOut(serializers.Serializer):
    class Meta:
        ref_name = "ScreeningQueueRow"

    case_id = serializers.IntegerField(source="case.pk")
    booking_id = serializers.IntegerField(source="case.booking_id")
    exam = serializers.CharField(source="case.exam_code")
    status = serializers.CharField(source="case.status")
    visit_date = serializers.DateField()
    starts_at = serializers.DateTimeField()
    reason_codes = serializers.ListField(child=serializers.CharField())
    blind_audit = serializers.BooleanField(help_text="Re-decide without the system's decision (not shown).")
    hold_expires_at = serializers.DateTimeField(allow_null=True)


class StaffCaseOut(ScreeningCaseOut):
    class Meta:
        ref_name = "ScreeningCaseForStaff"

    id = serializers.IntegerField()
    mode = serializers.CharField()
    answers = serializers.DictField(child=serializers.BooleanField())
    decided_by = serializers.CharField()
    extractions = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_extractions(self, case: ScreeningCase) -> list[dict[str, object]]:
        return [
            {"run_id": run.pk, "upload_id": run.upload_id, "status": run.status, "error_code": run.error_code,
             "extraction": run.outputs.get("extraction"), "scores": run.outputs.get("scores")}
            for run in selectors.case_extraction_runs(case=case)
        ]  # fmt: skip


def _staff_case(request: Request, case_id: int) -> ScreeningCase:
    try:
        return selectors.case_for_staff(staff=_account(request), case_id=case_id)
    except Http404:
        raise NotFound() from None


class StaffQueueApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        responses=QueueRowOut(many=True), summary="Screening cases waiting for staff, soonest visit first"
    )
    def get(self, request: Request) -> Response:
        try:
            rows = selectors.review_queue(staff=_account(request))
        except Http404:
            raise NotFound() from None
        return Response(QueueRowOut(rows, many=True).data)


class StaffCaseApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        responses=StaffCaseOut, summary="One screening case with what was read (the read is audited)"
    )
    def get(self, request: Request, case_id: int) -> Response:
        case = _staff_case(request, case_id)
        services.case_staff_read_record(staff=_account(request), case=case)
        return Response(StaffCaseOut(case).data)


class StaffDecisionApi(APIView):
    permission_classes = (IsAuthenticated,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ScreeningDecisionRequest"

        decision = serializers.ChoiceField(choices=["approve", "decline"])
        reason = serializers.CharField(max_length=300, help_text="Shown to the patient on a decline.")
        corrections = serializers.DictField(
            child=serializers.CharField(max_length=200, allow_blank=True), required=False,
            help_text="Corrected values by field key (analyte:creatinine, collected_on, ...).",
        )  # fmt: skip

    @extend_schema(request=InputSerializer, responses={200: StaffCaseOut},
                   summary="Approve or decline a case (or record a blind audit)")  # fmt: skip
    def post(self, request: Request, case_id: int) -> Response:
        case = _staff_case(request, case_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.review_decide(
            staff=_account(request),
            case=case,
            decision=data.validated_data["decision"],
            reason=data.validated_data["reason"],
            corrections=data.validated_data.get("corrections", {}),
        )
        case.refresh_from_db()
        return Response(StaffCaseOut(case).data)


urlpatterns = [
    path("staff/screening/cases/", StaffQueueApi.as_view(), name="api-screening-queue"),
    path("staff/screening/cases/<int:case_id>/", StaffCaseApi.as_view(), name="api-screening-case"),
    path(
        "staff/screening/cases/<int:case_id>/decision/",
        StaffDecisionApi.as_view(),
        name="api-screening-decision",
    ),
    path("bookings/<int:booking_id>/uploads/", BookingUploadsApi.as_view(), name="api-booking-uploads"),
    path("bookings/<int:booking_id>/screening/", BookingScreeningApi.as_view(), name="api-booking-screening"),
    path(
        "bookings/<int:booking_id>/screening/confirm/",
        ScreeningConfirmApi.as_view(),
        name="api-booking-screening-confirm",
    ),
    path(
        "bookings/<int:booking_id>/screening/review-request/",
        ScreeningReviewRequestApi.as_view(),
        name="api-booking-screening-review-request",
    ),
]
