from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from calls.models import Call, CallEvent
from calls.selectors import transcript
from tenants.api.base import TenantViewSet
from tenants.api.pagination import CursorPagination


class CallSerializer(serializers.ModelSerializer[Call]):
    id = serializers.CharField(source="public_id", read_only=True)
    phone_number = serializers.CharField(
        source="phone_number.e164", read_only=True, allow_null=True, default=None
    )
    agent = serializers.CharField(
        source="agent.public_id", read_only=True, allow_null=True, default=None
    )
    version = serializers.CharField(
        source="version.public_id", read_only=True, allow_null=True, default=None
    )
    transfer = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id",
            "phone_number",
            "caller",
            "callee",
            "direction",
            "carrier",
            "carrier_call_id",
            "agent",
            "version",
            "sandbox",
            "status",
            "started_at",
            "answered_at",
            "ended_at",
            "end_reason",
            "duration_seconds",
            "usage",
            "transfer",
        ]

    def get_transfer(self, call: Call) -> dict[str, str]:
        return {"status": call.transfer_status, "target": call.transfer_target}


class CallEventSerializer(serializers.ModelSerializer[CallEvent]):
    class Meta:
        model = CallEvent
        fields = ["sequence", "offset_ms", "kind", "payload"]


class TurnSerializer(serializers.Serializer[Any]):
    speaker = serializers.ChoiceField(choices=["caller", "agent"])
    text = serializers.CharField()
    offset_ms = serializers.IntegerField()


class CallFilter(django_filters.FilterSet):
    agent = django_filters.CharFilter(field_name="agent__public_id", label="agt_…")
    version = django_filters.CharFilter(field_name="version__public_id", label="ver_…")
    number = django_filters.CharFilter(field_name="phone_number__e164", label="E.164 number called")
    status = django_filters.ChoiceFilter(choices=Call.Status.choices)
    end_reason = django_filters.ChoiceFilter(choices=Call.EndReason.choices)
    since = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Call
        fields = ["agent", "version", "number", "status", "end_reason", "since", "until"]


class CallPagination(CursorPagination):
    ordering = ("-started_at", "-id")


class EventPagination(CursorPagination):
    ordering = ("sequence",)
    page_size = 200
    max_page_size = 1000


class CallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Calls, newest first, with their timeline and transcript."""

    model = Call
    permission_family = "calls"
    serializer_class = CallSerializer
    filterset_class = CallFilter
    pagination_class = CallPagination

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("phone_number", "agent", "version")

    @extend_schema(responses=CallEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Everything that happened, in order: transcript turns, tool calls with arguments,
        results and timing, barge-ins, DTMF, transfer steps, errors, and each turn's latency
        (caller stopped speaking to the first agent audio sent to the carrier)."""
        call = self.get_object()
        events = CallEvent.objects.for_tenant(self.tenant).filter(call=call)
        paginator = EventPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(CallEventSerializer(page, many=True).data)

    @extend_schema(responses=TurnSerializer(many=True))
    @action(detail=True, methods=["get"])
    def transcript(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(TurnSerializer(transcript(self.get_object()), many=True).data)
