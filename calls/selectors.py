from typing import Any

from calls.models import Call, CallEvent


def call_by_carrier_id(carrier: str, carrier_call_id: str) -> Call | None:
    """The call a carrier's callback names (any tenant: callbacks arrive before it is known)."""
    return (
        Call.all_tenants.select_related("tenant", "phone_number__carrier_account")
        .filter(carrier=carrier, carrier_call_id=carrier_call_id)
        .first()
    )


def transcript(call: Call) -> list[dict[str, Any]]:
    """The conversation as turns: who spoke, what was said, when."""
    events = CallEvent.objects.for_tenant(call.tenant).filter(
        call=call, kind=CallEvent.Kind.TRANSCRIPT
    )
    return [
        {
            "speaker": e.payload.get("speaker"),
            "text": e.payload.get("text", ""),
            "offset_ms": e.offset_ms,
        }
        for e in events.order_by("sequence")
    ]
