"""Public API for finding a number: department search, availability by date, a session's slices.

Open to everyone (AllowAny): the answers hold no personal data. Thin: parse the query, call a selector in
``reservations.discovery``, answer. Bad query values are a ValidationError naming the field.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.clock import local_today
from core.schema import ClockTimeField
from reservations import discovery
from reservations.models import Department, Doctor, HalfDay, Session
from reservations.schedules import booking_rule_for

FEE_FIELD: dict[str, Any] = {"max_digits": 8, "decimal_places": 2, "help_text": "Yuan, two decimals."}


class _DepartmentOut(serializers.Serializer):
    class Meta:
        ref_name = "DiscoveryDepartment"

    code = serializers.CharField()
    name = serializers.CharField(help_text="In the language of the request.")
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    kind = serializers.ChoiceField(choices=Department.Kind.choices)


class _ClinicTypeOut(serializers.Serializer):
    class Meta:
        ref_name = "DiscoveryClinicType"

    code = serializers.CharField()
    name = serializers.CharField()


class _DoctorOut(serializers.Serializer):
    class Meta:
        ref_name = "DiscoveryDoctor"

    code = serializers.CharField()
    name = serializers.CharField()
    title = serializers.ChoiceField(choices=Doctor.Title.choices)
    title_label = serializers.CharField(source="get_title_display")
    specialty = serializers.CharField()


class _SessionOut(serializers.Serializer):
    class Meta:
        ref_name = "DiscoverySession"

    id = serializers.IntegerField()
    date = serializers.DateField()
    half_day = serializers.ChoiceField(choices=HalfDay.choices)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=Session.Status.choices)
    department = _DepartmentOut()
    doctor = _DoctorOut(allow_null=True)
    room = serializers.CharField()
    clinic_type = _ClinicTypeOut()
    fee = serializers.DecimalField(**FEE_FIELD)


class DepartmentSearchApi(APIView):
    permission_classes = (AllowAny,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DiscoveryDepartmentSearchQuery"

        q = serializers.CharField(
            required=False, allow_blank=True, max_length=discovery.SEARCH_MAX_LENGTH, default=""
        )

    class OutputSerializer(_DepartmentOut):
        class Meta:
            ref_name = "DiscoveryDepartmentFound"

        pinyin_initials = serializers.CharField()
        doctor_count = serializers.IntegerField()

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Chinese or English name, or pinyin initials.")],
        responses=OutputSerializer(many=True),
        summary="Search departments by Chinese name, English name or pinyin initials (sjnk: 神经内科)",
    )
    def get(self, request: Request) -> Response:
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        departments = discovery.department_search(query=query.validated_data["q"])
        return Response(self.OutputSerializer(departments, many=True).data)


class DepartmentAvailabilityApi(APIView):
    permission_classes = (AllowAny,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DiscoveryAvailabilityQuery"

        date = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])

        def to_internal_value(self, data: Any) -> Any:
            # DRF reads "date=" as no date at all; the schema says a date or nothing, so say which it is.
            if data.get("date", None) == "":
                raise serializers.ValidationError(
                    {"date": [_("Give a date as YYYY-MM-DD, or leave it out for today.")]}
                )
            return super().to_internal_value(data)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DiscoveryAvailability"

        class DateOut(serializers.Serializer):
            class Meta:
                ref_name = "DiscoveryAvailableDate"

            date = serializers.DateField()
            remaining = serializers.IntegerField()

        class SessionOut(serializers.Serializer):
            class Meta:
                ref_name = "DiscoverySessionAvailability"

            id = serializers.IntegerField(source="session.pk")
            half_day = serializers.ChoiceField(choices=HalfDay.choices, source="session.half_day")
            starts_at = serializers.DateTimeField(source="session.starts_at")
            ends_at = serializers.DateTimeField(source="session.ends_at")
            doctor = _DoctorOut(allow_null=True)
            room = serializers.CharField()
            clinic_type = _ClinicTypeOut()
            fee = serializers.DecimalField(**FEE_FIELD)
            remaining = serializers.IntegerField(help_text="Numbers left in the whole session.")
            bookable_remaining = serializers.IntegerField(
                help_text="Numbers left in slices whose booking has not closed yet."
            )

        department = _DepartmentOut()
        date = serializers.DateField()
        dates = DateOut(many=True, help_text="Released dates from today with the numbers left on each.")
        sessions = SessionOut(many=True)
        next_release_date = serializers.DateField(help_text="The next date whose numbers are released.")
        next_release_at = serializers.DateTimeField()

    @extend_schema(
        parameters=[
            OpenApiParameter("date", OpenApiTypes.DATE, description="YYYY-MM-DD, local date; default today.")
        ],
        responses=OutputSerializer,
        summary="A department's doctors with numbers left on a date, and the dates with numbers",
    )
    def get(self, request: Request, code: str) -> Response:
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        department = discovery.department_for_code(code=code)
        if department is None:
            raise Http404
        now = timezone.now()
        on = query.validated_data.get("date") or local_today(now=now)
        rule_days = booking_rule_for(department=department).release_days_ahead
        next_release = discovery.department_next_release(department=department, now=now)
        data = {
            "department": department,
            "date": on,
            "dates": [
                {"date": day, "remaining": remaining}
                for day, remaining in discovery.available_dates(
                    department=department, now=now, days=rule_days + 1
                )
            ],
            "sessions": discovery.doctors_with_availability(department=department, on=on, now=now),
            "next_release_date": next_release.date,
            "next_release_at": next_release.release_at,
        }
        return Response(self.OutputSerializer(data).data)


class SessionSlotsApi(APIView):
    permission_classes = (AllowAny,)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DiscoverySessionSlots"

        class SlotOut(serializers.Serializer):
            class Meta:
                ref_name = "DiscoverySlot"

            id = serializers.IntegerField(source="slot.pk")
            starts_at = serializers.DateTimeField(source="slot.starts_at")
            ends_at = serializers.DateTimeField(source="slot.ends_at")
            start_local = ClockTimeField(source="starts_at_local")
            end_local = ClockTimeField(source="ends_at_local")
            remaining = serializers.IntegerField()
            bookable = serializers.BooleanField()
            booking_closes_at = serializers.DateTimeField()
            unbookable_reason = serializers.ChoiceField(
                choices=list(discovery.Unbookable.LABELS),
                allow_null=True,
                help_text="Null when bookable now.",
            )
            unbookable_label = serializers.CharField()

        session = _SessionOut()
        slots = SlotOut(many=True)

    @extend_schema(responses=OutputSerializer, summary="A session's time slices with numbers left")
    def get(self, request: Request, session_id: int) -> Response:
        session = discovery.session_with_reference(session_id=session_id)
        if session is None:
            raise Http404
        slots = discovery.session_slots(session=session, now=timezone.now())
        return Response(self.OutputSerializer({"session": session, "slots": slots}).data)


api_urlpatterns = [
    path("departments/search/", DepartmentSearchApi.as_view(), name="api-department-search"),
    path(
        "departments/<slug:code>/availability/",
        DepartmentAvailabilityApi.as_view(),
        name="api-department-availability",
    ),
    path("sessions/<int:session_id>/slots/", SessionSlotsApi.as_view(), name="api-session-slots"),
]
