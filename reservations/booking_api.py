"""API for holds, payments, bookings, the waitlist and staff actions: parse, authorise, call a service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.http import Http404
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_body
from core.errors import AppError
from core.schema import KeyField
from medcard import roles
from medcard.api import IsPatientAccount
from medcard.models import User
from medcard.selectors import user_has_role
from reservations import selectors, services
from reservations.models import Booking

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Repeat a POST safely: the first answer is returned again; another body with it is refused.",
)


class IsFrontDesk(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return user_has_role(user=_account(request), role=roles.FRONT_DESK)


def _account(request: Request) -> User:
    """The signed-in account (the permission classes have already required one)."""
    return cast(User, request.user)


class BookingOut(serializers.Serializer):
    class Meta:
        ref_name = "Booking"

    id = serializers.IntegerField()
    status = serializers.CharField()
    patient_id = serializers.IntegerField()
    patient_name_masked = serializers.CharField(source="patient.masked_name")
    department = serializers.CharField(source="department.name")
    doctor = serializers.CharField(source="session.doctor.name", default="")
    room = serializers.CharField(source="session.room")
    starts_at = serializers.DateTimeField(source="slot.starts_at")
    ends_at = serializers.DateTimeField(source="slot.ends_at")
    fee = serializers.DecimalField(max_digits=8, decimal_places=2)
    hold_expires_at = serializers.DateTimeField(allow_null=True)
    queue_number = serializers.IntegerField(allow_null=True)
    from_waitlist = serializers.BooleanField()
    cancel_reason = serializers.CharField()
    refund_status = serializers.SerializerMethodField()

    def get_refund_status(self, booking: Booking) -> str | None:
        if self.context.get("fresh"):
            return None
        return selectors.booking_refund_status(booking=booking)


Made = tuple[int, dict[str, Any]]


def _answer(
    request: Request, *, endpoint: str, payload: dict[str, Any], make: Callable[[], Made]
) -> Response:
    """Run a creating POST under its Idempotency-Key (if any) and answer what the first run answered; a rule's
    refusal is a 409 answer like any other, so a retry gets it again."""

    def run() -> services.Answer:
        try:
            status, body = make()
        except AppError as exc:
            return services.Answer(status=exc.status, body=exc.body())
        return services.Answer(status=status, body=body)

    try:
        answer = services.idempotent(
            account=_account(request),
            key=request.headers.get("Idempotency-Key"),
            endpoint=endpoint,
            payload=payload,
            run=run,
        )
    except AppError:
        raise  # the API's exception handler answers with the refusal's status and code
    return Response(answer.body, status=answer.status)


# For a booking just created: one serializer, built (its fields deep-copied and bound) once per process
# instead of on every hold of a flash crowd. Rendering only reads its fields and its fixed context, so the
# threads of a worker share it.
_FRESH_OUT = BookingOut(context={"fresh": True})


def _booking_body(booking: Booking, *, fresh: bool = False) -> dict[str, Any]:
    """The booking as the API shows it; ``fresh`` for a booking just created, whose related rows are in hand
    and which cannot have a refund yet (two queries fewer on every hold of a flash crowd)."""
    if fresh:
        return dict(_FRESH_OUT.to_representation(booking))
    booking = Booking.objects.select_related("patient", "department", "session__doctor", "slot").get(
        pk=booking.pk
    )
    return dict(BookingOut(booking).data)


class HoldApi(APIView):
    permission_classes = (IsPatientAccount,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "HoldRequest"

        patient_id = KeyField()
        slot_id = KeyField()
        answers = serializers.DictField(
            child=serializers.BooleanField(),
            required=False,
            help_text="For a screened examination: yes/no to each of its screening questions, by item code "
            "(diabetes, kidney_disease, metformin, ...). Ignored for sessions that are not screened.",
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: BookingOut},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Hold a number (409 with code 'full' and waitlist=true when the time is full)",
        description="A screened examination's number is held until its screening approves it (422 "
        "screening_answers when the answers are missing or unknown); payment is refused meanwhile (409 "
        "screening_pending). Follow it at /api/v1/bookings/{id}/screening/.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)

        def hold() -> Made:
            try:
                booking = services.hold_create(account=_account(request), **values)
            except Http404:
                return 404, error_body("not_found", _("There is nothing at this address."))
            return 201, _booking_body(booking, fresh=True)

        return _answer(request, endpoint="holds", payload=values, make=hold)


class BookingListApi(APIView):
    permission_classes = (IsPatientAccount,)

    @extend_schema(responses=BookingOut(many=True), summary="My appointments, newest first")
    def get(self, request: Request) -> Response:
        bookings = selectors.bookings_for_account(account=_account(request))
        return Response(BookingOut(bookings, many=True).data)


def _own(request: Request, booking_id: int) -> Booking:
    try:
        return selectors.booking_for_account(account=_account(request), booking_id=booking_id)
    except Http404:
        raise NotFound() from None


class BookingDetailApi(APIView):
    permission_classes = (IsPatientAccount,)

    @extend_schema(responses=BookingOut, summary="One of my appointments")
    def get(self, request: Request, booking_id: int) -> Response:
        return Response(BookingOut(_own(request, booking_id)).data)


class PaymentApi(APIView):
    permission_classes = (IsPatientAccount,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentRequest"

        channel = serializers.ChoiceField(choices=["wechatpay", "alipay"])
        trade_type = serializers.ChoiceField(
            choices=["h5", "jsapi"],
            default="h5",
            help_text="h5 (default): go to pay_url. jsapi: WeChat Pay inside WeChat (channel wechatpay "
            "only); the answer's jsapi_params go to WeixinJSBridge.invoke('getBrandWCPayRequest', …). "
            "Needs the account's openid from the WeChat OAuth step (the web page's 'Pay with WeChat'); "
            "without it the answer is 409 openid_required.",
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PaymentStarted"

        order_no = serializers.CharField()
        channel = serializers.CharField()
        amount = serializers.DecimalField(max_digits=8, decimal_places=2)
        pay_url = serializers.CharField(help_text="Empty for trade_type jsapi.")
        jsapi_params = serializers.DictField(
            child=serializers.CharField(),
            required=False,
            allow_null=True,
            help_text="For trade_type jsapi: appId, timeStamp, nonceStr, package (prepay_id=…), signType "
            "(RSA) and paySign, as getBrandWCPayRequest takes them; null otherwise.",
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Start paying a held number: go to pay_url (or, for jsapi, invoke the WeChat bridge)",
    )
    def post(self, request: Request, booking_id: int) -> Response:
        _own(request, booking_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel = data.validated_data["channel"]
        jsapi = data.validated_data["trade_type"] == "jsapi"

        def pay() -> Made:
            started = services.payment_start(
                account=_account(request), booking_id=booking_id, channel=channel, jsapi=jsapi
            )
            payment = started.payment
            body = {"order_no": payment.order_no, "channel": channel, "amount": str(payment.amount),
                    "pay_url": started.pay_url, "jsapi_params": started.jsapi_params}  # fmt: skip
            return 201, body

        # An H5 request keeps the key payload it always had, so retries across this change still match.
        payload = {"channel": channel, "trade_type": "jsapi"} if jsapi else {"channel": channel}
        return _answer(request, endpoint=f"bookings/{booking_id}/payments", payload=payload, make=pay)


class CancelApi(APIView):
    permission_classes = (IsPatientAccount,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CancelRequest"

        reason = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={200: BookingOut}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Cancel; a paid fee is refunded to its channel (refund_status)")  # fmt: skip
    def post(self, request: Request, booking_id: int) -> Response:
        _own(request, booking_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data.get("reason", "")

        def cancel() -> Made:
            booking = services.booking_cancel(account=_account(request), booking_id=booking_id, reason=reason)
            return 200, _booking_body(booking)

        return _answer(
            request, endpoint=f"bookings/{booking_id}/cancel", payload={"reason": reason}, make=cancel
        )


class RescheduleApi(APIView):
    permission_classes = (IsPatientAccount,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RescheduleRequest"

        slot_id = KeyField()

    @extend_schema(request=InputSerializer, responses={201: BookingOut}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Move the number to another time of the same fee, in one step")  # fmt: skip
    def post(self, request: Request, booking_id: int) -> Response:
        _own(request, booking_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        slot_id = data.validated_data["slot_id"]

        def reschedule() -> Made:
            booking = services.booking_reschedule(
                account=_account(request), booking_id=booking_id, new_slot_id=slot_id
            )
            return 201, _booking_body(booking)

        return _answer(
            request,
            endpoint=f"bookings/{booking_id}/reschedule",
            payload={"slot_id": slot_id},
            make=reschedule,
        )


class WaitlistApi(APIView):
    permission_classes = (IsPatientAccount,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WaitlistRequest"

        patient_id = KeyField()

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WaitlistEntry"

        id = serializers.IntegerField()
        status = serializers.CharField()
        position = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer, responses={201: OutputSerializer}, summary="Join a full session's waitlist"
    )
    def post(self, request: Request, session_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            entry = services.waitlist_join(
                account=_account(request),
                patient_id=data.validated_data["patient_id"],
                session_id=session_id,
            )
        except Http404:
            raise NotFound() from None
        body = {"id": entry.pk, "status": entry.status, "position": selectors.waitlist_position(entry=entry)}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class StaffStopSessionApi(APIView):
    permission_classes = (IsFrontDesk,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StopSession"

        reason = serializers.CharField(max_length=200)

    @extend_schema(
        request=InputSerializer,
        responses={200: None},
        summary="Stop a session (停诊): cancel, refund, notify",
    )
    def post(self, request: Request, session_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff: User = _account(request)
        cancelled = services.session_stop(
            staff=staff, session_id=session_id, reason=data.validated_data["reason"]
        )
        return Response({"cancelled": cancelled})


class StaffExtraNumbersApi(APIView):
    permission_classes = (IsFrontDesk,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ExtraNumbers"

        count = serializers.IntegerField(min_value=1, max_value=20)

    @extend_schema(
        request=InputSerializer, responses={200: None}, summary="Add extra numbers (加号) to a slice"
    )
    def post(self, request: Request, slot_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        slot = services.slot_extra_add(
            staff=_account(request), slot_id=slot_id, count=data.validated_data["count"]
        )
        return Response({"capacity": slot.capacity, "taken": slot.taken})


class StaffCheckInApi(APIView):
    permission_classes = (IsFrontDesk,)

    @extend_schema(
        request=None, responses={200: BookingOut}, summary="Check a booked patient in; gives a queue number"
    )
    def post(self, request: Request, booking_id: int) -> Response:
        if not Booking.objects.filter(pk=booking_id).exists():
            raise NotFound()
        booking = services.booking_check_in(staff=_account(request), booking_id=booking_id)
        return Response(_booking_body(booking))


class StaffDeskPaymentApi(APIView):
    permission_classes = (IsFrontDesk,)

    @extend_schema(
        request=None, responses={200: BookingOut}, summary="Record a fee paid at the desk (cash or card)"
    )
    def post(self, request: Request, booking_id: int) -> Response:
        if not Booking.objects.filter(pk=booking_id).exists():
            raise NotFound()
        payment = services.desk_payment_record(staff=_account(request), booking_id=booking_id)
        return Response(_booking_body(payment.booking))


urlpatterns = [
    path("bookings/", BookingListApi.as_view(), name="api-bookings"),
    path("bookings/holds/", HoldApi.as_view(), name="api-holds"),
    path("bookings/<int:booking_id>/", BookingDetailApi.as_view(), name="api-booking"),
    path("bookings/<int:booking_id>/payments/", PaymentApi.as_view(), name="api-booking-payments"),
    path("bookings/<int:booking_id>/cancel/", CancelApi.as_view(), name="api-booking-cancel"),
    path("bookings/<int:booking_id>/reschedule/", RescheduleApi.as_view(), name="api-booking-reschedule"),
    path("sessions/<int:session_id>/waitlist/", WaitlistApi.as_view(), name="api-waitlist"),
    path("staff/sessions/<int:session_id>/stop/", StaffStopSessionApi.as_view(), name="api-session-stop"),
    path("staff/slots/<int:slot_id>/extra/", StaffExtraNumbersApi.as_view(), name="api-slot-extra"),
    path("staff/bookings/<int:booking_id>/check-in/", StaffCheckInApi.as_view(), name="api-check-in"),
    path(
        "staff/bookings/<int:booking_id>/desk-payment/",
        StaffDeskPaymentApi.as_view(),
        name="api-desk-payment",
    ),
]
