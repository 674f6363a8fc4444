"""Calls end to end over real sockets: the server on a free port, the Realtime simulator as the
model, and a simulated caller speaking Twilio's Media Streams protocol."""

import asyncio
import time
from typing import Any

from agents.models import Tool
from agents.services import tools as tool_services
from calls.models import Call, CallEvent
from calls.services import call_finalize
from tenants.access import Actor
from tests import factories
from tests.fakes.server import FakeServer, Reply
from tests.workers.conftest import GREETING, Simulator, phone_agent
from workers.caller import Caller, CallReport, Step
from workers.twilio import signing_token

PACE = 0.2  # the caller plays and speaks five times faster than real time


def caller_for(server: str, number: Any, pace: float = PACE) -> Caller:
    """A simulated Twilio caller phoning `number` on `server`, signing as its carrier account."""
    return Caller(
        base_url=server,
        number=number.e164,
        signing_token=signing_token(number.carrier_account),
        pace=pace,
    )


def place_call(server: str, number: Any, script: list[Step], pace: float = PACE) -> CallReport:
    return asyncio.run(caller_for(server, number, pace).run(script))


def the_call(report: CallReport) -> Call:
    call = Call.all_tenants.get(carrier_call_id=report.call_sid)
    deadline = time.monotonic() + 5
    while call.ended_at is None and time.monotonic() < deadline:  # the server finishes ending it
        time.sleep(0.05)
        call.refresh_from_db()
    return call


def events(call: Call, kind: str | None = None) -> list[dict[str, Any]]:
    rows = CallEvent.all_tenants.filter(call=call).order_by("sequence")
    return [{"kind": e.kind, **e.payload} for e in rows if kind is None or e.kind == kind]


def said(report: CallReport, speaker: str) -> list[str]:
    return [line.text for line in report.lines if line.speaker == speaker]


def test_a_conversation_with_a_tool_from_greeting_to_hang_up(
    asgi_server: str, simulator: Simulator
) -> None:
    number, version = phone_agent()
    report = place_call(
        asgi_server,
        number,
        [
            Step("wait_for_agent"),
            Step("say", "What time do you open on Saturday?"),
            Step("wait_for_agent"),
            Step("say", "Thanks, goodbye"),
            Step("wait_for_hangup", seconds=10),
        ],
    )
    agent = said(report, "agent")
    assert agent[0] == GREETING
    assert agent[1] == "Here is what I found: We open at nine on Saturday mornings."
    assert agent[-1] == "Thank you for calling. Goodbye!"
    assert report.closed_by == "server"  # the agent hung up once the goodbye was heard

    call = the_call(report)
    assert (call.status, call.end_reason, call.version_id) == (
        "completed",
        "agent_hangup",
        version.pk,
    )
    assert call.answered_at is not None and call.duration_seconds is not None
    assert call.usage["total_tokens"] > 0
    assert not call.sandbox
    turns = [(e["speaker"], e["text"]) for e in events(call, "transcript")]
    assert turns[:3] == [
        ("agent", GREETING),
        ("caller", "What time do you open on Saturday?"),
        ("agent", "Here is what I found: We open at nine on Saturday mornings."),
    ]
    assert not events(call, "barge_in")  # the caller only spoke once the agent had finished
    search = events(call, "tool_call")[0]
    assert (search["name"], search["arguments"], search["ok"]) == (
        "search_faq",
        {"query": "What time do you open on Saturday?"},
        True,
    )
    assert search["result"] == [
        {"document": "Hours", "text": "We open at nine on Saturday mornings."}
    ]
    assert search["duration_ms"] >= 0
    latencies = events(call, "latency")
    assert len(latencies) >= 2 and all(0 <= e["ms"] < 2000 for e in latencies)
    # The model was configured from the version: mu-law both ways, its voice, tools, transcription.
    session = simulator.sim.received("session.update")[0]["session"]
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": version.voice}
    assert session["instructions"] == version.instructions
    assert {t["name"] for t in session["tools"]} == {"search_faq", "transfer", "end_call"}
    transfer = next(t for t in session["tools"] if t["name"] == "transfer")
    assert transfer["parameters"]["properties"]["target"]["enum"] == ["front desk"]
    # Ending is final: nothing can end it again.
    assert call_finalize(call, status="failed", end_reason="worker_lost") is False


def test_barge_in_clears_the_carrier_and_truncates_at_what_was_heard(
    asgi_server: str, simulator: Simulator
) -> None:
    long_greeting = "Welcome to Harbour Dental. " * 6
    number, _ = phone_agent(greeting=long_greeting.strip())
    report = place_call(
        asgi_server,
        number,
        [
            Step("wait", seconds=1.5),  # the greeting is still playing…
            Step("say_now", "Sorry, can I ask something?"),  # …when the caller speaks over it
            Step("wait_for_agent"),
        ],
        pace=0.5,
    )
    assert report.clears == 1
    truncate = simulator.sim.received("conversation.item.truncate")
    assert len(truncate) == 1
    call = the_call(report)
    barge_in = events(call, "barge_in")[0]
    assert barge_in["played_ms"] == truncate[0]["audio_end_ms"]
    # What the caller heard before speaking: more than nothing, less than the whole greeting.
    greeting_ms = len(long_greeting.strip()) * 60
    assert 500 <= barge_in["played_ms"] < greeting_ms
    assert not [
        e for e in events(call, "error") if e.get("source") == "model"
    ]  # the model accepted it


def test_keypad_digits_reach_the_model(asgi_server: str, simulator: Simulator) -> None:
    number, _ = phone_agent()
    report = place_call(
        asgi_server, number, [Step("wait_for_agent"), Step("dtmf", "5"), Step("wait_for_agent")]
    )
    assert said(report, "agent")[-1] == "You pressed 5."
    call = the_call(report)
    assert events(call, "dtmf") == [{"kind": "dtmf", "digit": "5"}]
    created = simulator.sim.received("conversation.item.create")
    assert created[0]["item"]["content"][0]["text"] == "The caller pressed 5 on the keypad."


def test_a_sandbox_transfer_goes_through(asgi_server: str, simulator: Simulator) -> None:
    number, _ = phone_agent()
    report = place_call(
        asgi_server,
        number,
        [
            Step("wait_for_agent"),
            Step("say", "Can I speak to a person please?"),
            Step("wait_for_hangup", seconds=10),
        ],
    )
    assert said(report, "agent")[-1] == "Let me transfer you now. Please hold."
    assert report.closed_by == "server"
    call = the_call(report)
    assert (call.end_reason, call.transfer_status, call.transfer_target) == (
        "transferred",
        "bridged",
        "+14155550199",
    )
    steps = [e["state"] for e in events(call, "transfer")]
    assert steps == ["initiated", "ringing", "bridged"]
    tool = events(call, "tool_call")[0]
    assert tool["arguments"]["target"] == "front desk"


def test_a_slow_tool_becomes_an_error_the_agent_speaks_about(
    asgi_server: str, simulator: Simulator, settings: Any
) -> None:
    orders = FakeServer()

    def slow(request: Any, match: Any) -> Reply:
        time.sleep(3)  # well past the tool's one-second timeout
        return Reply(200, {"status": "shipped"})

    orders.route("GET", r"/orders/(?P<id>\w+)", slow)
    orders.start()
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    account = factories.CarrierAccountFactory()
    lookup = tool_services.tool_create(
        tenant=account.tenant,
        actor=Actor.system("tests"),
        name="order_status",
        kind=Tool.Kind.HTTP,
        description="Where is an order?",
        parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
        config={"url": orders.url + "/orders/{order_id}", "timeout_seconds": 1},
    )
    number, _ = phone_agent(account=account, extra_tools=(lookup,))
    try:
        report = place_call(
            asgi_server,
            number,
            [
                Step("wait_for_agent"),
                Step("say", 'Where is my order? [[order_status {"order_id": "A17"}]]'),
                Step("wait_for_agent"),  # the answer comes after the tool's timeout
                Step("say", "Thanks, goodbye"),
                Step("wait_for_hangup", seconds=10),
            ],
        )
    finally:
        orders.stop()
    assert "I'm sorry, I couldn't get that information right now." in said(report, "agent")
    assert report.closed_by == "server"  # the call went on, and ended normally
    call = the_call(report)
    failed = events(call, "tool_call")[0]
    assert (failed["name"], failed["ok"], failed["arguments"]) == (
        "order_status",
        False,
        {"order_id": "A17"},
    )
    assert failed["error"] and 900 <= failed["duration_ms"] < 3000
    assert call.end_reason == "agent_hangup"
