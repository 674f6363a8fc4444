from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from agents import prompts, versions
from agents.models import (
    Agent,
    AgentVersion,
    KnowledgeBase,
    PhoneNumber,
    PromptRevision,
    Tool,
    TrafficAllocation,
    VersionKnowledgeBase,
    VersionTool,
)
from agents.models.agents import new_split_seed
from agents.selectors import (
    knowledge_bases_for_version,
    tools_for_version,
    traffic_split,
    version_links,
)
from agents.services import invalid, require_name
from agents.services.prompts import declarations_with_new_placeholders, prompt_revision_for
from agents.services.tools import normalise_tool
from tenants.access import Actor
from tenants.errors import Conflict, InvalidInput
from tenants.models import Tenant
from tenants.services import audit_event_record

# --- Agents -----------------------------------------------------------------------------------


def _fallback_number(value: Any) -> str:
    """Where callers go when the model cannot take the call: an E.164 number, or none."""
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not versions.E164.match(value):
        raise InvalidInput.field(
            "fallback_number", f"{value!r} is not an E.164 number (+15551234567)."
        )
    return value


def agent_create(
    *, tenant: Tenant, actor: Actor, name: str, description: str = "", fallback_number: str = ""
) -> Agent:
    actor.require("agents:write")
    name = require_name(name)
    fallback_number = _fallback_number(fallback_number)
    with transaction.atomic():
        # Lock the tenant row so concurrent creations cannot both slip under the limit.
        Tenant.objects.select_for_update().get(pk=tenant.pk)
        active = Agent.objects.for_tenant(tenant).filter(status=Agent.Status.ACTIVE).count()
        if active >= tenant.max_agents:
            raise InvalidInput(
                f"This account may have {tenant.max_agents} active agents; archive one first.",
                code="limit_exceeded",
            )
        try:
            with transaction.atomic():
                agent = Agent.objects.create(
                    tenant=tenant,
                    name=name,
                    description=description,
                    fallback_number=fallback_number,
                )
        except IntegrityError:
            raise InvalidInput.field("name", f"An agent named {name!r} exists.") from None
        changes: dict[str, list[Any]] = {"name": [None, name]}
        if fallback_number:
            changes["fallback_number"] = [None, fallback_number]
        audit_event_record(actor=actor, action="agent.create", target=agent, changes=changes)
    return agent


def agent_update(*, agent: Agent, actor: Actor, **fields: Any) -> Agent:
    actor.require("agents:write")
    if "name" in fields:
        fields["name"] = require_name(fields["name"])
    if "fallback_number" in fields:
        fields["fallback_number"] = _fallback_number(fields["fallback_number"])
    if "status" in fields:
        if fields["status"] not in Agent.Status.values:
            raise InvalidInput.field("status", "Status is active or archived.")
        numbers = PhoneNumber.objects.for_tenant(agent.tenant).filter(
            agent=agent, status=PhoneNumber.Status.ACTIVE
        )
        if fields["status"] == Agent.Status.ARCHIVED and numbers.exists():
            raise Conflict(
                f"Numbers still ring this agent: {', '.join(n.e164 for n in numbers)}. "
                "Reassign them first.",
                code="in_use",
            )
    changes = {k: [getattr(agent, k), v] for k, v in fields.items() if getattr(agent, k) != v}
    if not changes:
        return agent
    try:
        with transaction.atomic():
            for key, (_, value) in changes.items():
                setattr(agent, key, value)
            agent.save()
            audit_event_record(actor=actor, action="agent.update", target=agent, changes=changes)
    except IntegrityError:
        raise InvalidInput.field("name", f"An agent named {fields['name']!r} exists.") from None
    return agent


# --- Versions ---------------------------------------------------------------------------------

SCALAR_FIELDS = versions.SCALAR_FIELDS


def _set_links(
    version: AgentVersion, tools: list[Tool] | None, knowledge_bases: list[KnowledgeBase] | None
) -> None:
    tenant = version.tenant
    if tools is not None:
        VersionTool.objects.for_tenant(tenant).filter(version=version).delete()
        VersionTool.all_tenants.bulk_create(
            VersionTool(tenant=tenant, version=version, tool=t) for t in set(tools)
        )
    if knowledge_bases is not None:
        VersionKnowledgeBase.objects.for_tenant(tenant).filter(version=version).delete()
        VersionKnowledgeBase.all_tenants.bulk_create(
            VersionKnowledgeBase(tenant=tenant, version=version, knowledge_base=kb)
            for kb in set(knowledge_bases)
        )


def _check_draft_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(versions.EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    problems = versions.field_problems(fields)
    if problems:
        raise invalid(problems, "The version has problems")


def _snapshot(version: AgentVersion) -> dict[str, Any]:
    tools, kbs = version_links(version)
    data = {name: getattr(version, name) for name in SCALAR_FIELDS}
    data["prompt_revision"] = version.prompt_revision.public_id if version.prompt_revision else None
    return {**data, "tools": tools, "knowledge_bases": kbs}


def version_create(
    *,
    agent: Agent,
    actor: Actor,
    based_on: AgentVersion | None = None,
    number: int | None = None,
    **fields: Any,
) -> AgentVersion:
    """A new draft, numbered after the agent's last version (or `number`, when an import keeps
    its numbering), copying `based_on` if given."""
    actor.require("agents:write")
    tools, kbs = fields.pop("tools", None), fields.pop("knowledge_bases", None)
    _check_draft_fields(fields)
    with transaction.atomic():
        Agent.objects.for_tenant(agent.tenant).select_for_update().get(pk=agent.pk)
        latest = (
            AgentVersion.objects.for_tenant(agent.tenant)
            .filter(agent=agent)
            .aggregate(n=Max("number"))["n"]
            or 0
        )
        if number is not None and number <= latest:
            raise InvalidInput.field("number", f"Version numbers only grow; the last is {latest}.")
        number = number or latest + 1
        initial: dict[str, Any] = {}
        if based_on is not None:
            initial = {name: getattr(based_on, name) for name in SCALAR_FIELDS}
            initial["prompt_revision"] = based_on.prompt_revision
            tools = tools if tools is not None else tools_for_version(based_on)
            kbs = kbs if kbs is not None else knowledge_bases_for_version(based_on)
        version = AgentVersion.objects.create(
            tenant=agent.tenant, agent=agent, number=number, **{**initial, **fields}
        )
        _set_links(version, tools, kbs)
        audit_event_record(
            actor=actor,
            action="version.create",
            target=version,
            changes={
                "agent": [None, agent.public_id],
                "based_on": [None, based_on.public_id if based_on else None],
            },
        )
    return version


def version_update(*, version: AgentVersion, actor: Actor, **fields: Any) -> AgentVersion:
    """Edit a draft. Published and archived versions never change: start a new draft instead."""
    actor.require("agents:write")
    if not version.is_draft:
        raise Conflict(
            f"Version {version.number} is {version.status} and cannot change; "
            "create a new draft from it.",
            code="version_immutable",
        )
    tools, kbs = fields.pop("tools", None), fields.pop("knowledge_bases", None)
    _check_draft_fields(fields)
    with transaction.atomic():
        before = _snapshot(version)
        for key, value in fields.items():
            setattr(version, key, value)
        version.save()
        _set_links(version, tools, kbs)
        after = _snapshot(version)
        changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        if changes:
            audit_event_record(
                actor=actor, action="version.update", target=version, changes=changes
            )
    return version


def _revision_for_text(version: AgentVersion, actor: Actor, text: str) -> PromptRevision | None:
    """The revision holding `text`: the version's own when unchanged, else a revision of the same
    template (of a template named after the agent when the version had none), declaring any new
    placeholder as a variable."""
    current = version.prompt_revision
    if not text:
        return None
    if current is not None and current.body.strip() == text:
        return current
    declared = list(current.variables) if current else []
    return prompt_revision_for(
        tenant=version.tenant,
        actor=actor,
        template_name=current.template.name if current else version.agent.name,
        body=text,
        variables=declarations_with_new_placeholders(text, declared),
    )


def version_update_from_text(
    *, version: AgentVersion, actor: Actor, instructions: str, **fields: Any
) -> AgentVersion:
    """Edit a draft whose instructions arrive as plain text (the console's editor) rather than
    as a chosen prompt revision; the revision and the version change together or not at all."""
    with transaction.atomic():
        fields["prompt_revision"] = _revision_for_text(version, actor, instructions)
        return version_update(version=version, actor=actor, **fields)


def version_delete(*, version: AgentVersion, actor: Actor) -> None:
    actor.require("agents:write")
    if not version.is_draft:
        raise Conflict(
            f"Version {version.number} is {version.status}; only drafts can be deleted.",
            code="version_immutable",
        )
    with transaction.atomic():
        audit_event_record(actor=actor, action="version.delete", target=version)
        version.delete()


def publish_problems(version: AgentVersion) -> list[tuple[str, str]]:
    """Everything a call will need, checked at once."""
    problems = versions.field_problems({name: getattr(version, name) for name in SCALAR_FIELDS})
    revision = version.prompt_revision
    if revision is None:
        problems.append(
            ("prompt_revision", "Choose the prompt revision that gives the instructions.")
        )
    else:
        try:
            prompts.render(revision.body, revision.variables, version.prompt_variables)
        except prompts.TemplateProblems as exc:
            problems += exc.problems
    tools = tools_for_version(version)
    for tool in tools:
        try:
            normalise_tool(tool.kind, tool.parameters, tool.config, tool.integration)
        except InvalidInput as exc:
            problems.append(("tools", f"Tool {tool.name} cannot run: {exc.detail}"))
        if tool.kind == Tool.Kind.TRANSFER_CALL and not version.transfer_targets:
            problems.append(
                ("transfer_targets", f"Tool {tool.name} transfers calls, but no target is set.")
            )
        if tool.kind == Tool.Kind.SEARCH_KNOWLEDGE and not knowledge_bases_for_version(version):
            problems.append(
                ("knowledge_bases", f"Tool {tool.name} searches knowledge, but none is attached.")
            )
    if version.silence_timeout_seconds > version.max_call_duration_seconds:
        problems.append(
            ("silence_timeout_seconds", "The silence timeout is longer than the longest call.")
        )
    if not any(
        item.get("resolved") is True for item in version.outcome_taxonomy if isinstance(item, dict)
    ):
        problems.append(
            (
                "outcome_taxonomy",
                "Mark at least one outcome as resolved, or nothing is ever billed.",
            )
        )
    return problems


def _replace_split(agent: Agent, allocations: list[tuple[AgentVersion, int]]) -> list[list[Any]]:
    before = [[a.version.public_id, a.weight] for a in traffic_split(agent)]
    TrafficAllocation.objects.for_tenant(agent.tenant).filter(agent=agent).delete()
    TrafficAllocation.all_tenants.bulk_create(
        TrafficAllocation(tenant=agent.tenant, agent=agent, version=version, weight=weight)
        for version, weight in allocations
    )
    agent.split_seed = new_split_seed()  # a new split: callers are dealt out afresh
    agent.save(update_fields=["split_seed", "updated_at"])
    return before


def version_publish(*, version: AgentVersion, actor: Actor, activate: bool = True) -> AgentVersion:
    """Freeze a draft after checking everything a call needs; every problem is reported at once.
    With `activate`, the version then takes all of the agent's calls."""
    actor.require("agents:publish")
    if not version.is_draft:
        raise Conflict(
            f"Version {version.number} is already {version.status}.", code="version_immutable"
        )
    problems = publish_problems(version)
    if problems:
        raise invalid(problems, "The version cannot be published", code="publish_failed")
    assert version.prompt_revision is not None
    with transaction.atomic():
        version.instructions = prompts.render(
            version.prompt_revision.body,
            version.prompt_revision.variables,
            version.prompt_variables,
        )
        version.status = AgentVersion.Status.PUBLISHED
        version.published_at = timezone.now()
        version.published_by = actor.label
        version.save()
        audit_event_record(
            actor=actor,
            action="version.publish",
            target=version,
            changes={"status": ["draft", "published"]},
        )
        if activate:
            before = _replace_split(version.agent, [(version, 100)])
            audit_event_record(
                actor=actor,
                action="agent.traffic_split.update",
                target=version.agent,
                changes={"traffic_split": [before, [[version.public_id, 100]]]},
            )
    return version


def version_archive(*, version: AgentVersion, actor: Actor) -> AgentVersion:
    actor.require("agents:publish")
    if version.status != AgentVersion.Status.PUBLISHED:
        raise Conflict(
            f"Only published versions are archived; this one is {version.status}.",
            code="version_immutable",
        )
    if TrafficAllocation.objects.for_tenant(version.tenant).filter(version=version).exists():
        raise Conflict(
            "This version is taking calls; change the traffic split first.", code="in_use"
        )
    with transaction.atomic():
        version.status = AgentVersion.Status.ARCHIVED
        version.archived_at = timezone.now()
        version.save(update_fields=["status", "archived_at"])
        audit_event_record(
            actor=actor,
            action="version.archive",
            target=version,
            changes={"status": ["published", "archived"]},
        )
    return version


# --- Traffic ----------------------------------------------------------------------------------


def agent_set_traffic_split(
    *, agent: Agent, actor: Actor, allocations: list[tuple[AgentVersion, int]]
) -> list[TrafficAllocation]:
    """Share the agent's calls between published versions; weights are whole percents summing
    to 100. Callers are reassigned afresh under a new split."""
    actor.require("agents:publish")
    problems: list[tuple[str, str]] = []
    if not allocations:
        problems.append(("allocations", "Give at least one version a weight."))
    seen: set[int] = set()
    for index, (version, weight) in enumerate(allocations):
        if version.agent_id != agent.pk:
            problems.append(
                (
                    f"allocations.{index}.version",
                    f"{version.public_id} is not a version of this agent.",
                )
            )
        elif version.status != AgentVersion.Status.PUBLISHED:
            problems.append(
                (
                    f"allocations.{index}.version",
                    f"Version {version.number} is {version.status}; publish it first.",
                )
            )
        if version.pk in seen:
            problems.append(
                (f"allocations.{index}.version", f"Version {version.number} appears twice.")
            )
        seen.add(version.pk)
        if not (isinstance(weight, int) and 1 <= weight <= 100):
            problems.append(
                (f"allocations.{index}.weight", "A weight is a whole percent from 1 to 100.")
            )
    if allocations and sum(w for _, w in allocations if isinstance(w, int)) != 100:
        problems.append(
            ("allocations", f"Weights add up to {sum(w for _, w in allocations)}, not 100.")
        )
    if problems:
        raise invalid(problems, "The traffic split has problems")
    with transaction.atomic():
        Agent.objects.for_tenant(agent.tenant).select_for_update().get(pk=agent.pk)
        before = _replace_split(agent, allocations)
        after = [[v.public_id, w] for v, w in sorted(allocations, key=lambda a: a[0].number)]
        audit_event_record(
            actor=actor,
            action="agent.traffic_split.update",
            target=agent,
            changes={"traffic_split": [before, after]},
        )
    return traffic_split(agent)


def agent_rollback(*, agent: Agent, actor: Actor, version: AgentVersion) -> list[TrafficAllocation]:
    """Send all calls to an earlier published version again. History is untouched: this is a
    new audit event and a new split, not an edit of any version."""
    actor.require("agents:publish")
    if version.agent_id != agent.pk:
        raise InvalidInput.field("version", f"{version.public_id} is not a version of this agent.")
    if version.status != AgentVersion.Status.PUBLISHED:
        raise InvalidInput.field(
            "version",
            f"Version {version.number} is {version.status}; roll back to a published one.",
        )
    with transaction.atomic():
        Agent.objects.for_tenant(agent.tenant).select_for_update().get(pk=agent.pk)
        before = _replace_split(agent, [(version, 100)])
        audit_event_record(
            actor=actor,
            action="agent.rollback",
            target=agent,
            changes={"traffic_split": [before, [[version.public_id, 100]]]},
        )
    return traffic_split(agent)
