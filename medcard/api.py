"""API for accounts, patients, cards and the front desk. Thin: parse, authorise, call a service, answer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.middleware.csrf import get_token
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import CsrfRequired
from core.clientip import client_ip
from medcard import roles, selectors, services, tokens
from medcard.models import Patient, PatientLink, User


class IsPatientAccount(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(
            request.user.is_authenticated and getattr(request.user, "kind", None) == User.Kind.PATIENT
        )


class IsFrontDesk(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return selectors.user_has_role(user=request.user, role=roles.FRONT_DESK)  # type: ignore[arg-type]


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _raise_validation(exc: DjangoValidationError) -> None:
    if hasattr(exc, "error_dict"):
        raise ValidationError(exc.message_dict) from None
    raise ValidationError({"non_field_errors": exc.messages}) from None


class _PatientOut(serializers.Serializer):
    class Meta:
        ref_name = "PatientMasked"

    id = serializers.IntegerField(source="patient.pk")
    name_masked = serializers.CharField(source="patient.masked_name")
    id_type = serializers.CharField(source="patient.id_type")
    id_number_masked = serializers.CharField(source="patient.masked_id_number")
    sex = serializers.CharField(source="patient.sex")
    birth_date = serializers.DateField(source="patient.birth_date")
    mobile_masked = serializers.CharField(source="patient.masked_mobile")
    relationship = serializers.CharField()
    verification = serializers.CharField(source="patient.verification")
    card_number = serializers.CharField(source="card.number", allow_null=True, default=None)


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Me"

        id = serializers.IntegerField()
        kind = serializers.ChoiceField(choices=User.Kind.choices)
        display_name = serializers.CharField()
        username = serializers.CharField(allow_null=True)
        mobile_masked = serializers.CharField(help_text="First 3 and last 4 digits only.")
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer, summary="The signed-in account")
    def get(self, request: Request) -> Response:
        user: User = request.user  # type: ignore[assignment]
        data = {
            "id": user.pk,
            "kind": user.kind,
            "display_name": user.display_name,
            "username": user.username,
            "mobile_masked": user.masked_mobile,
            "roles": selectors.user_roles(user=user),
        }
        return Response(self.OutputSerializer(data).data)


class SmsCodeApi(APIView):
    permission_classes = (AllowAny,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SmsCodeRequest"

        mobile = serializers.CharField(max_length=20)

    @extend_schema(request=InputSerializer, responses={202: None}, summary="Send a sign-in code by SMS")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.sms_code_request(mobile=data.validated_data["mobile"], ip=client_ip(request._request))
        except DjangoValidationError as exc:
            if exc.code in {"too_soon", "hourly_limit", "ip_limit"}:
                raise ThrottledError(exc.messages[0]) from None
            raise ValidationError({"mobile": exc.messages}) from None
        return Response(status=status.HTTP_202_ACCEPTED)


class ThrottledError(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"


class CsrfTokenApi(APIView):
    permission_classes = (AllowAny,)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CsrfToken"

        csrf_token = serializers.CharField(help_text="Send it back in the X-CSRFToken header.")

    @extend_schema(
        responses=OutputSerializer, summary="A CSRF token (also set as a cookie) for the API sign-in"
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer({"csrf_token": get_token(request._request)}).data)


class SmsSignInApi(APIView):
    # Signing in creates a session: a cross-site form must not sign a browser into someone else's account.
    permission_classes = (CsrfRequired,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SmsSignIn"

        mobile = serializers.CharField(max_length=20)
        code = serializers.RegexField(r"^[0-9]{6}$", help_text="The six digits of the SMS.")

    @extend_schema(
        request=InputSerializer, responses=MeApi.OutputSerializer, summary="Sign in with an SMS code"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = services.sms_sign_in(
                mobile=data.validated_data["mobile"], code=data.validated_data["code"]
            )
        except DjangoValidationError as exc:
            raise ValidationError({"code": exc.messages}) from None
        login(request._request, user, backend="medcard.backends.LockoutBackend")
        request.user = user
        return MeApi().get(request)


class PatientListApi(APIView):
    permission_classes = (IsPatientAccount,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PatientAdd"

        name = serializers.CharField(max_length=100)
        id_type = serializers.ChoiceField(choices=Patient.IdType.choices)
        id_number = serializers.CharField(max_length=40)
        sex = serializers.ChoiceField(choices=Patient.Sex.choices, required=False, allow_null=True)
        birth_date = serializers.DateField(required=False, allow_null=True)
        mobile = serializers.CharField(max_length=20)
        relationship = serializers.ChoiceField(choices=PatientLink.Relationship.choices)
        consent_code = serializers.CharField(max_length=6, required=False, allow_blank=True)

    @extend_schema(responses=_PatientOut(many=True), summary="My patients")
    def get(self, request: Request) -> Response:
        rows = selectors.patients_for_account(account=request.user)  # type: ignore[arg-type]
        return Response(_PatientOut(rows, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: _PatientOut},
        summary="Add a patient (409 consent_required: a code went to the person's phone; send it back)",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        details = services.PatientDetails(
            name=values["name"],
            id_type=values["id_type"],
            id_number=values["id_number"],
            sex=values.get("sex"),
            birth_date=values.get("birth_date"),
            mobile=values["mobile"],
            relationship=values["relationship"],
        )
        try:
            patient = services.patient_add(
                account=request.user,  # type: ignore[arg-type]
                details=details,
                consent_code=values.get("consent_code", ""),
            )
        except services.ConsentRequired as exc:
            message = _(
                "This person is already registered: a consent code was sent to %(mobile)s; send it back."
            )
            raise Conflict(detail=message % {"mobile": exc.masked_mobile}, code="consent_required") from None
        except DjangoValidationError as exc:
            _raise_validation(exc)
        row = selectors.patient_for_account(account=request.user, patient_id=patient.pk)  # type: ignore[arg-type]
        return Response(_PatientOut(row).data, status=status.HTTP_201_CREATED)


def _own_patient(request: Request, patient_id: int) -> selectors.AccountPatient:
    try:
        return selectors.patient_for_account(account=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    except Http404:
        raise NotFound() from None


class PatientDetailApi(APIView):
    permission_classes = (IsPatientAccount,)

    @extend_schema(responses=_PatientOut, summary="One of my patients")
    def get(self, request: Request, patient_id: int) -> Response:
        return Response(_PatientOut(_own_patient(request, patient_id)).data)


class CardTokenApi(APIView):
    permission_classes = (IsPatientAccount,)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CardToken"

        token = serializers.CharField()
        card_number = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(responses=OutputSerializer, summary="A fresh signed QR token for the patient's card")
    def get(self, request: Request, patient_id: int) -> Response:
        row = _own_patient(request, patient_id)
        if row.card is None:
            raise NotFound("This patient has no active card yet.")
        now = timezone.now()
        token = tokens.token_sign(
            card_number=row.card.number,
            now=now,
            lifetime_s=settings.CARD_TOKEN_LIFETIME_SECONDS,
            private_key=tokens.private_key_from_settings(),
        )
        claims = tokens.token_verify(token, public_key=tokens.public_key_from_settings(), now=now)
        data = {"token": token, "card_number": row.card.number, "expires_at": claims.expires_at}
        return Response(self.OutputSerializer(data).data)


class ReportLostApi(APIView):
    permission_classes = (IsPatientAccount,)

    @extend_schema(
        request=None, responses={201: _PatientOut}, summary="Revoke the card and issue a new number"
    )
    def post(self, request: Request, patient_id: int) -> Response:
        row = _own_patient(request, patient_id)
        try:
            services.card_report_lost(account=request.user, patient=row.patient)  # type: ignore[arg-type]
        except DjangoValidationError as exc:
            _raise_validation(exc)
        return Response(_PatientOut(_own_patient(request, patient_id)).data, status=status.HTTP_201_CREATED)


class AccessLogApi(APIView):
    permission_classes = (IsPatientAccount,)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AccessLogEntry"

        at = serializers.DateTimeField()
        staff = serializers.CharField(source="actor.display_name")
        action = serializers.CharField()
        reason = serializers.CharField()

    class Pagination(PageNumberPagination):
        page_size = 50

    @extend_schema(
        parameters=[OpenApiParameter("page", int, description="Page number, 1 (newest) by default.")],
        responses=inline_serializer(
            "AccessLogPage",
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": OutputSerializer(many=True),
            },
        ),
        summary="Which staff read this patient's record, newest first, 50 a page",
    )
    def get(self, request: Request, patient_id: int) -> Response:
        row = _own_patient(request, patient_id)
        paginator = self.Pagination()
        events = paginator.paginate_queryset(
            selectors.staff_reads_for_patient(patient=row.patient), request, view=self
        )
        return paginator.get_paginated_response(self.OutputSerializer(events, many=True).data)


class PublicKeyApi(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CardTokenPublicKey"

        algorithm = serializers.CharField()
        key_id = serializers.CharField()
        public_key_b64 = serializers.CharField(
            help_text="The 32 raw bytes of the Ed25519 public key, base64."
        )
        token_prefix = serializers.CharField()

    @extend_schema(responses=OutputSerializer, summary="The key kiosks use to verify card tokens offline")
    def get(self, request: Request) -> Response:
        key = tokens.public_key_from_settings()
        data = {
            "algorithm": "Ed25519",
            "key_id": tokens.key_id(key),
            "public_key_b64": tokens.public_key_b64(key),
            "token_prefix": tokens.PREFIX,
        }
        return Response(self.OutputSerializer(data).data)


class DeskLookupApi(APIView):
    permission_classes = (IsFrontDesk,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DeskLookup"

        token = serializers.CharField(required=False, allow_blank=True, max_length=300)
        card_number = serializers.CharField(required=False, allow_blank=True, max_length=20)
        id_last4 = serializers.CharField(required=False, allow_blank=True, max_length=4)
        sms_code = serializers.CharField(required=False, allow_blank=True, max_length=6)

    @extend_schema(request=InputSerializer, responses=_PatientOut, summary="Recognise a patient from a card")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values: dict[str, Any] = data.validated_data
        staff: User = request.user  # type: ignore[assignment]
        if values.get("token"):
            result = services.desk_lookup_token(staff=staff, token=values["token"])
        elif values.get("card_number"):
            result = services.desk_lookup_card_number(
                staff=staff,
                number=values["card_number"],
                id_last4=values.get("id_last4", ""),
                sms_code=values.get("sms_code", ""),
            )
        else:
            raise ValidationError({"token": [_("Send a token, or a card number with a second factor.")]})
        row = selectors.AccountPatient(result.patient, "", result.card)
        return Response(_PatientOut(row).data)


class DeskRevealApi(APIView):
    permission_classes = (IsFrontDesk,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DeskReveal"

        field = serializers.ChoiceField(choices=["name", "id_number", "mobile"])
        reason = serializers.CharField(max_length=300)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DeskRevealed"

        field = serializers.CharField()
        value = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        summary="Show one unmasked field of a patient you just looked up (audited; 422 not_looked_up)",
    )
    def post(self, request: Request, patient_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        patient = Patient.objects.filter(pk=patient_id).first()
        if patient is None:
            raise NotFound()
        value = services.desk_reveal(
            staff=request.user,  # type: ignore[arg-type]
            patient=patient,
            field=data.validated_data["field"],
            reason=data.validated_data["reason"],
        )
        return Response(self.OutputSerializer({"field": data.validated_data["field"], "value": value}).data)


urlpatterns = [
    path("me/", MeApi.as_view(), name="api-me"),
    path("auth/sms-codes/", SmsCodeApi.as_view(), name="api-sms-codes"),
    path("auth/csrf/", CsrfTokenApi.as_view(), name="api-csrf"),
    path("auth/sms-sign-in/", SmsSignInApi.as_view(), name="api-sms-sign-in"),
    path("patients/", PatientListApi.as_view(), name="api-patients"),
    path("patients/<int:patient_id>/", PatientDetailApi.as_view(), name="api-patient"),
    path("patients/<int:patient_id>/card-token/", CardTokenApi.as_view(), name="api-card-token"),
    path("patients/<int:patient_id>/report-lost/", ReportLostApi.as_view(), name="api-report-lost"),
    path("patients/<int:patient_id>/access-log/", AccessLogApi.as_view(), name="api-access-log"),
    path("card-tokens/public-key/", PublicKeyApi.as_view(), name="api-card-public-key"),
    path("desk/lookups/", DeskLookupApi.as_view(), name="api-desk-lookup"),
    path("desk/patients/<int:patient_id>/reveal/", DeskRevealApi.as_view(), name="api-desk-reveal"),
]
