"""The OpenAI SIP path: OpenAI posts a signed webhook, we accept (or reject) the call through its
REST API, and a Channels worker attaches to the call's sideband for tools and hang-ups."""

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from channels.layers import channel_layers
from channels.routing import ChannelNameRouter
from channels.worker import Worker
from django.utils import timezone

from agents.models import Agent, CarrierAccount
from calls.models import Call
from calls.services import HEARTBEAT_TIMEOUT, calls_sweep
from tenants.models import AuditEvent, Tenant
from tests import factories
from tests.fakes.openai import API_KEY, WEBHOOK_SECRET, FakeOpenAI, incoming_call, sign_webhook
from tests.workers.conftest import LoopThread, Simulator, phone_agent
from tests.workers.test_media_stream import events
from workers.views import SIDEBAND_CHANNEL


@pytest.fixture
def sip_number(fake_openai: FakeOpenAI, simulator: Simulator) -> Any:
    simulator.sim.api_key = API_KEY  # one project key serves the REST calls and the sideband
    fake_openai.on_accept = simulator.sim.accepted.__setitem__
    account = factories.CarrierAccountFactory(
        kind=CarrierAccount.Kind.OPENAI_SIP,
        secrets={"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET},
    )
    number, _ = phone_agent(account=account)
    return number


@pytest.fixture
def sideband_worker(simulator: Simulator) -> Iterator[None]:
    """`manage.py runworker call-sideband`, in a thread: the same Worker on the same channel."""
    from config.routing import channel_consumers

    thread = LoopThread()
    # A layer of its own: a layer's receive lock belongs to the event loop that first used it.
    layer = channel_layers.make_backend("default")
    worker = Worker(
        application=ChannelNameRouter(channel_consumers),
        channels=[SIDEBAND_CHANNEL],
        channel_layer=layer,
    )
    asyncio.run_coroutine_threadsafe(worker.handle(), thread.loop)
    yield

    async def stop() -> None:
        # As the process's exit would: end every task and close the connection, or Redis keeps
        # handing the channel's next message to an abandoned blocking read.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await layer.close_pools()

    thread.run(stop())
    thread.stop()


def post_webhook(server: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        server + "/carriers/openai/webhook",
        content=body,
        headers={"content-type": "application/json", **headers},
    )


def wait_for(predicate: Any, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def attach_messages() -> list[dict[str, Any]]:
    """Drain the sideband channel (no worker runs in these tests)."""

    async def drain() -> list[dict[str, Any]]:
        layer, messages = channel_layers.make_backend("default"), []
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(SIDEBAND_CHANNEL), 0.5))
            except TimeoutError:
                return messages

    return asyncio.run(drain())


def test_an_unsigned_or_stale_webhook_is_refused(
    asgi_server: str, sip_number: Any, fake_openai: FakeOpenAI
) -> None:
    body = incoming_call("rtc_unsigned", sip_number.e164)
    assert (
        post_webhook(
            asgi_server,
            body,
            {"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        ).status_code
        == 403
    )
    stale = sign_webhook(body, timestamp=int(time.time()) - 3600)
    assert post_webhook(asgi_server, body, stale).status_code == 403
    assert post_webhook(asgi_server, body, {}).status_code == 403  # headers missing
    assert not Call.all_tenants.filter(carrier_call_id="rtc_unsigned").exists()
    assert not fake_openai.actions("rtc_unsigned")
    assert (
        AuditEvent.all_tenants.filter(
            action="carrier.signature_rejected", tenant=sip_number.tenant
        ).count()
        == 3
    )


def test_a_signed_call_is_accepted_and_the_sideband_takes_it_through_a_transfer(
    asgi_server: str,
    sip_number: Any,
    fake_openai: FakeOpenAI,
    simulator: Simulator,
    sideband_worker: None,
) -> None:
    body = incoming_call("rtc_transfer", sip_number.e164, caller="+15551230000")
    assert post_webhook(asgi_server, body, sign_webhook(body)).status_code == 200
    ((action, session),) = fake_openai.actions("rtc_transfer")
    assert action == "accept"
    assert session["type"] == "realtime"
    assert session["audio"]["output"] == {"voice": "marin"}  # SIP leaves formats to the phone line
    assert {t["name"] for t in session["tools"]} == {"search_faq", "transfer", "end_call"}

    wait_for(lambda: simulator.sim.sessions and simulator.sim.sessions[0].call_id == "rtc_transfer")
    call = Call.all_tenants.get(carrier_call_id="rtc_transfer")
    wait_for(lambda: Call.all_tenants.get(pk=call.pk).status == "in_progress")
    assert (call.caller, call.carrier) == ("+15551230000", "openai_sip")
    simulator.run(simulator.sim.say_to_sideband("rtc_transfer", "Could I talk to a real person?"))
    wait_for(lambda: Call.all_tenants.get(pk=call.pk).ended_at is not None)
    call.refresh_from_db()
    assert (call.end_reason, call.transfer_status) == ("transferred", "initiated")
    assert fake_openai.actions("rtc_transfer")[-1] == ("refer", {"target_uri": "tel:+14155550199"})
    greeting = next(e["text"] for e in events(call, "transcript") if e["speaker"] == "agent")
    assert greeting.startswith("Thanks for calling")


def test_goodbye_hangs_up_through_the_api(
    asgi_server: str,
    sip_number: Any,
    fake_openai: FakeOpenAI,
    simulator: Simulator,
    sideband_worker: None,
) -> None:
    body = incoming_call("rtc_bye", sip_number.e164)
    post_webhook(asgi_server, body, sign_webhook(body))
    wait_for(
        lambda: Call.all_tenants.filter(carrier_call_id="rtc_bye", status="in_progress").exists()
    )
    simulator.run(simulator.sim.say_to_sideband("rtc_bye", "That's all, goodbye"))
    wait_for(lambda: Call.all_tenants.get(carrier_call_id="rtc_bye").ended_at is not None)
    assert fake_openai.actions("rtc_bye")[-1] == ("hangup", None)
    assert Call.all_tenants.get(carrier_call_id="rtc_bye").end_reason == "agent_hangup"


def test_a_repeated_webhook_is_a_no_op(
    asgi_server: str, sip_number: Any, fake_openai: FakeOpenAI
) -> None:
    body = incoming_call("rtc_twice", sip_number.e164)
    for _ in range(3):
        assert post_webhook(asgi_server, body, sign_webhook(body)).status_code == 200
    assert [a for a, _ in fake_openai.actions("rtc_twice")] == ["accept"]
    call = Call.all_tenants.get(carrier_call_id="rtc_twice")
    assert attach_messages() == [{"type": "sideband.attach", "call": call.public_id}]


def test_over_the_limit_the_call_is_rejected_busy(
    asgi_server: str, sip_number: Any, fake_openai: FakeOpenAI
) -> None:
    Tenant.objects.filter(pk=sip_number.tenant_id).update(max_concurrent_calls=0)
    body = incoming_call("rtc_busy", sip_number.e164)
    assert post_webhook(asgi_server, body, sign_webhook(body)).status_code == 200
    assert fake_openai.actions("rtc_busy") == [("reject", {"status_code": 486})]
    assert Call.all_tenants.get(carrier_call_id="rtc_busy").end_reason == "over_capacity"


def test_a_caller_who_hung_up_before_the_answer(
    asgi_server: str, sip_number: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.gone.add("rtc_gone")
    body = incoming_call("rtc_gone", sip_number.e164)
    assert post_webhook(asgi_server, body, sign_webhook(body)).status_code == 200
    call = Call.all_tenants.get(carrier_call_id="rtc_gone")
    assert (call.status, call.end_reason) == ("failed", "caller_hangup")


def test_a_sideband_that_refuses_the_key_ends_the_call_as_a_model_error(
    asgi_server: str,
    sip_number: Any,
    fake_openai: FakeOpenAI,
    simulator: Simulator,
    sideband_worker: None,
) -> None:
    simulator.sim.api_key = "sk-another-project"
    body = incoming_call("rtc_key", sip_number.e164)
    post_webhook(asgi_server, body, sign_webhook(body))
    wait_for(
        lambda: Call.all_tenants.filter(carrier_call_id="rtc_key", ended_at__isnull=False).exists()
    )
    call = Call.all_tenants.get(carrier_call_id="rtc_key")
    assert call.end_reason == "model_error"
    assert [e["code"] for e in events(call, "error")] == ["invalid_api_key"]
    assert fake_openai.actions("rtc_key")[-1] == ("hangup", None)  # not left running unsupervised


def test_without_a_sideband_the_caller_goes_to_the_fallback_number(
    asgi_server: str,
    sip_number: Any,
    fake_openai: FakeOpenAI,
    simulator: Simulator,
    sideband_worker: None,
) -> None:
    Agent.objects.for_tenant(sip_number.tenant).filter(pk=sip_number.agent_id).update(
        fallback_number="+14155550100"
    )
    simulator.run(simulator.sim.stop())  # the Realtime service is unreachable
    body = incoming_call("rtc_down", sip_number.e164)
    post_webhook(asgi_server, body, sign_webhook(body))
    wait_for(
        lambda: Call.all_tenants.filter(carrier_call_id="rtc_down", ended_at__isnull=False).exists()
    )
    call = Call.all_tenants.get(carrier_call_id="rtc_down")
    assert (call.end_reason, call.transfer_status, call.transfer_target) == (
        "model_error",
        "initiated",
        "+14155550100",
    )
    assert fake_openai.actions("rtc_down")[-1] == ("refer", {"target_uri": "tel:+14155550100"})


def test_a_sip_call_whose_worker_died_is_hung_up_by_the_sweeper(
    db: None, sip_number: Any, fake_openai: FakeOpenAI
) -> None:
    stale = timezone.now() - HEARTBEAT_TIMEOUT * 2
    lost = factories.CallFactory(
        phone_number=sip_number,
        carrier="openai_sip",
        carrier_call_id="rtc_lost",
        status="in_progress",
        heartbeat_at=stale,
    )
    alive = factories.CallFactory(
        phone_number=sip_number,
        carrier="openai_sip",
        carrier_call_id="rtc_alive",
        status="in_progress",
        heartbeat_at=timezone.now() - timedelta(seconds=5),
    )
    assert calls_sweep() == 1
    lost.refresh_from_db()
    assert (lost.status, lost.end_reason) == ("failed", "worker_lost")
    assert fake_openai.actions("rtc_lost") == [("hangup", None)]
    assert fake_openai.actions(alive.carrier_call_id) == []


@pytest.fixture
def embedded_layer(settings: Any) -> None:
    """`make run` without REDIS_URL: the in-memory layer, and no runworker process."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def test_without_redis_the_server_runs_the_sideband_itself(
    embedded_layer: None,
    asgi_server: str,
    sip_number: Any,
    fake_openai: FakeOpenAI,
    simulator: Simulator,
) -> None:
    body = incoming_call("rtc_embedded", sip_number.e164)
    assert post_webhook(asgi_server, body, sign_webhook(body)).status_code == 200
    wait_for(
        lambda: Call.all_tenants.filter(
            carrier_call_id="rtc_embedded", status="in_progress"
        ).exists()
    )
    simulator.run(simulator.sim.say_to_sideband("rtc_embedded", "That's all, goodbye"))
    wait_for(lambda: Call.all_tenants.get(carrier_call_id="rtc_embedded").ended_at is not None)
    assert Call.all_tenants.get(carrier_call_id="rtc_embedded").end_reason == "agent_hangup"
