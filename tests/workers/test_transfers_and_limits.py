import asyncio
from typing import Any

import httpx

from agents.models import AgentVersion, CarrierAccount
from calls.models import Call
from tests import factories
from tests.fakes.twilio import FakeTwilio
from tests.workers.conftest import Simulator, phone_agent
from tests.workers.test_media_stream import events, place_call, said, the_call
from workers.caller import Caller, Step, sign


def twilio_account(fake: FakeTwilio) -> CarrierAccount:
    return factories.CarrierAccountFactory(
        kind=CarrierAccount.Kind.TWILIO,
        config={"account_sid": fake.account_sid},
        secrets={"auth_token": fake.auth_token},
    )


def test_a_twilio_transfer_redirects_the_live_call_and_follows_the_dialled_leg(
    asgi_server: str, simulator: Simulator, fake_twilio: FakeTwilio
) -> None:
    number, _ = phone_agent(account=twilio_account(fake_twilio))
    caller = Caller(
        base_url=asgi_server, number=number.e164, signing_token=fake_twilio.auth_token, pace=0.2
    )
    report = asyncio.run(
        caller.run(
            [
                Step("wait_for_agent"),
                Step("say", "Can I speak to a person please?"),
                Step("wait_for_agent"),
                Step("wait", seconds=1),  # then Twilio, having been redirected, stops the stream
            ]
        )
    )
    assert said(report, "agent")[-1] == "Let me transfer you now. Please hold."
    twiml = fake_twilio.call_updates(report.call_sid)[0]["Twiml"][0]
    call = the_call(report)
    assert f'action="{asgi_server}/carriers/twilio/dial-done?call={call.public_id}"' in twiml
    assert ">+14155550199</Number>" in twiml
    assert (
        f'statusCallback="{asgi_server}/carriers/twilio/transfer-status?call={call.public_id}"'
        in twiml
    )
    assert (call.end_reason, call.transfer_status) == ("transferred", "initiated")

    def callback(path: str, params: dict[str, str]) -> httpx.Response:
        url = f"{asgi_server}{path}?call={call.public_id}"
        return httpx.post(
            url,
            data=params,
            headers={"X-Twilio-Signature": sign(fake_twilio.auth_token, url, params)},
        )

    assert (
        callback("/carriers/twilio/transfer-status", {"CallStatus": "ringing"}).status_code == 204
    )
    assert (
        callback("/carriers/twilio/transfer-status", {"CallStatus": "in-progress"}).status_code
        == 204
    )
    done = callback(
        "/carriers/twilio/dial-done", {"DialCallStatus": "completed", "DialCallDuration": "42"}
    )
    assert "<Hangup/>" in done.text
    forged = httpx.post(
        f"{asgi_server}/carriers/twilio/transfer-status?call={call.public_id}",
        data={"CallStatus": "failed"},
        headers={"X-Twilio-Signature": "nope"},
    )
    assert forged.status_code == 403
    call.refresh_from_db()
    assert call.transfer_status == "bridged"
    assert [e["state"] for e in events(call, "transfer")] == ["initiated", "ringing", "bridged"]


def bare_version(**fields: Any) -> Any:
    """A published version with limits below what the API allows, to see them enforced."""
    version = factories.AgentVersionFactory(
        status=AgentVersion.Status.PUBLISHED, instructions="Be brief.", **fields
    )
    factories.TrafficAllocationFactory(version=version)
    return factories.PhoneNumberFactory(
        carrier_account=factories.CarrierAccountFactory(tenant=version.tenant), agent=version.agent
    )


def test_the_longest_call_allowed_ends_with_a_goodbye(
    asgi_server: str, simulator: Simulator
) -> None:
    number = bare_version(max_call_duration_seconds=2, silence_timeout_seconds=60)
    report = place_call(asgi_server, number, [Step("wait_for_hangup", seconds=10)], pace=1.0)
    assert said(report, "agent")[-1].startswith("We have reached the time limit for this call.")
    assert report.closed_by == "server"
    assert the_call(report).end_reason == Call.EndReason.MAX_DURATION


def test_a_silent_line_is_ended(asgi_server: str, simulator: Simulator) -> None:
    number = bare_version(max_call_duration_seconds=600, silence_timeout_seconds=2, greeting="")
    report = place_call(asgi_server, number, [Step("wait_for_hangup", seconds=10)], pace=1.0)
    assert said(report, "agent") == [
        "I haven't heard anything for a while, so I'll end the call now. Goodbye."
    ]
    assert the_call(report).end_reason == Call.EndReason.SILENCE_TIMEOUT
