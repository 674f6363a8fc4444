from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from calls import lifecycle, recordings, services
from calls.models import Call, CallEvent, Erasure, Outcome
from calls.selectors import (
    CallFilter,
    awaiting_redaction,
    transcript,
    visible_payload,
    with_outcome,
)
from tenants.api.base import TenantViewSet
from tenants.api.pagination import CursorPagination


class CallOutcomeSerializer(serializers.ModelSerializer[Outcome]):
    decided_by = serializers.EmailField(
        source="decided_by.email", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Outcome
        fields = [
            "label",
            "resolved",
            "confidence",
            "rationale",
            "evidence",
            "source",
            "rule",
            "model",
            "decided_by",
            "note",
            "decided_at",
        ]


class RecordingSerializer(serializers.Serializer[Any]):
    duration_ms = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.CharField(help_text="GET it with the same credentials (needs calls:listen)")


class OutcomeInput(serializers.Serializer[Any]):
    # `label` is also an attribute of every DRF field; as a declared field it is the input's name.
    label = serializers.CharField(  # type: ignore[assignment]
        help_text="A label of the call's version's outcome taxonomy"
    )
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=2000)


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
    outcome = serializers.SerializerMethodField()
    recording = serializers.SerializerMethodField()

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
            "outcome",
            "summary",
            "extracted",
            "recording",
            "redacted_at",
            "processed_at",
            "recording_expired_at",
            "transcript_expired_at",
            "erased_at",
        ]
        extra_kwargs = {
            "recording_expired_at": {
                "help_text": "When the tenant's recording retention ended for this call and "
                "its recording (if any) was removed"
            },
            "transcript_expired_at": {
                "help_text": "When the transcript retention ended: transcript text, tool data, "
                "summary, extracted fields and the outcome's quotes were removed"
            },
            "erased_at": {
                "help_text": "When the personal data of the call's caller (or callee) was "
                "erased on request; the number reads `[erased]`"
            },
        }

    def get_transfer(self, call: Call) -> dict[str, str]:
        return {"status": call.transfer_status, "target": call.transfer_target}

    @extend_schema_field(CallOutcomeSerializer(allow_null=True))
    def get_outcome(self, call: Call) -> dict[str, Any] | None:
        outcomes = list(call.outcomes.all())  # prefetched with the page
        return CallOutcomeSerializer(outcomes[0]).data if outcomes else None

    @extend_schema_field(RecordingSerializer(allow_null=True))
    def get_recording(self, call: Call) -> dict[str, Any] | None:
        if not call.recording:
            return None
        return {
            "duration_ms": call.recording_duration_ms,
            "sha256": call.recording_sha256,
            "url": f"/v1/calls/{call.public_id}/recording",
        }


class CallEventSerializer(serializers.ModelSerializer[CallEvent]):
    payload = serializers.SerializerMethodField()

    class Meta:
        model = CallEvent
        fields = ["sequence", "offset_ms", "kind", "payload"]

    def get_payload(self, event: CallEvent) -> dict[str, Any]:
        return visible_payload(event, self.context.get("hidden", False))


class TurnSerializer(serializers.Serializer[Any]):
    speaker = serializers.ChoiceField(choices=["caller", "agent"])
    text = serializers.CharField()
    offset_ms = serializers.IntegerField()


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

    action_permissions = {
        "retag": "calls:write",
        "outcome": "calls:write",
        "recording": "calls:listen",
    }

    def scope_queryset(self, queryset: Any) -> Any:
        return with_outcome(queryset)

    @extend_schema(request=None, responses=CallSerializer)
    @action(detail=True, methods=["post"])
    def retag(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Decide the outcome again with the version's current rules and model (e.g. after the
        taxonomy changed). A human decision is replaced too; the change is audited, billed and
        sent to webhooks as `call.outcome_changed`."""
        call = self.get_object()
        services.outcome_retag(call=call, actor=self.actor)
        return Response(CallSerializer(self.get_object()).data)

    @extend_schema(request=OutcomeInput, responses=CallSerializer)
    @action(detail=True, methods=["put"])
    def outcome(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Set the outcome by hand (provenance `human`). Within the tenant's dispute window a
        change between resolved and not resolved changes the bill (a reversal, never a
        deletion); after it, the bill stands."""
        data = OutcomeInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.outcome_set(call=self.get_object(), actor=self.actor, **data.validated_data)
        return Response(CallSerializer(self.get_object()).data)

    @extend_schema(responses={(200, "audio/wav"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def recording(self, request: Request, *args: Any, **kwargs: Any) -> FileResponse:
        """The call's recording: a 16-bit 8 kHz stereo WAV, caller left, agent right."""
        return recordings.download(self.get_object())

    @extend_schema(responses=CallEventSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=EventPagination)
    def events(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Everything that happened, in order: transcript turns, tool calls with arguments,
        results and timing, barge-ins, DTMF, transfer steps, errors, and each turn's latency
        (caller stopped speaking to the first agent audio sent to the carrier)."""
        call = self.get_object()
        events = CallEvent.objects.for_tenant(self.tenant).filter(call=call)
        paginator = EventPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        context = {"hidden": awaiting_redaction(call)}
        return paginator.get_paginated_response(
            CallEventSerializer(page, many=True, context=context).data
        )

    @extend_schema(responses=TurnSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def transcript(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(TurnSerializer(transcript(self.get_object()), many=True).data)


# --- Erasures ---------------------------------------------------------------------------------


class ErasureCountsSerializer(serializers.Serializer[Any]):
    calls = serializers.IntegerField(
        default=0, help_text="Calls where the number was the caller or the callee"
    )
    recordings = serializers.IntegerField(default=0, help_text="Recordings deleted (files too)")
    transcript_turns = serializers.IntegerField(default=0)
    tool_calls = serializers.IntegerField(
        default=0, help_text="Tool calls whose arguments, results and errors were removed"
    )
    keypad_entries = serializers.IntegerField(default=0, help_text="DTMF digits removed")
    summaries = serializers.IntegerField(
        default=0, help_text="Calls whose summary and extracted fields were removed"
    )
    outcomes = serializers.IntegerField(
        default=0, help_text="Outcomes whose quotes or written rationale were removed"
    )
    webhook_bodies = serializers.IntegerField(
        default=0, help_text="Webhook deliveries about the calls whose bodies were removed"
    )
    stored_responses = serializers.IntegerField(
        default=0, help_text="Stored idempotent API responses that mentioned the calls"
    )


class RequesterSerializer(serializers.Serializer[Erasure]):
    type = serializers.ChoiceField(
        choices=["user", "api_key", "system"], source="requested_by_type"
    )
    id = serializers.CharField(source="requested_by_id")
    label = serializers.CharField(source="requested_by_label")  # type: ignore[assignment]


class ErasureSerializer(serializers.ModelSerializer[Erasure]):
    id = serializers.CharField(source="public_id", read_only=True)
    requested_by = RequesterSerializer(source="*", read_only=True)
    counts = ErasureCountsSerializer(read_only=True)

    class Meta:
        model = Erasure
        fields = ["id", "requested_by", "counts", "created_at"]


class ErasureInput(serializers.Serializer[Any]):
    phone_number = serializers.CharField(
        max_length=32,
        help_text="The caller's (or callee's) number in E.164 form, e.g. +14155550123",
    )


class ErasureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Erasures of a phone number's personal data, newest first. The number is never stored or
    shown: `?phone_number=` finds the erasures of a number by its keyed hash."""

    model = Erasure
    permission_family = "privacy"
    serializer_class = ErasureSerializer
    http_method_names = ["get", "post", "head", "options"]

    def scope_queryset(self, queryset: Any) -> Any:
        number = self.request.query_params.get("phone_number")
        if number is not None and self.action == "list":
            hashed = lifecycle.number_hash(self.tenant, lifecycle.clean_number(number))
            queryset = queryset.filter(number_hash=hashed)
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "phone_number",
                str,
                pattern=r"^\+[1-9]\d{6,14}$",
                description="Only the erasures of this E.164 number",
            )
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ErasureInput, responses={201: ErasureSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Erase the personal data of every call where this number was the caller or the
        callee: transcript text, tool data, keypad digits, summaries, extracted fields, the
        outcome's quotes and written rationale, recordings (the files too), webhook delivery
        bodies and stored responses about those calls, and the number itself on each call.
        Outcomes' labels, durations and billing stay. 409 `call_in_progress` while a call of
        the number is live or being processed; the erasure is all or nothing."""
        data = ErasureInput(data=request.data)
        data.is_valid(raise_exception=True)
        erasure = lifecycle.erasure_create(
            tenant=self.tenant, actor=self.actor, phone_number=data.validated_data["phone_number"]
        )
        return Response(ErasureSerializer(erasure).data, status=status.HTTP_201_CREATED)
