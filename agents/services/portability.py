"""Importing an agent from the document agents.selectors.agent_export produces."""

from typing import Any

from django.db import transaction

from agents.models import Agent, AgentVersion, KnowledgeBase, Tool
from agents.selectors import EXPORT_FORMAT, EXPORTED_VERSION_FIELDS
from agents.services import invalid
from agents.services.agents import (
    agent_create,
    agent_set_traffic_split,
    version_archive,
    version_create,
    version_publish,
)
from agents.services.prompts import prompt_revision_for
from agents.versions import E164
from tenants.access import Actor
from tenants.errors import InvalidInput
from tenants.models import Tenant
from tenants.services import audit_event_record

STATUSES = ("draft", "published", "archived")


def _shape_problems(document: Any) -> list[tuple[str, str]]:
    if not isinstance(document, dict):
        return [("document", "An agent document is an object.")]
    problems: list[tuple[str, str]] = []
    if document.get("format") != EXPORT_FORMAT:
        problems.append(("format", f"Expected format {EXPORT_FORMAT!r}."))
    agent = document.get("agent")
    if not isinstance(agent, dict) or not isinstance(agent.get("name"), str):
        problems.append(("agent.name", "The agent needs a name."))
    if (
        isinstance(agent, dict)
        and agent.get("fallback_number")
        and not (isinstance(agent["fallback_number"], str) and E164.match(agent["fallback_number"]))
    ):
        problems.append(("agent.fallback_number", "An E.164 number (+15551234567), or empty."))
    versions = document.get("versions", [])
    if not isinstance(versions, list):
        return [*problems, ("versions", "A list of versions.")]
    last = 0
    for index, version in enumerate(versions):
        where = f"versions.{index}"
        if not isinstance(version, dict):
            problems.append((where, "Each version is an object."))
            continue
        number = version.get("number")
        if not isinstance(number, int) or number <= last:
            problems.append((f"{where}.number", "Numbers are whole numbers in increasing order."))
        else:
            last = number
        if version.get("status") not in STATUSES:
            problems.append((f"{where}.status", f"Status is one of {', '.join(STATUSES)}."))
        known = {"number", "status", "prompt", "tools", "knowledge_bases", *EXPORTED_VERSION_FIELDS}
        for key in sorted(set(version) - known):
            problems.append((f"{where}.{key}", f"Unknown field {key}."))
        prompt = version.get("prompt")
        if prompt is not None and (
            not isinstance(prompt, dict) or not isinstance(prompt.get("template"), str)
        ):
            problems.append(
                (f"{where}.prompt", "The prompt names its template and gives its body.")
            )
        for key in ("tools", "knowledge_bases"):
            if not isinstance(version.get(key, []), list):
                problems.append((f"{where}.{key}", "A list of names."))
    split = document.get("traffic_split", [])
    if not isinstance(split, list) or not all(isinstance(a, dict) for a in split):
        problems.append(("traffic_split", "A list of {version, weight}."))
    return problems


def agent_import(*, tenant: Tenant, actor: Actor, document: Any) -> Agent:
    """Create an agent, its versions (published ones are checked as on publishing) and its
    traffic split from a document. Everything is created, or nothing is."""
    actor.require("agents:write")
    problems = _shape_problems(document)
    if problems:
        raise invalid(problems, "The agent document has problems")
    versions = document.get("versions", [])
    if any(v["status"] != "draft" for v in versions) or document.get("traffic_split"):
        actor.require("agents:publish")

    tools = {t.name: t for t in Tool.objects.for_tenant(tenant)}
    kbs = {k.name: k for k in KnowledgeBase.objects.for_tenant(tenant)}
    for index, version in enumerate(versions):
        for name in version.get("tools", []):
            if name not in tools:
                problems.append(
                    (f"versions.{index}.tools", f"No tool named {name!r} in this account.")
                )
        for name in version.get("knowledge_bases", []):
            if name not in kbs:
                problems.append(
                    (f"versions.{index}.knowledge_bases", f"No knowledge base named {name!r} here.")
                )
    if problems:
        raise invalid(problems, "The agent document refers to things this account lacks")

    with transaction.atomic():
        agent = agent_create(
            tenant=tenant,
            actor=actor,
            name=document["agent"]["name"],
            description=document["agent"].get("description", ""),
            fallback_number=document["agent"].get("fallback_number", ""),
        )
        by_number: dict[int, AgentVersion] = {}
        for index, item in enumerate(versions):
            fields = {key: item[key] for key in EXPORTED_VERSION_FIELDS if key in item}
            prompt = item.get("prompt")
            if prompt is not None:
                fields["prompt_revision"] = prompt_revision_for(
                    tenant=tenant,
                    actor=actor,
                    template_name=prompt["template"],
                    body=prompt.get("body", ""),
                    variables=prompt.get("variables", []),
                )
                fields["prompt_variables"] = prompt.get("values", {})
            try:
                version = version_create(
                    agent=agent,
                    actor=actor,
                    number=item["number"],
                    tools=[tools[n] for n in item.get("tools", [])],
                    knowledge_bases=[kbs[n] for n in item.get("knowledge_bases", [])],
                    **fields,
                )
                if item["status"] != "draft":
                    version_publish(version=version, actor=actor, activate=False)
                if item["status"] == "archived":
                    version_archive(version=version, actor=actor)
            except InvalidInput as exc:
                raise InvalidInput(
                    f"Version {item['number']}: {exc.detail}",
                    errors={
                        f"versions.{index}.{field}": messages
                        for field, messages in exc.errors.items()
                    },
                    code=exc.code,
                ) from None
            by_number[item["number"]] = version
        split = document.get("traffic_split", [])
        if split:
            missing = [a.get("version") for a in split if a.get("version") not in by_number]
            if missing:
                raise InvalidInput.field(
                    "traffic_split", f"No versions numbered {missing} in the document."
                )
            agent_set_traffic_split(
                agent=agent,
                actor=actor,
                allocations=[(by_number[a["version"]], a.get("weight")) for a in split],
            )
        audit_event_record(
            actor=actor,
            action="agent.import",
            target=agent,
            changes={"versions": [None, len(versions)]},
        )
    return agent
