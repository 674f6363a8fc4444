"""Reads that the API, the console and the call runtime share."""

import difflib
import hashlib
import re
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import F

from agents.models import (
    Agent,
    AgentVersion,
    Chunk,
    Document,
    KnowledgeBase,
    PhoneNumber,
    Tool,
    TrafficAllocation,
    VersionKnowledgeBase,
    VersionTool,
)
from agents.versions import SCALAR_FIELDS
from tenants.models import Tenant
from tenants.rls import tenant_lookup

# --- Knowledge --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    document_id: str
    document_title: str
    text: str
    rank: float


WORD = re.compile(r"\w+", re.UNICODE)


def knowledge_search(
    *, tenant: Tenant, knowledge_bases: list[KnowledgeBase], query: str, limit: int = 5
) -> list[Passage]:
    """The best-matching passages, ranked. PostgreSQL full-text search in each knowledge base's
    language; on SQLite (the embedded default) a plain word-overlap score."""
    query = query.strip()
    if not query or not knowledge_bases:
        return []
    chunks = Chunk.objects.for_tenant(tenant).select_related("document")
    passages: list[Passage] = []
    words = [w for w in WORD.findall(query) if len(w) > 1][:32]
    if not words:
        return []
    if connection.vendor == "postgresql":
        for kb in knowledge_bases:
            # Any word may match (a caller's question rarely repeats a document's wording);
            # passages matching more of them, more often, rank higher.
            search = reduce(
                or_, (SearchQuery(w, config=kb.language, search_type="plain") for w in words)
            )
            ranked = (
                chunks.filter(knowledge_base=kb, search_vector=search)
                .annotate(rank=SearchRank(F("search_vector"), search))
                .order_by("-rank", "position")[:limit]
            )
            passages += [
                Passage(c.document.public_id, c.document.title, c.text, float(c.rank))
                for c in ranked
            ]
    else:
        lowered = {w.lower() for w in words if len(w) > 2}
        for chunk in chunks.filter(knowledge_base__in=knowledge_bases):
            text = chunk.text.lower()
            score = sum(text.count(word) for word in lowered)
            if score:
                passages.append(
                    Passage(
                        chunk.document.public_id, chunk.document.title, chunk.text, float(score)
                    )
                )
    passages.sort(key=lambda p: -p.rank)
    return passages[:limit]


# --- Routing ----------------------------------------------------------------------------------


def active_number(e164: str) -> PhoneNumber | None:
    """The number a call was placed to, whichever tenant holds it (calls arrive before the tenant
    is known)."""
    with tenant_lookup("the number a call was placed to"):
        return (
            PhoneNumber.all_tenants.select_related("tenant", "agent", "carrier_account")
            .filter(e164=e164, status=PhoneNumber.Status.ACTIVE)
            .first()
        )


def traffic_split(agent: Agent) -> list[TrafficAllocation]:
    return list(
        TrafficAllocation.objects.for_tenant(agent.tenant)
        .filter(agent=agent)
        .select_related("version")
        .order_by("version__number")
    )


def caller_bucket(seed: str, caller: str) -> int:
    """A stable number in 0..9999 for this caller under this split."""
    digest = hashlib.sha256(f"{seed}:{caller}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def version_for_call(number: PhoneNumber, caller: str) -> AgentVersion | None:
    """The published version that answers `caller` on `number`: the agent's traffic split picks
    it by weight, and the same caller gets the same version for as long as the split stands."""
    agent = number.agent
    if agent is None or agent.status != Agent.Status.ACTIVE:
        return None
    return pick_version(traffic_split(agent), agent.split_seed, caller)


def pick_version(
    allocations: list[TrafficAllocation], seed: str, caller: str
) -> AgentVersion | None:
    """Deal `caller` into one of the split's versions, in proportion to the weights."""
    bucket = caller_bucket(seed, caller)
    threshold = 0
    for allocation in allocations:
        threshold += allocation.weight * 100
        if bucket < threshold:
            return allocation.version
    return None


# --- Versions ---------------------------------------------------------------------------------


def tools_for_version(version: AgentVersion) -> list[Tool]:
    links = VersionTool.objects.for_tenant(version.tenant).filter(version=version)
    return list(
        Tool.objects.for_tenant(version.tenant)
        .filter(pk__in=links.values("tool"))
        .select_related("integration")
        .order_by("name")
    )


def knowledge_bases_for_version(version: AgentVersion) -> list[KnowledgeBase]:
    links = VersionKnowledgeBase.objects.for_tenant(version.tenant).filter(version=version)
    return list(
        KnowledgeBase.objects.for_tenant(version.tenant)
        .filter(pk__in=links.values("knowledge_base"))
        .order_by("name")
    )


def version_links(version: AgentVersion) -> tuple[list[str], list[str]]:
    """Names of the tools and knowledge bases a version uses, sorted."""
    return (
        [t.name for t in tools_for_version(version)],
        [k.name for k in knowledge_bases_for_version(version)],
    )


def rendered_instructions(version: AgentVersion) -> str:
    """Published versions keep the text they were published with; drafts render it now (or give
    an empty text while their template cannot render)."""
    if not version.is_draft or version.prompt_revision is None:
        return version.instructions
    from agents import prompts

    try:
        revision = version.prompt_revision
        return prompts.render(revision.body, revision.variables, version.prompt_variables)
    except prompts.TemplateProblems:
        return ""


def version_diff(old: AgentVersion, new: AgentVersion) -> dict[str, Any]:
    """Field by field, what changed from `old` to `new`, and a unified diff of the instructions."""
    changes: dict[str, Any] = {}
    for field in SCALAR_FIELDS:
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            changes[field] = {"from": before, "to": after}
    old_revision = old.prompt_revision.public_id if old.prompt_revision else None
    new_revision = new.prompt_revision.public_id if new.prompt_revision else None
    if old_revision != new_revision:
        changes["prompt_revision"] = {"from": old_revision, "to": new_revision}
    for name, before, after in zip(
        ("tools", "knowledge_bases"), version_links(old), version_links(new), strict=True
    ):
        if before != after:
            changes[name] = {"from": before, "to": after}
    old_text, new_text = rendered_instructions(old), rendered_instructions(new)
    # Lines are compared without their ends: a text's last line has none, and compared with
    # them it would run into the next line of the diff.
    diff = difflib.unified_diff(
        old_text.splitlines(),
        new_text.splitlines(),
        fromfile=f"version {old.number}",
        tofile=f"version {new.number}",
        lineterm="",
    )
    return {
        "from": old.public_id,
        "to": new.public_id,
        "changes": changes,
        "instructions_diff": "".join(f"{line}\n" for line in diff),
    }


def documents_of(kb: KnowledgeBase) -> Any:
    return Document.objects.for_tenant(kb.tenant).filter(knowledge_base=kb)


# --- Export -----------------------------------------------------------------------------------

EXPORT_FORMAT = "switchboard.agent/v1"
# The prompt values travel with the prompt in an export.
EXPORTED_VERSION_FIELDS = tuple(f for f in SCALAR_FIELDS if f != "prompt_variables")


def agent_export(agent: Agent) -> dict[str, Any]:
    """The agent as a self-contained document: importing it elsewhere recreates the same agent,
    and exporting that gives this document back. Tools and knowledge bases are referred to by
    name (they hold credentials and data, which are not exported)."""
    from agents.models import PromptTemplate

    versions = (
        AgentVersion.objects.for_tenant(agent.tenant)
        .filter(agent=agent)
        .select_related("prompt_revision")
        .order_by("number")
    )
    exported = []
    for version in versions:
        item: dict[str, Any] = {"number": version.number, "status": version.status}
        item.update({field: getattr(version, field) for field in EXPORTED_VERSION_FIELDS})
        revision = version.prompt_revision
        if revision is not None:
            template = PromptTemplate.objects.for_tenant(agent.tenant).get(pk=revision.template_id)
            item["prompt"] = {
                "template": template.name,
                "body": revision.body,
                "variables": revision.variables,
                "values": version.prompt_variables,
            }
        item["tools"], item["knowledge_bases"] = version_links(version)
        exported.append(item)
    return {
        "format": EXPORT_FORMAT,
        "agent": {
            "name": agent.name,
            "description": agent.description,
            "fallback_number": agent.fallback_number,
        },
        "versions": exported,
        "traffic_split": [
            {"version": a.version.number, "weight": a.weight} for a in traffic_split(agent)
        ],
    }
