"""A simulated call ends; within seconds its outcome, summary, redacted transcript and
recording are in the API, its usage event is in billing, and a signed webhook reached the
tenant's receiver."""

import io
import json
import time
import wave
from typing import Any

from openai import OpenAI

from billing.models import UsageEvent
from calls.models import Call
from tenants import webhooks
from tests import factories
from tests.conftest import key_client
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer, Reply
from tests.workers.conftest import Simulator, phone_agent
from tests.workers.test_media_stream import place_call, the_call
from workers.caller import Step


def test_a_finished_call_is_redacted_tagged_recorded_billed_and_announced(
    asgi_server: str, simulator: Simulator, settings: Any, celery_eager: Any
) -> None:
    model = FakeOpenAI(api_key=settings.OPENAI_API_KEY).start()
    settings.OPENAI_BASE_URL = model.url
    receiver = FakeServer()
    receiver.route("POST", "/events", lambda request, match: Reply(200))
    receiver.start()
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    try:
        number, _ = phone_agent(recording_enabled=True)
        secret = webhooks.new_secret()
        factories.WebhookEndpointFactory(
            tenant=number.tenant, url=receiver.url + "/events", secrets={"current": secret}
        )
        key = factories.ApiKeyFactory(tenant=number.tenant)
        report = place_call(
            asgi_server,
            number,
            [
                Step("wait_for_agent"),
                Step("say", "My card number is 4111 1111 1111 1111"),
                Step("say", "Thanks, goodbye"),
                Step("wait_for_hangup", seconds=10),
            ],
        )
        call = the_call(report)
        deadline = time.monotonic() + 10
        while call.processed_at is None and time.monotonic() < deadline:
            time.sleep(0.1)
            call.refresh_from_db()
        assert call.processed_at is not None, "the pipeline did not finish"

        client = key_client(key)
        shown = client.get(f"/v1/calls/{call.public_id}").json()
        assert shown["outcome"]["label"] == "resolved"
        assert shown["outcome"]["source"] == "model"
        assert shown["summary"]
        transcript = client.get(f"/v1/calls/{call.public_id}/transcript").json()
        caller_said = [t["text"] for t in transcript if t["speaker"] == "caller"]
        assert "My card number is [card number]" in caller_said
        assert "4111" not in json.dumps(transcript)

        audio = client.get(f"/v1/calls/{call.public_id}/recording")
        assert audio.status_code == 200
        with wave.open(io.BytesIO(b"".join(audio.streaming_content))) as wav:
            assert wav.getnchannels() == 2
            seconds = wav.getnframes() / wav.getframerate()
        assert abs(seconds * 1000 - shown["recording"]["duration_ms"]) < 1
        assert seconds > 1

        assert list(
            UsageEvent.all_tenants.filter(reference=call.public_id).values_list(
                "quantity", flat=True
            )
        ) == [1]
        # Deliveries are tasks of their own, queued as the pipeline commits: wait for both.
        deadline = time.monotonic() + 10
        delivered = [r for r in receiver.requests if r.path == "/events"]
        while len(delivered) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            delivered = [r for r in receiver.requests if r.path == "/events"]
        assert [json.loads(r.body)["type"] for r in delivered] == [
            "call.completed",
            "call.outcome_tagged",
        ]
        for request in delivered:
            OpenAI(api_key="unused").webhooks.verify_signature(
                request.body, request.headers, secret=secret
            )
            assert "4111" not in request.body.decode()
        assert Call.all_tenants.get(pk=call.pk).recording_sha256 == shown["recording"]["sha256"]
    finally:
        model.server.stop()
        receiver.stop()
