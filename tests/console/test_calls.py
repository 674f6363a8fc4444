"""The Calls pages as a member uses them: the filtered list, a call's timeline with what awaits
redaction hidden, its outcome's provenance and evidence, the recording, and re-tagging."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallEvent, Outcome
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld
from tests.console.conftest import member_client, text

CALLS = reverse("console:calls")


def call_url(call: Call, page: str = "call") -> str:
    return reverse(f"console:{page}", kwargs={"id": call.public_id})


# --- List -------------------------------------------------------------------------------------


def test_the_list_shows_each_call_newest_first(world: TenantWorld) -> None:
    older = factories.CallFactory(
        phone_number=world.phone_number,
        caller="+15005550111",
        started_at=timezone.now() - timedelta(days=3),
    )
    page = text(member_client(world).get(CALLS))
    assert page.index(call_url(world.call)) < page.index(call_url(older))
    assert world.phone_number.e164 in page and world.agent.name in page
    assert f"v{world.published_version.number}" in page
    assert "42 s" in page
    assert 'data-testid="outcome-badge">resolved<' in page


def test_filters_narrow_the_list_and_stay_in_the_form(world: TenantWorld) -> None:
    client = member_client(world)
    failed = factories.CallFactory(
        phone_number=world.phone_number, caller="+15005550999", status=Call.Status.FAILED
    )
    page = text(client.get(CALLS, {"status": "failed"}))
    assert call_url(failed) in page and call_url(world.call) not in page
    assert '<option value="failed" selected>' in page

    page = text(client.get(CALLS, {"caller": "0999"}))
    assert call_url(failed) in page and call_url(world.call) not in page

    page = text(client.get(CALLS, {"outcome": "resolved", "resolved": "true"}))
    assert call_url(world.call) in page and call_url(failed) not in page

    page = text(
        client.get(CALLS, {"agent": world.agent.public_id, "number": world.phone_number.e164})
    )
    assert call_url(world.call) in page and call_url(failed) in page


def test_a_date_range_keeps_the_whole_last_day(world: TenantWorld) -> None:
    client = member_client(world)
    today = timezone.localdate(world.call.started_at).isoformat()
    assert call_url(world.call) in text(client.get(CALLS, {"since": today, "until": today}))
    earlier = (timezone.localdate(world.call.started_at) - timedelta(days=2)).isoformat()
    page = text(client.get(CALLS, {"since": earlier, "until": earlier}))
    assert call_url(world.call) not in page
    assert "No calls match these filters" in page


def test_a_wrong_filter_is_explained_next_to_its_field(world: TenantWorld) -> None:
    page = text(member_client(world).get(CALLS, {"since": "yesterday", "status": "completed"}))
    assert "Enter a valid date" in page
    assert call_url(world.call) in page  # the valid filters still apply


def test_another_tenants_calls_are_not_listed(world: TenantWorld, other_world: TenantWorld) -> None:
    page = text(member_client(world).get(CALLS))
    assert call_url(other_world.call) not in page
    assert other_world.agent.public_id not in page


# --- A call -----------------------------------------------------------------------------------


def test_the_call_page_shows_the_timeline_outcome_and_recording(world: TenantWorld) -> None:
    call = world.call
    CallEvent.objects.create(
        tenant=world.tenant,
        call=call,
        sequence=3,
        offset_ms=5100,
        kind=CallEvent.Kind.TOOL_CALL,
        payload={
            "name": "search_faq",
            "call_id": "c1",
            "arguments": {"query": "Saturday hours"},
            "ok": True,
            "result": [{"document": "Hours", "text": "We open at nine."}],
            "duration_ms": 12.5,
        },
    )
    CallEvent.objects.create(
        tenant=world.tenant,
        call=call,
        sequence=4,
        offset_ms=6000,
        kind=CallEvent.Kind.BARGE_IN,
        payload={"item_id": "i1", "played_ms": 800},
    )
    CallEvent.objects.create(
        tenant=world.tenant,
        call=call,
        sequence=5,
        offset_ms=6400,
        kind=CallEvent.Kind.LATENCY,
        payload={"ms": 431.2, "item_id": "i2"},
    )
    Outcome.objects.for_tenant(world.tenant).filter(call=call).update(
        evidence=[{"kind": "transcript", "sequence": 2, "quote": "Hello"}]
    )
    page = text(member_client(world).get(call_url(call)))
    assert "Thanks for calling, how can I help?" in page
    assert "0:00.9" in page and "0:04.2" in page
    assert "Tool search_faq" in page and "Saturday hours" in page and "We open at nine." in page
    assert "after 800 ms of the agent" in page
    assert "answered after 431 ms" in page
    assert "rule <code>heuristic</code>" in page
    assert "The caller&#x27;s question was answered." in page
    assert 'href="#event-2"' in page and "“Hello”" in page
    assert f'src="{call_url(call, "call-recording")}"' in page
    assert "Re-run tagging" in page


def test_what_awaits_redaction_is_not_shown(world: TenantWorld) -> None:
    Call.objects.for_tenant(world.tenant).filter(pk=world.call.pk).update(redacted_at=None)
    page = text(member_client(world).get(call_url(world.call)))
    assert "Thanks for calling, how can I help?" not in page
    assert "[awaiting redaction]" in page


def test_members_without_the_permissions_see_neither_player_nor_retag(world: TenantWorld) -> None:
    finance = member_client(world, Role.FINANCE)  # may re-tag, may not listen
    page = text(finance.get(call_url(world.call)))
    assert "<audio" not in page and "Re-run tagging" in page
    assert finance.get(call_url(world.call, "call-recording")).status_code == 403

    viewer = text(member_client(world, Role.VIEWER).get(call_url(world.call)))
    assert "Re-run tagging" not in viewer and "Set the outcome" not in viewer


def test_the_recording_streams_as_a_private_wav(world: TenantWorld) -> None:
    response = member_client(world).get(call_url(world.call, "call-recording"))
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content).startswith(b"RIFF")


def test_a_call_without_a_recording_has_no_player_and_its_recording_is_missing(
    world: TenantWorld,
) -> None:
    call = factories.CallFactory(phone_number=world.phone_number)
    client = member_client(world)
    assert "<audio" not in text(client.get(call_url(call)))
    assert client.get(call_url(call, "call-recording")).status_code == 404


# --- Re-tagging -------------------------------------------------------------------------------


def test_a_person_sets_the_outcome_with_a_reason(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.post(
        call_url(world.call, "call-outcome"),
        {"label": "escalated", "rationale": "The caller asked for a person."},
        follow=True,
    )
    outcome = Outcome.objects.for_tenant(world.tenant).get(call=world.call)
    assert (outcome.label, outcome.source, outcome.resolved) == ("escalated", "human", False)
    assert outcome.rationale == "The caller asked for a person."
    assert outcome.decided_by == world.owner.user
    page = text(response)
    assert "The outcome is now escalated" in page
    assert f"a person: {world.owner.user.email}" in page


def test_an_unknown_label_is_refused_next_to_the_field(world: TenantWorld) -> None:
    response = member_client(world).post(
        call_url(world.call, "call-outcome"), {"label": "delighted", "rationale": "Keep me"}
    )
    assert response.status_code == 400
    page = text(response)
    assert "Select a valid choice" in page and "Keep me" in page
    assert Outcome.objects.for_tenant(world.tenant).get(call=world.call).label == "resolved"


def test_re_running_tagging_decides_again(world: TenantWorld) -> None:
    client = member_client(world)
    client.post(call_url(world.call, "call-outcome"), {"label": "spam"})
    response = client.post(call_url(world.call, "call-retag"), follow=True)
    outcome = Outcome.objects.for_tenant(world.tenant).get(call=world.call)
    assert outcome.source != Outcome.Source.HUMAN
    assert "Tagged again" in text(response)


def test_a_live_call_cannot_be_re_tagged(world: TenantWorld) -> None:
    live = factories.CallFactory(phone_number=world.phone_number, status=Call.Status.IN_PROGRESS)
    client = member_client(world)
    assert "Re-run tagging" not in text(client.get(call_url(live)))
    response = client.post(call_url(live, "call-retag"), follow=True)
    assert "The call has not ended yet." in text(response)
