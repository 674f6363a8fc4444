"""The Agents pages, as a member sees them: forms, errors by their fields, confirmations, and
what the agents services did."""

from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from agents.models import Agent, AgentVersion, PromptRevision, TrafficAllocation
from agents.selectors import traffic_split
from agents.services.agents import version_create, version_publish
from tenants.access import Actor
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld, verified_login
from tests.console.conftest import member_client, text
from tests.test_isolation import snapshot

SYSTEM = Actor.system("tests")


def url(name: str, obj: Any = None) -> str:
    return reverse(f"console:{name}", kwargs={"id": obj.public_id} if obj is not None else {})


def editor_fields(**changes: str) -> dict[str, Any]:
    """What the version editor posts for a complete draft, with `changes`."""
    return {
        "instructions": "You answer the phone for {{ company }}. Be brief and kind.",
        "prompt_variables": "company = Acme Dental",
        "voice": "marin",
        "greeting": "Hello!",
        "languages": "en, es",
        "transfer_targets": "front desk, +14155550123",
        "outcome_taxonomy": "resolved, yes, The caller's need was met.\nescalated, no",
        "max_call_duration_seconds": "600",
        "silence_timeout_seconds": "30",
        **changes,
    }


# --- Agents list and creation -----------------------------------------------------------------


def test_the_list_shows_each_agent_with_what_answers_its_calls(world: TenantWorld) -> None:
    response = member_client(world).get(url("agents"))
    body = text(response)
    assert world.agent.name in body
    assert f"v{world.published_version.number} 100%" in body
    assert "New agent" in body


def test_a_viewer_sees_the_list_without_the_new_agent_button(world: TenantWorld) -> None:
    body = text(member_client(world, Role.VIEWER).get(url("agents")))
    assert world.agent.name in body
    assert "New agent" not in body


def test_a_tenant_without_agents_is_told_what_to_do(db: None) -> None:
    membership = factories.MembershipFactory(role=Role.OWNER)
    client = verified_login(Client(), membership.user)
    body = text(client.get(url("agents")))
    assert "No agents yet" in body
    assert url("agent-new") in body


def test_creating_an_agent_lands_on_its_page(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.post(url("agent-new"), {"name": "Front desk", "description": "Days"})
    agent = Agent.objects.for_tenant(world.tenant).get(name="Front desk")
    assert response.status_code == 302
    assert response["Location"] == url("agent", agent)
    page = text(client.get(response["Location"]))
    assert "Agent Front desk is created" in page
    assert "No versions yet" in page


def test_a_taken_name_is_refused_next_to_the_field_and_values_are_kept(world: TenantWorld) -> None:
    response = member_client(world).post(
        url("agent-new"),
        {"name": world.agent.name, "description": "Kept text", "fallback_number": ""},
    )
    body = text(response)
    assert response.status_code == 400
    assert escape(f"An agent named {world.agent.name!r} exists.") in body
    assert "Kept text" in body
    assert Agent.objects.for_tenant(world.tenant).count() == 1


def test_a_bad_fallback_number_is_refused_on_the_settings_form(world: TenantWorld) -> None:
    response = member_client(world).post(
        url("agent-update", world.agent),
        {"name": "New name", "description": "", "fallback_number": "555", "status": "active"},
    )
    body = text(response)
    assert response.status_code == 400
    assert "is not an E.164 number" in body
    assert 'value="New name"' in body
    world.agent.refresh_from_db()
    assert world.agent.name != "New name"


def test_settings_are_saved(world: TenantWorld) -> None:
    response = member_client(world).post(
        url("agent-update", world.agent),
        {
            "name": "Night desk",
            "description": "",
            "fallback_number": "+14155550100",
            "status": "active",
        },
    )
    assert response.status_code == 302
    world.agent.refresh_from_db()
    assert (world.agent.name, world.agent.fallback_number) == ("Night desk", "+14155550100")


# --- Agent page -----------------------------------------------------------------------------------


def test_the_agent_page_lists_versions_and_the_split(world: TenantWorld) -> None:
    body = text(member_client(world).get(url("agent", world.agent)))
    assert f"Version {world.version.number}" in body
    assert f"Version {world.published_version.number}</a> takes <strong>100%" in body
    for control in ("New draft", "Roll back", "Traffic split", "Compare versions", "Save settings"):
        assert control in body


def test_a_viewer_reads_the_agent_page_without_controls(world: TenantWorld) -> None:
    body = text(member_client(world, Role.VIEWER).get(url("agent", world.agent)))
    assert f"Version {world.version.number}" in body
    for control in ("New draft", "Roll back", "Traffic split", "Save settings"):
        assert control not in body


def test_an_editor_may_draft_but_not_publish(world: TenantWorld) -> None:
    client = member_client(world, Role.EDITOR)
    agent_page = text(client.get(url("agent", world.agent)))
    assert "New draft" in agent_page and "Roll back" not in agent_page
    version_page = text(client.get(url("version", world.version)))
    assert "Save draft" in version_page and ">Publish<" not in version_page
    response = client.post(url("version-publish", world.version))
    assert response.status_code == 403
    world.version.refresh_from_db()
    assert world.version.is_draft


def test_a_new_draft_copies_the_chosen_version(world: TenantWorld) -> None:
    response = member_client(world).post(
        url("version-create", world.agent), {"based_on": world.published_version.public_id}
    )
    draft = AgentVersion.objects.for_tenant(world.tenant).order_by("-number").first()
    assert draft is not None and draft.is_draft
    assert response["Location"] == url("version", draft)
    assert draft.prompt_revision == world.published_version.prompt_revision


# --- Version editor -------------------------------------------------------------------------------


def test_the_editor_shows_the_prompt_variables_and_a_rendered_preview(world: TenantWorld) -> None:
    body = text(member_client(world).get(url("version", world.version)))
    assert "<code>company</code>" in body
    assert "You answer the phone for Acme. Be brief and kind." in body  # the default
    assert url("version-preview", world.version) in body


def test_saving_changed_instructions_pins_a_new_revision(world: TenantWorld) -> None:
    tool = world.tool
    response = member_client(world).post(
        url("version-save", world.version),
        editor_fields(
            instructions="Greet callers of {{ company }} warmly.\r\nAsk for {{ topic }}.",
            prompt_variables="company = Acme Dental\ntopic = their appointment",
            tools=tool.public_id,
            knowledge_bases=world.knowledge_base.public_id,
            recording_enabled="on",
        ),
    )
    assert response.status_code == 302, text(response)[:3000]
    version = AgentVersion.objects.for_tenant(world.tenant).get(pk=world.version.pk)
    revision = version.prompt_revision
    assert revision is not None and revision != world.prompt_revision
    assert revision.template_id == world.prompt_revision.template_id
    assert revision.body == "Greet callers of {{ company }} warmly.\nAsk for {{ topic }}."
    assert {"name": "topic", "type": "string"} in revision.variables
    assert version.prompt_variables == {"company": "Acme Dental", "topic": "their appointment"}
    assert version.languages == ["en", "es"]
    assert version.transfer_targets == [{"name": "front desk", "destination": "+14155550123"}]
    assert version.outcome_taxonomy[0] == {
        "label": "resolved",
        "resolved": True,
        "description": "The caller's need was met.",
    }
    assert version.recording_enabled is True
    assert [t.pk for t in version.tools.all()] == [tool.pk]


def test_saving_the_same_instructions_keeps_the_revision(world: TenantWorld) -> None:
    before = PromptRevision.objects.for_tenant(world.tenant).count()
    response = member_client(world).post(
        url("version-save", world.version),
        editor_fields(instructions=world.prompt_revision.body, prompt_variables=""),
    )
    assert response.status_code == 302
    world.version.refresh_from_db()
    assert world.version.prompt_revision == world.prompt_revision
    assert PromptRevision.objects.for_tenant(world.tenant).count() == before


def test_a_draft_without_instructions_gets_a_template_named_after_the_agent(
    world: TenantWorld,
) -> None:
    draft = version_create(agent=world.agent, actor=SYSTEM)
    response = member_client(world).post(
        url("version-save", draft), editor_fields(instructions="Be kind.", prompt_variables="")
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.prompt_revision is not None
    assert draft.prompt_revision.body == "Be kind."
    assert draft.prompt_revision.template.name == world.agent.name


def test_service_errors_appear_next_to_their_fields_and_values_are_kept(
    world: TenantWorld,
) -> None:
    before = snapshot(world.tenant)
    response = member_client(world).post(
        url("version-save", world.version),
        editor_fields(
            instructions="A new text for {{ company }}.",
            transfer_targets="front desk, 12345",
            silence_timeout_seconds="1",
        ),
    )
    body = text(response)
    assert response.status_code == 400
    assert "is neither an E.164 number" in body
    assert "Seconds between 5 and" in body
    assert "front desk, 12345" in body
    assert "A new text for {{ company }}." in body
    assert snapshot(world.tenant) == before  # not even the new prompt revision stays


def test_lines_the_editor_cannot_read_are_refused_by_the_form(world: TenantWorld) -> None:
    response = member_client(world).post(
        url("version-save", world.version),
        editor_fields(outcome_taxonomy="resolved, maybe", prompt_variables="company"),
    )
    body = text(response)
    assert response.status_code == 400
    assert "label, yes or no, description" in body
    assert "name = value" in body


def test_a_published_version_is_read_only(world: TenantWorld) -> None:
    body = text(member_client(world).get(url("version", world.published_version)))
    assert "Save draft" not in body
    assert "You answer the phone for Acme" in body
    assert "New draft from this version" in body
    response = member_client(world).post(
        url("version-save", world.published_version), editor_fields(), follow=True
    )
    assert "cannot change; create a new draft from it" in text(response)


def test_the_preview_renders_the_typed_text_and_changes_nothing(world: TenantWorld) -> None:
    client = member_client(world, Role.VIEWER)  # reading is enough: nothing is saved
    before = snapshot(world.tenant)
    response = client.post(
        url("version-preview", world.version),
        {
            "instructions": "Hi from {{ company }} about {{ topic }}",
            "prompt_variables": "company = Zed",
        },
    )
    assert "Missing variable: topic." in text(response)
    response = client.post(
        url("version-preview", world.version),
        {"instructions": "Hi from {{ company }}", "prompt_variables": "company = Zed"},
    )
    assert '<pre data-testid="preview-text">Hi from Zed</pre>' in text(response)
    assert snapshot(world.tenant) == before


# --- Publishing, archiving, deleting --------------------------------------------------------------


def test_a_draft_that_cannot_be_published_lists_its_problems(world: TenantWorld) -> None:
    draft = version_create(agent=world.agent, actor=SYSTEM)
    client = member_client(world)
    response = client.post(url("version-publish", draft), follow=True)
    body = text(response)
    assert f"Version {draft.number} is not published" in body
    assert "<strong>Instructions</strong>: Choose the prompt revision" in body
    draft.refresh_from_db()
    assert draft.is_draft


def test_publishing_sends_all_calls_to_the_version(world: TenantWorld) -> None:
    response = member_client(world).post(url("version-publish", world.version), follow=True)
    body = text(response)
    assert response.redirect_chain[-1][0] == url("agent", world.agent)
    assert f"Version {world.version.number} is published and takes all calls." in body
    assert [(a.version_id, a.weight) for a in traffic_split(world.agent)] == [
        (world.version.pk, 100)
    ]


def test_publishing_without_sending_calls_keeps_the_split(world: TenantWorld) -> None:
    response = member_client(world).post(
        url("version-publish", world.version), {"activate": "no"}, follow=True
    )
    assert "Give it a share of the calls" in text(response)
    world.version.refresh_from_db()
    assert world.version.status == AgentVersion.Status.PUBLISHED
    assert [a.version_id for a in traffic_split(world.agent)] == [world.published_version.pk]


def test_archiving_asks_first_and_refuses_a_version_taking_calls(world: TenantWorld) -> None:
    client = member_client(world)
    asking = client.post(url("version-archive", world.published_version))
    assert 'data-testid="confirm"' in text(asking)
    refused = client.post(
        url("version-archive", world.published_version), {"confirmed": "yes"}, follow=True
    )
    assert "This version is taking calls" in text(refused)
    version_publish(version=world.version, actor=SYSTEM)  # now the draft takes the calls
    client.post(url("version-archive", world.published_version), {"confirmed": "yes"})
    world.published_version.refresh_from_db()
    assert world.published_version.status == AgentVersion.Status.ARCHIVED


def test_deleting_a_draft_asks_first(world: TenantWorld) -> None:
    client = member_client(world)
    asking = client.post(url("version-delete", world.version))
    assert f"Delete draft version {world.version.number}" in text(asking)
    assert AgentVersion.objects.for_tenant(world.tenant).filter(pk=world.version.pk).exists()
    response = client.post(url("version-delete", world.version), {"confirmed": "yes"})
    assert response["Location"] == url("agent", world.agent)
    assert not AgentVersion.objects.for_tenant(world.tenant).filter(pk=world.version.pk).exists()


# --- Rollback, diff, split ---------------------------------------------------------------------


def test_rolling_back_asks_then_sends_all_calls_to_the_version(world: TenantWorld) -> None:
    old = world.published_version
    version_publish(version=world.version, actor=SYSTEM)
    client = member_client(world)
    asking = client.post(url("agent-rollback", world.agent), {"version": old.public_id})
    assert f"Roll back to version {old.number}" in text(asking)
    assert [a.version_id for a in traffic_split(world.agent)] == [world.version.pk]
    client.post(url("agent-rollback", world.agent), {"version": old.public_id, "confirmed": "yes"})
    assert [(a.version_id, a.weight) for a in traffic_split(world.agent)] == [(old.pk, 100)]


def test_the_diff_shows_changed_fields_and_instruction_lines(world: TenantWorld) -> None:
    draft = version_create(
        agent=world.agent,
        actor=SYSTEM,
        based_on=world.published_version,
        greeting="Welcome to Acme",
        prompt_variables={"company": "Zed"},
    )
    query = f"?a={world.published_version.public_id}&b={draft.public_id}"
    body = text(member_client(world).get(url("agent-diff", world.agent) + query))
    assert "Greeting" in body and "Welcome to Acme" in body
    assert '<span class="diff-added">+You answer the phone for Zed.' in body
    assert '<span class="diff-removed">-You answer the phone for Acme.' in body


def test_the_diff_refuses_a_version_of_another_agent(world: TenantWorld) -> None:
    other = factories.AgentVersionFactory(agent=factories.AgentFactory(tenant=world.tenant))
    query = f"?a={other.public_id}&b={world.version.public_id}"
    response = member_client(world).get(url("agent-diff", world.agent) + query)
    assert "Select a valid choice" in text(response)


def test_a_split_that_does_not_add_up_is_refused_by_the_form(world: TenantWorld) -> None:
    version_publish(version=world.version, actor=SYSTEM, activate=False)
    field_a = f"weight_{world.published_version.public_id}"
    field_b = f"weight_{world.version.public_id}"
    client = member_client(world)
    response = client.post(url("agent-split", world.agent), {field_a: "50", field_b: "40"})
    assert response.status_code == 400
    assert "Weights add up to 90, not 100." in text(response)
    assert 'value="40"' in text(response)
    response = client.post(url("agent-split", world.agent), {field_a: "50", field_b: "50"})
    assert response.status_code == 302
    split = {a.version_id: a.weight for a in traffic_split(world.agent)}
    assert split == {world.published_version.pk: 50, world.version.pk: 50}
    assert TrafficAllocation.objects.for_tenant(world.tenant).count() == 2
