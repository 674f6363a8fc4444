"""Calls that go wrong: the model drops, the caller drops, the account is full, and hostile or
broken input. Every call still ends exactly once, and other calls carry on."""

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from django.core import signing
from websockets.asyncio.client import connect

from agents.models import CarrierAccount, TrafficAllocation
from calls.models import Call
from calls.services import HEARTBEAT_TIMEOUT, STREAM_WAIT, calls_sweep
from tenants.models import AuditEvent, Tenant
from tests import factories
from tests.fakes.twilio import FakeTwilio
from tests.workers.conftest import Simulator, phone_agent
from tests.workers.test_media_stream import events, place_call, said, the_call
from workers import twilio
from workers.caller import Caller, Step, sign
from workers.twilio import signing_token


def test_a_lost_model_reconnects_and_the_conversation_continues(
    asgi_server: str, simulator: Simulator
) -> None:
    number, _ = phone_agent()

    async def script() -> Any:
        caller = Caller(
            base_url=asgi_server,
            number=number.e164,
            signing_token=signing_token(number.carrier_account),
            pace=0.2,
        )
        task = asyncio.ensure_future(
            caller.run(
                [
                    Step("wait_for_agent"),
                    Step("say", "Hello there"),
                    Step("wait_for_agent"),
                    Step("wait", seconds=1.5),
                    Step("say", "Are you still with me"),
                    Step("wait_for_agent"),
                ]
            )
        )
        while len([line for line in caller.report.lines if line.speaker == "agent"]) < 2:
            await asyncio.sleep(0.05)
        simulator.run(simulator.sim.drop_all())  # the model's network goes away
        return await task

    report = asyncio.run(script())
    assert said(report, "agent")[-1] == "You said: Are you still with me How else can I help?"
    call = the_call(report)
    notices = [e["message"] for e in events(call, "notice")]
    assert "model reconnected; conversation re-seeded" in notices
    # The new session was told what had been said so far.
    reseeded = [
        e["item"]["content"][0]["text"]
        for s in simulator.sim.sessions[1:]
        for e in s.received
        if e["type"] == "conversation.item.create"
    ]
    assert "Hello there" in reseeded
    assert call.status == "completed"


def test_a_model_that_stays_gone_ends_the_call_with_an_apology(
    asgi_server: str, simulator: Simulator, fake_twilio: FakeTwilio
) -> None:
    account = factories.CarrierAccountFactory(
        kind=CarrierAccount.Kind.TWILIO,
        config={"account_sid": fake_twilio.account_sid},
        secrets={"auth_token": fake_twilio.auth_token},
    )
    number, _ = phone_agent(account=account, fallback="+14155550111")

    async def script() -> Any:
        caller = Caller(
            base_url=asgi_server, number=number.e164, signing_token=fake_twilio.auth_token, pace=0.2
        )
        task = asyncio.ensure_future(
            caller.run([Step("wait_for_agent"), Step("wait_for_hangup", seconds=10)])
        )
        while not caller.report.lines:
            await asyncio.sleep(0.05)
        simulator.sim.refuse_connections = 10
        simulator.run(simulator.sim.drop_all())
        return await task

    report = asyncio.run(script())
    assert report.closed_by == "server"
    call = the_call(report)
    assert (call.status, call.end_reason) == ("failed", "model_error")
    twiml = fake_twilio.call_updates(report.call_sid)[0]["Twiml"][0]
    assert "<Say>We&apos;re sorry" in twiml or "<Say>We're sorry" in twiml
    assert "<Dial>+14155550111</Dial>" in twiml
    assert call.transfer_target == "+14155550111"


def test_when_the_caller_drops_the_model_socket_closes_within_two_seconds(
    asgi_server: str, simulator: Simulator
) -> None:
    number, _ = phone_agent()

    async def script() -> Any:
        caller = Caller(
            base_url=asgi_server,
            number=number.e164,
            signing_token=signing_token(number.carrier_account),
            pace=0.2,
        )
        url = await caller.dial()
        assert url is not None
        target = asgi_server.replace("http", "ws") + "/carriers/twilio/media"
        async with connect(
            target, additional_headers={"X-Twilio-Signature": sign(caller.token, url, {})}
        ) as ws:
            await ws.send(
                json.dumps(
                    {
                        "event": "start",
                        "streamSid": "MZ1",
                        "start": {
                            "streamSid": "MZ1",
                            "callSid": caller.report.call_sid,
                            "customParameters": {"token": caller._stream_token},
                        },
                    }
                )
            )
            await ws.recv()  # the greeting starts
            ws.transport.abort()  # the line drops: no stop message, no close frame
        dropped = time.monotonic()
        while not simulator.sim.sessions[0].connection.close_code:
            assert time.monotonic() - dropped < 2.0, "the model socket stayed open"
            await asyncio.sleep(0.02)
        return caller.report

    report = asyncio.run(script())
    call = the_call(report)
    assert (call.status, call.end_reason) == ("completed", "caller_hangup")


def test_an_unsigned_webhook_is_refused_and_audited(asgi_server: str) -> None:
    number, _ = phone_agent()
    response = httpx.post(
        asgi_server + "/carriers/twilio/voice",
        data={"CallSid": "CA" + "1" * 32, "From": "+15550001111", "To": number.e164},
        headers={"X-Twilio-Signature": "forged"},
    )
    assert response.status_code == 403
    assert not Call.all_tenants.filter(carrier_call_id="CA" + "1" * 32).exists()
    event = AuditEvent.all_tenants.get(tenant=number.tenant, action="carrier.signature_rejected")
    assert event.target_id == number.public_id


def _stream(asgi_server: str, frames: list[str], signature: str) -> list[Any]:
    async def run() -> list[Any]:
        received = []
        target = asgi_server.replace("http", "ws") + "/carriers/twilio/media"
        async with connect(target, additional_headers={"X-Twilio-Signature": signature}) as ws:
            for frame in frames:
                await ws.send(frame)
            try:
                while True:
                    received.append(await asyncio.wait_for(ws.recv(), 3))
            except Exception as exc:
                received.append(type(exc).__name__)
        return received

    return asyncio.run(run())


def _start(call_sid: str, token: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "streamSid": "MZ1",
            "start": {
                "streamSid": "MZ1",
                "callSid": call_sid,
                "customParameters": {"token": token},
            },
        }
    )


def test_forged_expired_or_misused_tokens_close_the_stream(
    asgi_server: str, simulator: Simulator
) -> None:
    number, _ = phone_agent()
    caller = Caller(
        base_url=asgi_server,
        number=number.e164,
        signing_token=signing_token(number.carrier_account),
    )
    url = asyncio.run(caller.dial())
    assert url is not None
    good_signature = sign(caller.token, url, {})
    call = Call.all_tenants.get(carrier_call_id=caller.report.call_sid)
    expired = signing.dumps(
        {"call": call.public_id, "tenant": call.tenant.public_id}, salt=twilio.TOKEN_SALT
    )
    stale = time.time() - twilio.TOKEN_MAX_AGE - 5

    def expired_token() -> str:
        signer = signing.TimestampSigner(salt=twilio.TOKEN_SALT)
        signer.timestamp = lambda: signing.b62_encode(int(stale))
        return signer.sign_object({"call": call.public_id, "tenant": call.tenant.public_id})

    for token, signature in (
        (expired + "x", good_signature),
        (expired_token(), good_signature),
        (caller._stream_token, "not-the-signature"),
    ):
        received = _stream(asgi_server, [_start(caller.report.call_sid, token)], signature)
        assert received[-1] == "ConnectionClosedOK", received
        assert not any(isinstance(r, str) and '"media"' in r for r in received)
    call.refresh_from_db()
    assert call.status == "ringing"  # nobody got to talk on it
    assert AuditEvent.all_tenants.filter(
        action="carrier.signature_rejected", tenant=call.tenant
    ).exists()
    # The token names one call: it opens no other, in this tenant or another.
    other_tenants_number, _ = phone_agent()
    for other_number in (number, other_tenants_number):
        other = Caller(
            base_url=asgi_server,
            number=other_number.e164,
            signing_token=signing_token(other_number.carrier_account),
        )
        asyncio.run(other.dial())
        received = _stream(
            asgi_server, [_start(other.report.call_sid, caller._stream_token)], good_signature
        )
        assert received[-1] == "ConnectionClosedOK"
        assert not any(isinstance(r, str) and '"media"' in r for r in received)
        other_call = Call.all_tenants.get(carrier_call_id=other.report.call_sid)
        assert other_call.status == "ringing"


def test_garbage_on_one_call_leaves_it_and_others_working(
    asgi_server: str, simulator: Simulator
) -> None:
    number, _ = phone_agent()

    async def both() -> Any:
        noisy = Caller(
            base_url=asgi_server,
            number=number.e164,
            signing_token=signing_token(number.carrier_account),
            pace=0.2,
        )
        quiet = Caller(
            base_url=asgi_server,
            number=number.e164,
            signing_token=signing_token(number.carrier_account),
            pace=0.2,
            caller_id="+15005550007",
        )
        original = noisy._send_frames

        async def with_garbage(ws: Any, frames: list[bytes]) -> None:
            for junk in (
                "not json",
                "[1,2]",
                '{"event": "teleport"}',
                '{"event":"media","media":{"payload":"\\u0000"}}',
                '{"event":"media","streamSid":"MZ","media":{"payload":"\\"},\\"type\\":\\"x"}}',
                _start(noisy.report.call_sid, "second-start"),
                '{"event":"mark","mark":{"name":"nope"}}',
                '{"event":"dtmf","dtmf":{"digit":"55"}}',
            ):
                await ws.send(junk)
            await original(ws, frames)

        noisy._send_frames = with_garbage
        script = [Step("wait_for_agent"), Step("say", "Hello there"), Step("wait_for_agent")]
        return await asyncio.gather(noisy.run(script), quiet.run(script))

    noisy, quiet = asyncio.run(both())
    for report in (noisy, quiet):
        assert said(report, "agent")[-1] == "You said: Hello there How else can I help?"
        assert the_call(report).status == "completed"


def test_a_full_account_apologises_or_sends_callers_to_the_fallback(
    asgi_server: str, simulator: Simulator
) -> None:
    number, _ = phone_agent(fallback="+14155550122")
    Tenant.objects.filter(pk=number.tenant_id).update(max_concurrent_calls=1)
    first = Caller(
        base_url=asgi_server,
        number=number.e164,
        signing_token=signing_token(number.carrier_account),
    )
    assert asyncio.run(first.dial()) is not None
    second = Caller(
        base_url=asgi_server,
        number=number.e164,
        signing_token=signing_token(number.carrier_account),
    )
    assert asyncio.run(second.dial()) is None
    assert "<Say>We're sorry, all our lines are busy" in second.report.twiml.replace("&apos;", "'")
    assert "<Dial>+14155550122</Dial>" in second.report.twiml
    refused = Call.all_tenants.get(carrier_call_id=second.report.call_sid)
    assert (refused.status, refused.end_reason) == ("failed", "over_capacity")

    # An agent with nothing published sends its callers to the fallback number too.
    TrafficAllocation.objects.for_tenant(number.tenant).filter(version__agent=number.agent).delete()
    Tenant.objects.filter(pk=number.tenant_id).update(max_concurrent_calls=10)
    third = Caller(
        base_url=asgi_server,
        number=number.e164,
        signing_token=signing_token(number.carrier_account),
    )
    assert asyncio.run(third.dial()) is None
    assert "<Dial>+14155550122</Dial>" in third.report.twiml
    unanswered = Call.all_tenants.get(carrier_call_id=third.report.call_sid)
    assert unanswered.end_reason == "no_agent"


def test_a_retried_webhook_is_the_same_call(asgi_server: str, simulator: Simulator) -> None:
    number, _ = phone_agent()
    caller = Caller(
        base_url=asgi_server,
        number=number.e164,
        signing_token=signing_token(number.carrier_account),
    )
    asyncio.run(caller.dial())
    asyncio.run(caller.dial())
    assert Call.all_tenants.filter(carrier_call_id=caller.report.call_sid).count() == 1


def test_status_callbacks_end_the_call(asgi_server: str, simulator: Simulator) -> None:
    number, _ = phone_agent()
    caller = Caller(
        base_url=asgi_server,
        number=number.e164,
        signing_token=signing_token(number.carrier_account),
    )
    asyncio.run(caller.dial())
    path = "/carriers/twilio/status"
    for status in ("in-progress", "completed"):
        params = {"CallSid": caller.report.call_sid, "CallStatus": status, "CallDuration": "7"}
        response = httpx.post(
            asgi_server + path,
            data=params,
            headers={"X-Twilio-Signature": sign(caller.token, asgi_server + path, params)},
        )
        assert response.status_code == 204
    call = Call.all_tenants.get(carrier_call_id=caller.report.call_sid)
    assert (call.status, call.end_reason) == ("completed", "caller_hangup")
    assert call.answered_at is not None


@pytest.mark.django_db
def test_the_sweeper_ends_calls_nobody_is_running() -> None:
    from django.utils import timezone

    number, _ = phone_agent()
    now = timezone.now()
    lost = factories.CallFactory(
        phone_number=number, status="in_progress", heartbeat_at=now - HEARTBEAT_TIMEOUT * 2
    )
    never = factories.CallFactory(
        phone_number=number, status="ringing", started_at=now - STREAM_WAIT * 2
    )
    fine = factories.CallFactory(phone_number=number, status="in_progress", heartbeat_at=now)
    assert calls_sweep() == 2
    for call, expected in (
        (lost, ("failed", "worker_lost")),
        (never, ("failed", "stream_never_connected")),
        (fine, ("in_progress", "")),
    ):
        call.refresh_from_db()
        assert (call.status, call.end_reason) == expected


def test_the_sandbox_model_runs_in_process_without_an_api_key(
    asgi_server: str, simulator: Simulator, settings: Any
) -> None:
    settings.OPENAI_API_KEY = ""
    number, _ = phone_agent()
    report = place_call(
        asgi_server, number, [Step("wait_for_agent"), Step("say", "Hello"), Step("wait_for_agent")]
    )
    assert said(report, "agent")[-1] == "You said: Hello How else can I help?"
    assert the_call(report).sandbox is True
    assert not simulator.sim.sessions  # the test's simulator was not used
