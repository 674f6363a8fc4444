"""Running a tool: what the admin's "test" button and the live call both use.

HTTP and connector tools make their request here. Built-in tools (transfer, end call) return
the action the call runtime must carry out; knowledge search returns passages.
"""

import time
from dataclasses import dataclass
from typing import Any

from agents import http_requests
from agents.connectors import CONNECTORS
from agents.integrations import integration_kinds
from agents.models import AgentVersion, KnowledgeBase, Tool
from agents.schemas import argument_problems
from agents.selectors import knowledge_bases_for_version, knowledge_search


@dataclass
class ToolOutcome:
    ok: bool
    result: Any
    error: str = ""
    status: int | None = None
    duration_ms: float = 0.0
    # For built-ins: what the call must do, e.g. {"type": "transfer", "destination": "+1…"}.
    action: dict[str, Any] | None = None


def _auth_headers(tool: Tool) -> dict[str, str]:
    integration = tool.integration
    if integration is None:
        return {}
    return integration_kinds()[integration.kind].auth(integration.config, integration.secrets)


def _http_spec(tool: Tool) -> http_requests.RequestSpec:
    config = tool.config
    if tool.kind == Tool.Kind.CONNECTOR:
        connector = CONNECTORS[config["connector"]]
        operation = connector.operations[config["operation"]]
        assert tool.integration is not None
        return http_requests.RequestSpec(
            method=operation.method,
            url=connector.url_base(tool.integration.config) + operation.path,
            query=operation.query or {},
            body=operation.body,
            response_mapping=operation.response_mapping or {},
        )
    return http_requests.RequestSpec(
        method=config.get("method", "GET"),
        url=config["url"],
        headers=config.get("headers", {}),
        query=config.get("query", {}),
        body=config.get("body"),
        response_mapping=config.get("response_mapping", {}),
        timeout_seconds=float(config.get("timeout_seconds", 10)),
    )


def _knowledge_bases(tool: Tool, version: AgentVersion | None) -> list[KnowledgeBase]:
    """The version's knowledge bases; tried outside a call, every one of the tenant's."""
    if version is not None:
        return knowledge_bases_for_version(version)
    return list(KnowledgeBase.objects.for_tenant(tool.tenant))


def tool_run(tool: Tool, arguments: Any, *, version: AgentVersion | None = None) -> ToolOutcome:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    if not isinstance(arguments, dict):
        return ToolOutcome(False, None, "Arguments are an object.")
    problems = argument_problems(tool.parameters, arguments)
    if problems:
        return ToolOutcome(
            False, None, "Invalid arguments: " + "; ".join(problems), duration_ms=elapsed()
        )

    if tool.kind in (Tool.Kind.HTTP, Tool.Kind.CONNECTOR):
        response = http_requests.send(_http_spec(tool), arguments, _auth_headers(tool))
        return ToolOutcome(
            response.ok, response.data, response.error, response.status, response.duration_ms
        )

    if tool.kind == Tool.Kind.SEARCH_KNOWLEDGE:
        passages = knowledge_search(
            tenant=tool.tenant,
            knowledge_bases=_knowledge_bases(tool, version),
            query=arguments["query"],
            limit=int(tool.config.get("limit", 3)),
        )
        result = [{"document": p.document_title, "text": p.text} for p in passages]
        return ToolOutcome(True, result, duration_ms=elapsed())

    if tool.kind == Tool.Kind.END_CALL:
        reason = arguments.get("reason", "")
        return ToolOutcome(
            True,
            {"status": "ending call"},
            duration_ms=elapsed(),
            action={"type": "end_call", "reason": reason},
        )

    # transfer_call: the destination comes from the version's transfer targets.
    if version is None:
        return ToolOutcome(
            False, None, "Transfer targets belong to a version; choose one to test a transfer."
        )
    wanted = str(arguments["target"]).strip().lower()
    for target in version.transfer_targets:
        if target["name"].lower() == wanted:
            return ToolOutcome(
                True,
                {"status": "transferring", "target": target["name"]},
                duration_ms=elapsed(),
                action={
                    "type": "transfer",
                    "name": target["name"],
                    "destination": target["destination"],
                    "reason": arguments.get("reason", ""),
                },
            )
    names = ", ".join(t["name"] for t in version.transfer_targets) or "none"
    return ToolOutcome(
        False,
        None,
        f"No transfer target named {arguments['target']!r}; targets: {names}.",
        duration_ms=elapsed(),
    )
