"""API for "my messages": the messages the platform sent to the signed-in patient account."""

from __future__ import annotations

from typing import cast

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from medcard import selectors, services
from medcard.api import IsPatientAccount
from medcard.models import User


class _MessageOut(serializers.Serializer):
    class Meta:
        ref_name = "InboxMessage"

    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="booked, cancelled, refunded, reminder, screening_approved, ...")
    title = serializers.CharField()
    text = serializers.CharField(help_text="As sent (Simplified Chinese), the patient's name masked.")
    booking_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class MessageListApi(APIView):
    permission_classes = (IsPatientAccount,)

    class Pagination(PageNumberPagination):
        page_size = 50

    @extend_schema(
        parameters=[OpenApiParameter("page", int, description="Page number, 1 (newest) by default.")],
        responses=inline_serializer(
            "InboxMessagePage",
            {
                "count": serializers.IntegerField(),
                "unread": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": _MessageOut(many=True),
            },
        ),
        summary="My messages, newest first, 50 a page (reading them marks nothing read)",
    )
    def get(self, request: Request) -> Response:
        account = cast(User, request.user)
        paginator = self.Pagination()
        rows = paginator.paginate_queryset(
            selectors.messages_for_account(account=account), request, view=self
        )
        response = paginator.get_paginated_response(_MessageOut(rows, many=True).data)
        response.data["unread"] = selectors.messages_unread_count(account=account)
        return response


class MessageReadApi(APIView):
    permission_classes = (IsPatientAccount,)

    @extend_schema(request=None, responses=_MessageOut, summary="Mark one of my messages read")
    def post(self, request: Request, message_id: int) -> Response:
        account = cast(User, request.user)
        message = selectors.message_for_account(account=account, message_id=message_id)  # 404 for others
        services.messages_mark_read(account_id=account.pk, message_ids=[message.pk])
        message.refresh_from_db()
        return Response(_MessageOut(message).data)


urlpatterns = [
    path("messages/", MessageListApi.as_view(), name="api-messages"),
    path("messages/<int:message_id>/read/", MessageReadApi.as_view(), name="api-message-read"),
]
