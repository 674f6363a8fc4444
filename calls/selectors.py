from typing import Any

import django_filters
from django.db.models import Prefetch, QuerySet

from calls.models import Call, CallEvent, Outcome
from calls.redaction import Policy
from tenants.api.filters import BooleanFilter, IsoDateTimeFilter
from tenants.rls import tenant_lookup

AWAITING_REDACTION = "[awaiting redaction]"
PRIVATE_KINDS = (CallEvent.Kind.TRANSCRIPT, CallEvent.Kind.TOOL_CALL)


def call_by_carrier_id(carrier: str, carrier_call_id: str) -> Call | None:
    """The call a carrier's callback names (any tenant: callbacks arrive before it is known)."""
    with tenant_lookup("the call a carrier's callback names"):
        return (
            Call.all_tenants.select_related("tenant", "phone_number__carrier_account")
            .filter(carrier=carrier, carrier_call_id=carrier_call_id)
            .first()
        )


def awaiting_redaction(call: Call) -> bool:
    """Until the post-call pipeline has redacted a call, what was said (and sent to tools) is
    not shown: the redacted form is the only one anybody reads."""
    return call.redacted_at is None and Policy.of(call.version and call.version.redaction).active


def visible_payload(event: CallEvent, hidden: bool) -> dict[str, Any]:
    if not hidden or event.kind not in PRIVATE_KINDS:
        return event.payload
    if event.kind == CallEvent.Kind.TRANSCRIPT:
        return {"speaker": event.payload.get("speaker"), "text": AWAITING_REDACTION}
    kept = ("name", "call_id", "ok", "duration_ms")
    return {**{k: event.payload.get(k) for k in kept}, "redaction": "pending"}


def transcript(call: Call) -> list[dict[str, Any]]:
    """The conversation as turns: who spoke, what was said (redacted), when."""
    events = CallEvent.objects.for_tenant(call.tenant).filter(
        call=call, kind=CallEvent.Kind.TRANSCRIPT
    )
    hidden = awaiting_redaction(call)
    return [
        {
            "speaker": e.payload.get("speaker"),
            "text": AWAITING_REDACTION if hidden else e.payload.get("text", ""),
            "offset_ms": e.offset_ms,
        }
        for e in events.order_by("sequence")
    ]


def with_outcome(calls: QuerySet[Call]) -> QuerySet[Call]:
    """Calls with what a list shows of each (number, agent, version, outcome) fetched at once."""
    return calls.select_related("phone_number", "agent", "version").prefetch_related(
        Prefetch("outcomes", queryset=Outcome.all_tenants.select_related("decided_by"))
    )


class CallFilter(django_filters.FilterSet):
    """How calls are searched, by the API's query parameters and the console's filter form."""

    agent = django_filters.CharFilter(field_name="agent__public_id", label="agt_…")
    version = django_filters.CharFilter(field_name="version__public_id", label="ver_…")
    number = django_filters.CharFilter(field_name="phone_number__e164", label="E.164 number called")
    caller = django_filters.CharFilter(
        field_name="caller", lookup_expr="contains", label="The caller's number, or part of it"
    )
    status = django_filters.ChoiceFilter(choices=Call.Status.choices)
    end_reason = django_filters.ChoiceFilter(choices=Call.EndReason.choices)
    outcome = django_filters.CharFilter(field_name="outcomes__label", label="outcome label")
    resolved = BooleanFilter(field_name="outcomes__resolved")
    since = IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Call
        fields = [
            "agent",
            "version",
            "number",
            "caller",
            "status",
            "end_reason",
            "outcome",
            "resolved",
            "since",
            "until",
        ]
