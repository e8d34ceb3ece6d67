"""API for accounts: who am I."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from medcard import selectors
from medcard.models import User


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Me"  # the schema's component name; every API's nested serializer is "Output"

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


urlpatterns = [path("me/", MeApi.as_view(), name="api-me")]
