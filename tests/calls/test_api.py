"""Reading calls: the list and its filters, one call, its timeline and its transcript."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests import factories as f
from tests.conftest import TenantWorld, verified_login

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["results"]]


def test_calls_are_listed_newest_first_and_filtered(world: TenantWorld) -> None:
    now = timezone.now()
    other_agent = f.AgentFactory(tenant=world.tenant)
    other_number = f.PhoneNumberFactory(carrier_account=world.carrier_account, agent=other_agent)
    old = f.CallFactory(phone_number=world.phone_number, started_at=now - timedelta(days=3))
    live = f.CallFactory(phone_number=world.phone_number, status="in_progress")
    elsewhere = f.CallFactory(phone_number=other_number, end_reason="transferred")
    client = world.client

    assert ids(client.get("/v1/calls")) == [
        elsewhere.public_id,
        live.public_id,
        world.call.public_id,
        old.public_id,
    ]
    assert ids(client.get(f"/v1/calls?agent={other_agent.public_id}")) == [elsewhere.public_id]
    assert ids(client.get(f"/v1/calls?number={other_number.e164}".replace("+", "%2B"))) == [
        elsewhere.public_id
    ]
    assert ids(client.get("/v1/calls?status=in_progress")) == [live.public_id]
    assert ids(client.get("/v1/calls?end_reason=transferred")) == [elsewhere.public_id]
    assert ids(client.get(f"/v1/calls?version={world.published_version.public_id}")) == [
        live.public_id,
        world.call.public_id,
        old.public_id,
    ]
    since = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert old.public_id not in ids(client.get(f"/v1/calls?since={since}"))
    assert ids(client.get(f"/v1/calls?until={since}")) == [old.public_id]

    bad = client.get("/v1/calls?status=ringing-ish")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "status"


def test_one_call_with_its_timeline_and_transcript(world: TenantWorld) -> None:
    call = world.call
    shown = world.client.get(f"/v1/calls/{call.public_id}").json()
    assert shown["id"] == call.public_id
    assert (shown["status"], shown["end_reason"], shown["duration_seconds"]) == (
        "completed",
        "caller_hangup",
        42,
    )
    assert (shown["agent"], shown["version"], shown["phone_number"]) == (
        world.agent.public_id,
        world.published_version.public_id,
        world.phone_number.e164,
    )
    assert shown["transfer"] == {"status": "none", "target": ""}

    f.CallEventFactory(
        call=call,
        sequence=3,
        offset_ms=5000,
        kind="tool_call",
        payload={"name": "search_faq", "ok": True, "duration_ms": 12},
    )
    f.CallEventFactory(
        call=call,
        sequence=4,
        offset_ms=5600,
        payload={"speaker": "agent", "text": "We open at nine."},
    )
    timeline = world.client.get(f"/v1/calls/{call.public_id}/events").json()["results"]
    assert [(e["sequence"], e["kind"]) for e in timeline] == [
        (1, "transcript"),
        (2, "transcript"),
        (3, "tool_call"),
        (4, "transcript"),
    ]
    assert timeline[2]["payload"]["name"] == "search_faq"

    transcript = world.client.get(f"/v1/calls/{call.public_id}/transcript").json()
    assert transcript == [
        {"speaker": "agent", "text": "Thanks for calling, how can I help?", "offset_ms": 900},
        {"speaker": "caller", "text": "Hello", "offset_ms": 4200},
        {"speaker": "agent", "text": "We open at nine.", "offset_ms": 5600},
    ]


def test_operators_see_a_call_and_its_timeline_in_the_admin(world: TenantWorld) -> None:
    operator = f.UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    verified_login(client, operator)
    page = client.get(reverse("admin:calls_call_change", args=[world.call.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Thanks for calling, how can I help?" in text
    assert "Caller Hangup" in text
