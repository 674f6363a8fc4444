import json

import pytest
import yaml
from django.db import DatabaseError, connection, transaction

from agents.models import Agent, AgentVersion, PromptRevision, TrafficAllocation
from tenants.models import AuditEvent, Tenant
from tests.conftest import TenantWorld
from tests.factories import (
    AgentVersionFactory,
    PromptRevisionFactory,
    PromptTemplateFactory,
    ToolFactory,
    published_version,
)

pytestmark = pytest.mark.django_db


def split_of(world: TenantWorld, agent: Agent | None = None) -> list[tuple[int, int]]:
    agent = agent or world.agent
    body = world.client.get(f"/v1/agents/{agent.public_id}/traffic-split").json()
    return [(a["version_number"], a["weight"]) for a in body["allocations"]]


def test_versions_are_numbered_per_agent(world: TenantWorld) -> None:
    agent = world.client.post("/v1/agents", {"name": "Sales"}, format="json").json()
    numbers = [
        world.client.post(f"/v1/agents/{agent['id']}/versions", {}, format="json").json()["number"]
        for _ in range(3)
    ]
    assert numbers == [1, 2, 3]


def test_publishing_lists_every_problem_at_once(world: TenantWorld) -> None:
    revision = PromptRevisionFactory(
        template=PromptTemplateFactory(tenant=world.tenant),
        body="For {{ clinic }}.",
        variables=[{"name": "clinic", "type": "string"}],
    )
    transfer = ToolFactory(
        tenant=world.tenant, kind="transfer_call", config={}, parameters={"type": "object"}
    )
    draft = world.client.post(
        f"/v1/agents/{world.agent.public_id}/versions",
        {
            "prompt_revision": revision.public_id,
            "tools": [transfer.public_id],
            "outcome_taxonomy": [{"label": "done", "resolved": False}],
            "silence_timeout_seconds": 900,
            "max_call_duration_seconds": 600,
        },
        format="json",
    ).json()
    response = world.client.post(f"/v1/versions/{draft['id']}/publish", {}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "publish_failed"
    assert {e["field"] for e in response.json()["errors"]} == {
        "variables.clinic",
        "transfer_targets",
        "silence_timeout_seconds",
        "outcome_taxonomy",
    }
    assert (
        AgentVersion.objects.for_tenant(world.tenant).get(public_id=draft["id"]).status == "draft"
    )


def test_draft_fields_are_checked_as_they_are_saved(world: TenantWorld) -> None:
    response = world.client.patch(
        f"/v1/versions/{world.version.public_id}",
        {
            "transfer_targets": [{"name": "desk", "destination": "555-1234"}],
            "languages": [],
            "turn_detection": {"type": "server_vad", "threshold": 3},
            "redaction": {"mode": "off", "patterns": [{"name": "x", "pattern": "("}]},
        },
        format="json",
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {
        "transfer_targets.0.destination",
        "languages",
        "turn_detection.threshold",
        "redaction.patterns.0.pattern",
    }
    assert (
        AgentVersion.objects.for_tenant(world.tenant).get(pk=world.version.pk).transfer_targets
        == []
    )


def test_a_published_version_never_changes(world: TenantWorld) -> None:
    version = world.published_version
    patch = world.client.patch(
        f"/v1/versions/{version.public_id}", {"voice": "echo"}, format="json"
    )
    assert patch.status_code == 409
    assert patch.json()["code"] == "version_immutable"
    assert world.client.delete(f"/v1/versions/{version.public_id}").status_code == 409
    # Below the application, the database refuses too: fields, deletion and tool links.
    for statement, params in (
        ("UPDATE agents_agentversion SET voice = 'echo' WHERE id = %s", [version.pk]),
        ("DELETE FROM agents_agentversion WHERE id = %s", [version.pk]),
        (
            "INSERT INTO agents_versiontool (tenant_id, version_id, tool_id) VALUES (%s, %s, %s)",
            [world.tenant.pk, version.pk, world.tool.pk],
        ),
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    assert AgentVersion.objects.for_tenant(world.tenant).get(pk=version.pk).voice == version.voice


def test_publishing_fixes_the_instructions(world: TenantWorld) -> None:
    version = world.client.post(
        f"/v1/versions/{world.version.public_id}/publish", {}, format="json"
    ).json()
    assert version["status"] == "published"
    assert version["instructions"] == "You answer the phone for Acme. Be brief and kind."
    assert version["published_by"] == f"{world.api_key.name} ({world.api_key.prefix}…)"
    assert split_of(world) == [(version["number"], 100)]  # activate: it takes the calls
    events = AuditEvent.objects.for_tenant(world.tenant).filter(target_id=world.version.public_id)
    assert "version.publish" in {e.action for e in events}


def test_publish_without_activating_leaves_the_split(world: TenantWorld) -> None:
    before = split_of(world)
    world.client.post(
        f"/v1/versions/{world.version.public_id}/publish", {"activate": False}, format="json"
    )
    assert split_of(world) == before


def test_a_new_draft_copies_a_version(world: TenantWorld) -> None:
    copy = world.client.post(
        f"/v1/agents/{world.agent.public_id}/versions",
        {"based_on": world.published_version.public_id, "voice": "sage"},
        format="json",
    ).json()
    assert copy["status"] == "draft"
    assert copy["voice"] == "sage"
    assert copy["prompt_revision"] == world.published_version.prompt_revision.public_id
    assert (
        copy["outcome_taxonomy"]
        == world.client.get(f"/v1/versions/{world.published_version.public_id}").json()[
            "outcome_taxonomy"
        ]
    )


def test_traffic_split_rules(world: TenantWorld) -> None:
    other = published_version(agent=world.agent)
    url = f"/v1/agents/{world.agent.public_id}/traffic-split"

    def put(allocations):
        return world.client.put(url, {"allocations": allocations}, format="json")

    ok = put(
        [
            {"version": world.published_version.public_id, "weight": 90},
            {"version": other.public_id, "weight": 10},
        ]
    )
    assert ok.status_code == 200
    assert split_of(world) == sorted([(world.published_version.number, 90), (other.number, 10)])

    bad_sum = put([{"version": other.public_id, "weight": 50}])
    assert bad_sum.json()["detail"] == "Weights add up to 50, not 100."
    draft = put([{"version": world.version.public_id, "weight": 100}])
    assert "publish it first" in draft.json()["detail"]
    elsewhere = published_version()
    foreign = put([{"version": elsewhere.public_id, "weight": 100}])  # another tenant's version
    assert foreign.json()["code"] == "unknown_reference"
    twice = put(
        [{"version": other.public_id, "weight": 50}, {"version": other.public_id, "weight": 50}]
    )
    assert twice.status_code == 400
    assert split_of(world) == sorted([(world.published_version.number, 90), (other.number, 10)])


def test_rollback_is_a_new_event_not_a_rewrite(world: TenantWorld) -> None:
    old = world.published_version
    new = published_version(agent=world.agent)
    world.client.put(
        f"/v1/agents/{world.agent.public_id}/traffic-split",
        {"allocations": [{"version": new.public_id, "weight": 100}]},
        format="json",
    )
    response = world.client.post(
        f"/v1/agents/{world.agent.public_id}/rollback", {"version": old.public_id}, format="json"
    )
    assert response.status_code == 200
    assert split_of(world) == [(old.number, 100)]
    assert AgentVersion.objects.for_tenant(world.tenant).get(pk=new.pk).status == "published"
    event = AuditEvent.objects.for_tenant(world.tenant).get(action="agent.rollback")
    assert event.changes["traffic_split"] == [[[new.public_id, 100]], [[old.public_id, 100]]]


def test_archiving(world: TenantWorld) -> None:
    busy = world.client.post(f"/v1/versions/{world.published_version.public_id}/archive")
    assert busy.status_code == 409
    idle = published_version(agent=world.agent)
    archived = world.client.post(f"/v1/versions/{idle.public_id}/archive").json()
    assert archived["status"] == "archived"
    rollback = world.client.post(
        f"/v1/agents/{world.agent.public_id}/rollback", {"version": idle.public_id}, format="json"
    )
    assert rollback.status_code == 400


def test_diff_shows_fields_and_instructions(world: TenantWorld) -> None:
    revision = PromptRevisionFactory(
        template=world.prompt_template, body="You answer for {{ company }}.\nBe kind."
    )
    newer = AgentVersionFactory(
        agent=world.agent,
        prompt_revision=revision,
        voice="cedar",
        transfer_targets=[{"name": "desk", "destination": "+14155550123"}],
    )
    body = world.client.get(
        f"/v1/versions/{newer.public_id}/diff?against={world.published_version.public_id}"
    ).json()
    assert body["changes"]["voice"] == {"from": "marin", "to": "cedar"}
    assert body["changes"]["prompt_revision"] == {
        "from": world.prompt_revision.public_id,
        "to": revision.public_id,
    }
    assert "transfer_targets" in body["changes"]
    assert "-You answer the phone for Acme. Be brief and kind." in body["instructions_diff"]
    assert "+You answer for Acme." in body["instructions_diff"]
    missing = world.client.get(f"/v1/versions/{newer.public_id}/diff")
    assert missing.status_code == 400


def test_agent_limit(world: TenantWorld) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(max_agents=1)
    response = world.client.post("/v1/agents", {"name": "One too many"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "limit_exceeded"
    assert not Agent.objects.for_tenant(world.tenant).filter(name="One too many").exists()


def test_an_agent_answering_a_number_cannot_be_archived(world: TenantWorld) -> None:
    response = world.client.patch(
        f"/v1/agents/{world.agent.public_id}", {"status": "archived"}, format="json"
    )
    assert response.status_code == 409
    assert world.phone_number.e164 in response.json()["detail"]


def test_the_fallback_number_is_an_e164_number_or_none(world: TenantWorld) -> None:
    url = f"/v1/agents/{world.agent.public_id}"
    bad = world.client.patch(url, {"fallback_number": "front desk"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "fallback_number"
    created = world.client.post(
        "/v1/agents", {"name": "Night line", "fallback_number": "+14155550100"}, format="json"
    )
    assert created.json()["fallback_number"] == "+14155550100"
    assert (
        world.client.patch(url, {"fallback_number": "+14155550101"}, format="json").json()[
            "fallback_number"
        ]
        == "+14155550101"
    )
    assert (
        world.client.patch(url, {"fallback_number": ""}, format="json").json()["fallback_number"]
        == ""
    )
    world.agent.refresh_from_db()
    assert world.agent.fallback_number == ""


class TestExportImport:
    def _rich_agent(self, world: TenantWorld) -> Agent:
        v2 = published_version(
            agent=world.agent,
            voice="cedar",
            transfer_targets=[{"name": "desk", "destination": "+14155550123"}],
        )
        AgentVersionFactory(agent=world.agent, greeting="Hello from a draft")
        world.client.patch(
            f"/v1/agents/{world.agent.public_id}",
            {"fallback_number": "+14155550100"},
            format="json",
        )
        world.client.put(
            f"/v1/agents/{world.agent.public_id}/traffic-split",
            {
                "allocations": [
                    {"version": world.published_version.public_id, "weight": 90},
                    {"version": v2.public_id, "weight": 10},
                ]
            },
            format="json",
        )
        world.client.patch(
            f"/v1/versions/{world.version.public_id}",
            {"tools": [world.tool.public_id]},
            format="json",
        )
        return world.agent

    @pytest.mark.parametrize("format_", ["json", "yaml"])
    def test_round_trip_is_exact(
        self, world: TenantWorld, other_world: TenantWorld, format_: str
    ) -> None:
        agent = self._rich_agent(world)
        other_world.client.post(
            "/v1/tools",
            {"name": world.tool.name, "description": "Same name elsewhere", "kind": "end_call"},
            format="json",
        )
        exported = world.client.get(f"/v1/agents/{agent.public_id}/export?format={format_}")
        assert exported.status_code == 200
        if format_ == "yaml":
            assert exported["Content-Type"].startswith("application/yaml")
            document = yaml.safe_load(exported.content)
            imported = other_world.client.generic(
                "POST", "/v1/agents/import", exported.content, content_type="application/yaml"
            )
        else:
            document = exported.json()
            imported = other_world.client.post("/v1/agents/import", document, format="json")
        assert imported.status_code == 201, imported.content
        again = other_world.client.get(f"/v1/agents/{imported.json()['id']}/export").json()
        assert again == json.loads(json.dumps(document))
        versions = document["versions"]
        assert [v["status"] for v in versions] == ["published", "draft", "published", "draft"]
        assert document["traffic_split"] == [
            {"version": versions[0]["number"], "weight": 90},
            {"version": versions[2]["number"], "weight": 10},
        ]

    def test_importing_reuses_a_matching_prompt(self, world: TenantWorld) -> None:
        document = world.client.get(f"/v1/agents/{world.agent.public_id}/export").json()
        document["agent"]["name"] = "Copy"
        before = PromptRevision.objects.for_tenant(world.tenant).count()
        assert world.client.post("/v1/agents/import", document, format="json").status_code == 201
        assert PromptRevision.objects.for_tenant(world.tenant).count() == before

    def test_a_bad_document_changes_nothing(
        self, world: TenantWorld, other_world: TenantWorld
    ) -> None:
        document = world.client.get(f"/v1/agents/{self._rich_agent(world).public_id}/export").json()
        before = (
            Agent.objects.for_tenant(other_world.tenant).count(),
            TrafficAllocation.objects.for_tenant(other_world.tenant).count(),
        )
        missing_tool = other_world.client.post("/v1/agents/import", document, format="json")
        assert missing_tool.status_code == 400
        assert f"No tool named '{world.tool.name}'" in missing_tool.content.decode()

        document["versions"][0]["voice"] = "robot"
        document["versions"][1]["tools"] = []
        broken = other_world.client.post("/v1/agents/import", document, format="json")
        assert broken.status_code == 400
        assert broken.json()["errors"][0]["field"] == "versions.0.voice"
        assert (
            Agent.objects.for_tenant(other_world.tenant).count(),
            TrafficAllocation.objects.for_tenant(other_world.tenant).count(),
        ) == before

        shape = other_world.client.post(
            "/v1/agents/import",
            {"format": "other", "agent": {"fallback_number": "555"}, "versions": [{"number": 0}]},
            format="json",
        )
        assert {e["field"] for e in shape.json()["errors"]} >= {
            "format",
            "agent.name",
            "agent.fallback_number",
            "versions.0.number",
        }
