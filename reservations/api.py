"""Public API for departments."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reservations import selectors
from reservations.discovery_urls import api_urlpatterns as discovery_api_urlpatterns
from reservations.models import Department


class DepartmentListApi(APIView):
    permission_classes = (AllowAny,)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Department"  # the schema's component name; every API's nested serializer is "Output"

        code = serializers.CharField()
        name = serializers.CharField(help_text="In the language of the request.")
        name_zh = serializers.CharField()
        name_en = serializers.CharField()
        kind = serializers.ChoiceField(choices=Department.Kind.choices)
        doctor_count = serializers.IntegerField()

    @extend_schema(
        responses=OutputSerializer(many=True),
        parameters=[OpenApiParameter("kind", str, enum=[k for k, _ in Department.Kind.choices])],
        summary="Departments, in display order",
    )
    def get(self, request: Request) -> Response:
        kind = request.query_params.get("kind")
        if kind is not None and kind not in Department.Kind.values:
            raise ValidationError({"kind": [f"Choose one of: {', '.join(Department.Kind.values)}."]})
        departments = selectors.department_list(kind=kind)
        return Response(self.OutputSerializer(departments, many=True).data)


urlpatterns = [
    path("departments/", DepartmentListApi.as_view(), name="api-departments"),
    path("", include("reservations.booking_api")),
    *discovery_api_urlpatterns,
]
