"""The post-call pipeline: redaction, outcome tagging with provenance, summaries, billing,
recordings and webhooks, each step idempotent, against a fake OpenAI and a local receiver."""

import io
import json
import logging
import threading
import wave
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from openai import OpenAI

from billing.models import UsageEvent
from calls import pipeline, recordings, tasks
from calls.models import Call, CallEvent, Outcome, PostCallJob
from calls.redaction import CARD, NOT_STORED
from calls.tagging import facts_of, response_schema
from tenants import webhooks
from tenants.models import AuditEvent, WebhookDelivery
from tenants.rls import tenant_context
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer, Reply

CARD_SPOKEN = "four one one one one one one one one one one one one one one one"
CARD_DIGITS = "4111111111111111"


@pytest.fixture
def receiver(settings: Any) -> Any:
    """A tenant's webhook receiver on 127.0.0.1 (let through the SSRF guard for the test)."""
    server = FakeServer()
    server.route("POST", "/hook", lambda request, match: Reply(204))
    server.start()
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    yield server
    server.stop()


@pytest.fixture
def model(settings: Any) -> Any:
    fake = FakeOpenAI().start()
    settings.OPENAI_API_KEY = fake.api_key
    settings.OPENAI_BASE_URL = fake.url
    settings.OUTCOME_MODEL = "gpt-4.1-mini"
    settings.OUTCOME_MODEL_TIMEOUT = 1
    yield fake
    fake.server.stop()


@pytest.fixture(autouse=True)
def _no_model_unless_asked(settings: Any) -> None:
    settings.OPENAI_API_KEY = ""


def finished_call(
    *,
    tenant: Any = None,
    redaction: dict[str, Any] | None = None,
    recording: bool = False,
    turns: list[tuple[str, str]] | None = None,
    **fields: Any,
) -> Call:
    """An ended call, not yet processed, with a transcript (card number included) and a tool
    call, whose version records when asked to."""
    tenant = tenant or factories.TenantFactory()
    agent = factories.AgentFactory(tenant=tenant)
    version = factories.published_version(
        agent=agent,
        prompt_revision=factories.PromptRevisionFactory(
            template=factories.PromptTemplateFactory(tenant=tenant)
        ),
        recording_enabled=recording,
        redaction=redaction or {"mode": "standard", "patterns": []},
    )
    number = factories.PhoneNumberFactory(
        carrier_account=factories.CarrierAccountFactory(tenant=tenant), agent=agent
    )
    call = factories.CallFactory(phone_number=number, version=version, redacted_at=None, **fields)
    turns = turns or [
        ("agent", "Thanks for calling, how can I help?"),
        ("caller", f"I'd like to pay my bill, my card is {CARD_SPOKEN}"),
        ("agent", "Thank you, the payment went through."),
        ("caller", "Great, thanks, bye"),
    ]
    for index, (speaker, text) in enumerate(turns, start=1):
        factories.CallEventFactory(
            call=call, sequence=index, payload={"speaker": speaker, "text": text}
        )
    factories.CallEventFactory(
        call=call,
        sequence=len(turns) + 1,
        kind=CallEvent.Kind.TOOL_CALL,
        payload={
            "name": "take_payment",
            "arguments": {"card": CARD_DIGITS, "email": "jane@example.com"},
            "ok": True,
            "result": {"receipt": "sent to jane@example.com"},
            "error": "",
            "duration_ms": 120.0,
        },
    )
    if recording:
        recordings.save_raw(tenant.public_id, call.public_id, b"\x00" * 8000, b"\xff" * 4000)
    return call


def run_pipeline(call: Call) -> None:
    tasks.process_calls(call.tenant_id, [call.pk])


def state(call: Call) -> dict[str, Any]:
    """Everything the pipeline writes, to compare runs."""
    call.refresh_from_db()
    return {
        "events": list(
            CallEvent.all_tenants.filter(call=call).order_by("sequence").values_list("payload")
        ),
        "outcomes": list(Outcome.all_tenants.filter(call=call).values()),
        "usage": list(UsageEvent.all_tenants.filter(reference=call.public_id).values()),
        "deliveries": list(
            WebhookDelivery.all_tenants.filter(subject=call.public_id).values_list(
                "event_type", "sequence", "status"
            )
        ),
        "call": (call.summary, call.recording.name, call.recording_sha256, call.processed_at),
    }


@pytest.mark.django_db(transaction=True)
def test_every_step_runs_once_and_running_it_again_changes_nothing(
    receiver: FakeServer, caplog: pytest.LogCaptureFixture, celery_eager: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    call = finished_call(recording=True)
    factories.PostCallJobFactory(call=call)  # the outbox row ending the call writes
    secret = webhooks.new_secret()
    factories.WebhookEndpointFactory(
        tenant=call.tenant, url=receiver.url + "/hook", secrets={"current": secret}
    )
    run_pipeline(call)
    first = state(call)
    run_pipeline(call)
    assert state(call) == first

    # 1. Redaction: the card number is gone from the transcript and the tool call.
    texts = [p["text"] for (p,) in first["events"] if "speaker" in p]
    assert f"my card is {CARD}" in texts[1]
    tool = first["events"][-1][0]
    assert tool["arguments"] == {"card": CARD, "email": "[email]"}
    assert tool["result"] == {"receipt": "sent to [email]"}
    # 2 and 3. Outcome by the documented heuristic (no model), saying so; a summary.
    outcome = Outcome.all_tenants.get(call=call)
    assert (outcome.label, outcome.resolved, outcome.source, outcome.rule) == (
        "resolved",
        True,
        "rule",
        "heuristic",
    )
    assert "no model is configured" in outcome.note
    assert call.summary.startswith("The caller said:") and CARD_SPOKEN not in call.summary
    # 4. Billing: one usage event for the call.
    assert [(u["quantity"], u["reference"]) for u in first["usage"]] == [(1, call.public_id)]
    # 5. The recording: a stereo WAV, with its duration and checksum; raw tracks removed.
    with wave.open(io.BytesIO(call.recording.read())) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, 8000, 8000)
    assert call.recording_duration_ms == 1000 and len(call.recording_sha256) == 64
    assert recordings.load_raw(call.tenant.public_id, call.public_id) is None
    # 6. Webhooks: completed, then tagged, each delivered once, signed for the endpoint.
    assert first["deliveries"] == [
        ("call.completed", 1, "delivered"),
        ("call.outcome_tagged", 2, "delivered"),
    ]
    bodies = [r for r in receiver.requests if r.path == "/hook"]
    assert [json.loads(r.body)["type"] for r in bodies] == [
        "call.completed",
        "call.outcome_tagged",
    ]
    verifier = OpenAI(api_key="unused")
    for request in bodies:
        verifier.webhooks.verify_signature(request.body, request.headers, secret=secret)
    # Nothing unredacted anywhere: database rows, logs, webhook bodies.
    assert call.processed_at is not None
    assert PostCallJob.all_tenants.get(call=call).finished_at is not None
    leaks = [CARD_DIGITS, CARD_SPOKEN, "jane@example.com"]
    with connection.cursor() as cursor:
        for table in (
            "calls_callevent",
            "calls_call",
            "calls_outcome",
            "tenants_webhookdelivery",
            "billing_usageevent",
        ):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            dump = json.dumps(cursor.fetchall(), default=str)
            assert not [leak for leak in leaks if leak in dump], table
    assert not [leak for leak in leaks if leak in caplog.text]
    assert not [leak for leak in leaks for r in bodies if leak in r.body.decode()]


@pytest.mark.django_db
def test_pci_mode_keeps_no_transcript_body_and_no_recording() -> None:
    call = finished_call(redaction={"mode": "pci", "patterns": []}, recording=True)
    run_pipeline(call)
    call.refresh_from_db()
    texts = [
        e.payload["text"]
        for e in CallEvent.all_tenants.filter(call=call, kind=CallEvent.Kind.TRANSCRIPT)
    ]
    assert texts and set(texts) == {NOT_STORED}
    assert not call.recording
    assert recordings.load_raw(call.tenant.public_id, call.public_id) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "turns", "label", "rule"),
    [
        (
            {"end_reason": Call.EndReason.TRANSFERRED, "transfer_status": "bridged"},
            None,
            "escalated",
            "transfer_bridged",
        ),
        (
            {"end_reason": Call.EndReason.MODEL_ERROR, "status": Call.Status.FAILED},
            None,
            "failed",
            "technical_failure",
        ),
        (
            {"end_reason": Call.EndReason.CALLER_HANGUP, "duration_seconds": 6},
            [("agent", "Thanks for calling, how can I help?"), ("caller", "Oh, wrong number")],
            "abandoned",
            "early_hangup",
        ),
    ],
)
def test_deterministic_rules_decide_first(
    fields: dict[str, Any], turns: Any, label: str, rule: str
) -> None:
    call = finished_call(turns=turns, **fields)
    run_pipeline(call)
    outcome = Outcome.all_tenants.get(call=call)
    assert (outcome.label, outcome.source, outcome.rule, outcome.confidence) == (
        label,
        "rule",
        rule,
        1.0,
    )
    assert outcome.evidence
    assert not UsageEvent.all_tenants.filter(reference=call.public_id).exists()


@pytest.mark.django_db
def test_the_model_tags_with_a_strict_schema_over_the_redacted_transcript(
    model: FakeOpenAI,
) -> None:
    call = finished_call()
    model.completions.append(
        {
            "label": "resolved",
            "confidence": 0.82,
            "rationale": "The payment went through.",
            "evidence": [
                {"turn": 3, "quote": "the payment went through"},
                {"turn": 99, "quote": "?"},
            ],
            "summary": "The caller paid their bill by card.",
            "contact_reason": "pay a bill",
            "sentiment": "positive",
            "fields": {},
        }
    )
    run_pipeline(call)
    outcome = Outcome.all_tenants.get(call=call)
    assert (outcome.source, outcome.model, outcome.label, outcome.confidence) == (
        "model",
        "gpt-4.1-mini-2025-04-14",
        "resolved",
        0.82,
    )
    assert outcome.evidence == [
        {"kind": "transcript", "sequence": 3, "quote": "the payment went through"}
    ]
    call.refresh_from_db()
    assert call.summary == "The caller paid their bill by card."
    assert call.extracted == {"contact_reason": "pay a bill", "sentiment": "positive", "fields": {}}
    [request] = model.completion_requests()
    schema = request["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["properties"]["label"]["enum"] == [
        "resolved",
        "escalated",
        "abandoned",
        "voicemail",
        "spam",
        "failed",
    ]
    prompt = json.dumps(request["messages"])
    assert CARD in prompt and CARD_SPOKEN not in prompt and CARD_DIGITS not in prompt


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answers", "why"),
    [
        ([500, 500, 500], "InternalServerError"),
        ([("sleep", 1.5)] * 3, "APITimeoutError"),
        (["not json", '{"label": "nope"}'], "did not match the schema"),
    ],
    ids=["server errors", "timeouts", "malformed answers"],
)
def test_when_the_model_fails_rules_decide_and_say_why(
    model: FakeOpenAI, answers: list[Any], why: str
) -> None:
    model.completions.extend(answers)
    call = finished_call()
    run_pipeline(call)
    outcome = Outcome.all_tenants.get(call=call)
    assert (outcome.source, outcome.rule) == ("rule", "heuristic")
    assert outcome.note.startswith("the model was unavailable") and why in outcome.note
    assert UsageEvent.all_tenants.filter(reference=call.public_id).count() == 1


@pytest.mark.django_db
def test_one_malformed_answer_is_asked_again(model: FakeOpenAI) -> None:
    model.completions.append("{oops")
    call = finished_call()
    run_pipeline(call)
    assert Outcome.all_tenants.get(call=call).source == "model"
    assert len(model.completion_requests()) == 2


@pytest.mark.django_db
def test_tenant_fields_are_extracted_with_their_schema(model: FakeOpenAI) -> None:
    call = finished_call()
    assert call.version is not None
    call.version.extraction_schema = {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string"},
            "paid": {"type": "boolean", "description": "Did the caller pay?"},
        },
    }
    schema = response_schema(facts_of(call), call.version.extraction_schema)
    fields = schema["properties"]["fields"]
    assert fields["required"] == ["invoice_number", "paid"]
    assert fields["properties"]["paid"]["type"] == ["boolean", "null"]
    assert fields["additionalProperties"] is False


def at_once(times: int, work: Callable[[], Any]) -> None:
    """Run `work` in `times` threads released together, each on its own connection."""
    barrier = threading.Barrier(times)

    def run() -> None:
        barrier.wait()
        try:
            work()
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_job", [True, False], ids=["claimed job", "no job: row locks"])
def test_billing_hand_off_is_exactly_once_under_duplicate_execution(with_job: bool) -> None:
    call = finished_call()
    if with_job:
        factories.PostCallJobFactory(call=call)
    at_once(4, lambda: tasks.process_calls(call.tenant_id, [call.pk]))
    assert list(
        UsageEvent.all_tenants.filter(reference=call.public_id).values_list("quantity", flat=True)
    ) == [1]
    assert Outcome.all_tenants.filter(call=call).count() == 1


@pytest.mark.django_db(transaction=True)
def test_duplicate_tagging_at_once_leaves_one_outcome() -> None:
    call = finished_call()
    pipeline.redact(call)

    def process() -> None:
        with tenant_context(call.tenant):  # as the task does
            pipeline.process(call.tenant, [call.pk])

    at_once(3, process)
    assert Outcome.all_tenants.filter(call=call).count() == 1


@pytest.mark.django_db
def test_a_human_override_reverses_the_charge_within_the_dispute_window(
    world: TenantWorld,
) -> None:
    call = finished_call(tenant=world.tenant)
    run_pipeline(call)
    client = world.session_client(Role.FINANCE)
    response = client.put(
        f"/v1/calls/{call.public_id}/outcome",
        {"label": "escalated", "rationale": "They asked for a person."},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()["outcome"]
    assert (body["label"], body["resolved"], body["source"]) == ("escalated", False, "human")
    assert body["decided_by"].endswith("@example.com")
    ledger = list(
        UsageEvent.all_tenants.filter(reference=call.public_id)
        .order_by("recorded_at")
        .values_list("quantity", "reverses__quantity")
    )
    assert ledger == [(1, None), (-1, 1)]  # a reversal, never a deletion
    audit = AuditEvent.all_tenants.get(action="call.outcome_changed", target_id=call.public_id)
    assert audit.changes["label"] == ["resolved", "escalated"]
    assert audit.changes["source"] == ["rule", "human"]
    # Back to resolved: charged again, once.
    client.put(f"/v1/calls/{call.public_id}/outcome", {"label": "resolved"}, format="json")
    client.put(f"/v1/calls/{call.public_id}/outcome", {"label": "resolved"}, format="json")
    assert (
        sum(
            UsageEvent.all_tenants.filter(reference=call.public_id).values_list(
                "quantity", flat=True
            )
        )
        == 1
    )


@pytest.mark.django_db
def test_after_the_dispute_window_the_bill_stands(world: TenantWorld) -> None:
    ended = timezone.now() - timedelta(days=world.tenant.dispute_window_days + 1)
    call = finished_call(tenant=world.tenant, started_at=ended - timedelta(minutes=2))
    Call.all_tenants.filter(pk=call.pk).update(ended_at=ended)
    run_pipeline(call)
    response = world.client.put(
        f"/v1/calls/{call.public_id}/outcome", {"label": "spam"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["outcome"]["label"] == "spam"
    assert list(
        UsageEvent.all_tenants.filter(reference=call.public_id).values_list("quantity", flat=True)
    ) == [1]


@pytest.mark.django_db
def test_outcome_changes_are_role_checked_and_validated(world: TenantWorld) -> None:
    call = finished_call(tenant=world.tenant)
    run_pipeline(call)
    viewer = world.session_client(Role.VIEWER)
    refused = viewer.put(f"/v1/calls/{call.public_id}/outcome", {"label": "spam"}, format="json")
    assert refused.status_code == 403
    assert "calls:write" in refused.json()["detail"]
    unknown = world.client.put(
        f"/v1/calls/{call.public_id}/outcome", {"label": "delighted"}, format="json"
    )
    assert unknown.status_code == 400
    assert "resolved, escalated" in json.dumps(unknown.json())
    assert Outcome.all_tenants.get(call=call).label == "resolved"  # nothing half-applied
    assert viewer.get(f"/v1/calls/{call.public_id}/recording").status_code == 403


@pytest.mark.django_db
def test_retag_decides_again_with_the_current_rules(world: TenantWorld, model: FakeOpenAI) -> None:
    call = finished_call(tenant=world.tenant)
    run_pipeline(call)
    assert Outcome.all_tenants.get(call=call).source == "model"
    model.completions.append(
        {
            "label": "spam",
            "confidence": 0.7,
            "rationale": "A sales pitch.",
            "evidence": [],
            "summary": "A robocall.",
            "contact_reason": "sales",
            "sentiment": "neutral",
            "fields": {},
        }
    )
    response = world.client.post(f"/v1/calls/{call.public_id}/retag")
    assert response.status_code == 200, response.content
    assert response.json()["outcome"]["label"] == "spam"
    assert response.json()["summary"] == "A robocall."
    assert (
        sum(
            UsageEvent.all_tenants.filter(reference=call.public_id).values_list(
                "quantity", flat=True
            )
        )
        == 0
    )
    assert WebhookDelivery.all_tenants.filter(
        subject=call.public_id, event_type="call.outcome_changed"
    ).count() == int(world.webhook_endpoint.wants("call.outcome_changed"))


@pytest.mark.django_db(transaction=True)
def test_the_outbox_relay_runs_jobs_whose_tasks_were_lost(celery_eager: Any) -> None:
    call = finished_call()
    job = factories.PostCallJobFactory(call=call)  # written, but its tasks never queued
    assert tasks.dispatch_post_call() == 1
    call.refresh_from_db()
    job.refresh_from_db()
    assert call.processed_at is not None and job.finished_at is not None
    assert job.times_queued == 1
    assert tasks.dispatch_post_call() == 0


@pytest.mark.django_db(transaction=True)
def test_work_held_by_a_task_that_died_is_taken_again_once_presumed_lost(
    celery_eager: Any, settings: Any
) -> None:
    settings.POST_CALL_REQUEUE_SECONDS = 120
    tenant = factories.TenantFactory()
    now = timezone.now()
    lost, running = finished_call(tenant=tenant), finished_call(tenant=tenant)
    long_ago, just_now = now - timedelta(seconds=121), now - timedelta(seconds=30)
    factories.PostCallJobFactory(
        call=lost, queued_at=long_ago, times_queued=1, claimed_by="dead", claimed_at=long_ago
    )
    factories.PostCallJobFactory(
        call=running, queued_at=just_now, times_queued=1, claimed_by="alive", claimed_at=just_now
    )
    assert tasks.dispatch_post_call() == 1  # only the one presumed lost is sent again
    lost.refresh_from_db()
    running.refresh_from_db()
    assert lost.processed_at is not None
    assert running.processed_at is None  # still another task's
    assert PostCallJob.all_tenants.get(call=lost).times_queued == 2
    assert PostCallJob.all_tenants.get(call=running).claimed_by == "alive"


@pytest.mark.django_db(transaction=True)
def test_ending_a_call_queues_its_pipeline(celery_eager: Any) -> None:
    from calls.services import call_finalize

    call = finished_call(status=Call.Status.IN_PROGRESS)
    assert call_finalize(call, status=Call.Status.COMPLETED, end_reason="agent_hangup")
    call.refresh_from_db()
    assert call.processed_at is not None
    assert Outcome.all_tenants.filter(call=call).exists()
    assert PostCallJob.all_tenants.get(call=call).finished_at is not None


@pytest.mark.django_db
def test_a_call_awaiting_redaction_shows_no_transcript(world: TenantWorld) -> None:
    call = finished_call(tenant=world.tenant)
    shown = world.client.get(f"/v1/calls/{call.public_id}/transcript").json()
    assert {turn["text"] for turn in shown} == {"[awaiting redaction]"}
    timeline = world.client.get(f"/v1/calls/{call.public_id}/events").json()["results"]
    assert CARD_SPOKEN not in json.dumps(timeline) and CARD_DIGITS not in json.dumps(timeline)
    run_pipeline(call)
    shown = world.client.get(f"/v1/calls/{call.public_id}/transcript").json()
    assert f"my card is {CARD}" in shown[1]["text"]


@pytest.mark.django_db
def test_members_allowed_to_listen_download_the_recording(world: TenantWorld) -> None:
    response = world.client.get(f"/v1/calls/{world.call.public_id}/recording")
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    data = b"".join(response.streaming_content)
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 2
    shown = world.client.get(f"/v1/calls/{world.call.public_id}").json()
    assert shown["recording"]["duration_ms"] == 100
    assert shown["outcome"]["label"] == "resolved"
    no_recording = finished_call(tenant=world.tenant)
    assert world.client.get(f"/v1/calls/{no_recording.public_id}/recording").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_queued_task_carries_only_ids() -> None:
    """What goes through the broker (Redis) names the call; it never carries what was said."""
    import base64

    import redis
    from django.conf import settings

    from calls.services import call_finalize
    from config.celery import app

    app.control.purge()
    call = finished_call(status=Call.Status.IN_PROGRESS)
    call_finalize(call, status=Call.Status.COMPLETED, end_reason="agent_hangup")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    messages = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    app.control.purge()
    [message] = messages
    assert message["headers"]["task"] == "calls.tasks.process_calls"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([call.tenant_id, [call.pk]], {})
    raw = json.dumps(messages)
    assert CARD_DIGITS not in raw and "jane@example.com" not in raw
