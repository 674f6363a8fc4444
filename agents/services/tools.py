import re
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from agents import http_requests
from agents.connectors import CONNECTORS
from agents.integrations import integration_kinds, is_header_safe
from agents.models import Integration, Tool, VersionTool
from agents.schemas import check_parameters_schema
from agents.services import credentials_update, invalid, require_name
from tenants.access import Actor
from tenants.errors import Conflict, InvalidInput
from tenants.models import Tenant
from tenants.services import audit_event_record
from tenants.ssrf import BlockedDestination, check_url

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GENERIC_AUTH_KINDS = ("bearer_token", "basic_auth", "api_key_header")
HTTP_CONFIG_KEYS = {
    "method",
    "url",
    "headers",
    "query",
    "body",
    "response_mapping",
    "timeout_seconds",
}

# Built-in tools: the call runtime executes them; their arguments are fixed.
BUILTIN_PARAMETERS: dict[str, dict[str, Any]] = {
    Tool.Kind.TRANSFER_CALL: {
        "type": "object",
        "properties": {
            "target": {"type": "string", "description": "Name of the transfer target"},
            "reason": {"type": "string", "description": "Why the caller needs a person"},
        },
        "required": ["target"],
    },
    Tool.Kind.END_CALL: {
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "Why the call ends"}},
    },
    Tool.Kind.SEARCH_KNOWLEDGE: {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look up"}},
        "required": ["query"],
    },
}


# --- Integrations -----------------------------------------------------------------------------


def _integration_problems(kind: str, config: Any, secrets: Any) -> None:
    spec = integration_kinds().get(kind)
    if spec is None:
        raise InvalidInput.field(
            "kind", f"Kind is one of {', '.join(sorted(integration_kinds()))}."
        )
    errors = spec.problems(config, secrets)
    if errors:
        raise InvalidInput("The credentials are incomplete or have unknown fields.", errors=errors)


def integration_create(
    *, tenant: Tenant, actor: Actor, kind: str, name: str, config: Any, secrets: Any
) -> Integration:
    actor.require("integrations:write")
    name = require_name(name)
    _integration_problems(kind, config, secrets)
    try:
        with transaction.atomic():
            integration = Integration.objects.create(
                tenant=tenant, kind=kind, name=name, config=config, secrets=secrets
            )
            audit_event_record(
                actor=actor,
                action="integration.create",
                target=integration,
                changes={"kind": [None, kind], "secrets": [None, sorted(secrets)]},
            )
    except IntegrityError:
        raise InvalidInput.field("name", f"An integration named {name!r} exists.") from None
    return integration


def integration_update(
    *,
    integration: Integration,
    actor: Actor,
    name: str | None = None,
    config: Any = None,
    secrets: Any = None,
) -> Integration:
    """Rename, change settings, or replace some secret fields (the others are kept)."""
    actor.require("integrations:write")
    return credentials_update(
        integration,
        actor=actor,
        action="integration.update",
        check=lambda c, s: _integration_problems(integration.kind, c, s),
        name=name,
        config=config,
        secrets=secrets,
    )


def integration_delete(*, integration: Integration, actor: Actor) -> None:
    actor.require("integrations:write")
    with transaction.atomic():
        users = list(
            Tool.objects.for_tenant(integration.tenant)
            .filter(integration=integration)
            .values_list("name", flat=True)
        )
        if users:
            raise Conflict(f"Tools use this integration: {', '.join(users)}.", code="in_use")
        audit_event_record(actor=actor, action="integration.delete", target=integration)
        integration.delete()


# --- Tools ------------------------------------------------------------------------------------


def _check_http_config(config: dict[str, Any], parameters: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in sorted(set(config) - HTTP_CONFIG_KEYS):
        problems.append((f"config.{key}", f"An http tool takes no {key}."))
    method = config.get("method", "GET")
    if method not in http_requests.METHODS:
        problems.append(("config.method", f"Method is one of {', '.join(http_requests.METHODS)}."))
    url = config.get("url")
    if not isinstance(url, str) or not url:
        return [*problems, ("config.url", "An http tool needs a URL.")]
    parts = urlsplit(url)
    if http_requests.PLACEHOLDER.search(parts.netloc) or http_requests.PLACEHOLDER.search(
        parts.scheme
    ):
        problems.append(("config.url", "Arguments may fill the path and query, not the host."))
    else:
        try:
            check_url(http_requests.PLACEHOLDER.sub("x", url))
        except BlockedDestination as exc:
            problems.append(("config.url", str(exc)))
    for key in ("headers", "query", "response_mapping"):
        value = config.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            problems.append((f"config.{key}", "An object of text values."))
    headers = config.get("headers", {})
    if isinstance(headers, dict) and not all(
        is_header_safe(f"{k}{v}") for k, v in headers.items() if isinstance(v, str)
    ):
        problems.append(("config.headers", "Header names and values are plain ASCII on one line."))
    timeout = config.get("timeout_seconds", 10)
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not 0.5 <= timeout <= 30
    ):
        problems.append(("config.timeout_seconds", "Between 0.5 and 30 seconds."))
    used = http_requests.template_names(
        [url, config.get("headers", {}), config.get("query", {}), config.get("body")]
    )
    declared = set(parameters.get("properties", {}))
    for name in sorted(used - declared):
        problems.append(("config", f"{{{name}}} is not an argument in the parameters schema."))
    return problems


def normalise_tool(
    kind: str, parameters: Any, config: Any, integration: Integration | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a tool definition; return the parameters and config to store."""
    if kind not in Tool.Kind.values:
        raise InvalidInput.field("kind", f"Kind is one of {', '.join(Tool.Kind.values)}.")
    config = config if config is not None else {}
    if not isinstance(config, dict):
        raise InvalidInput.field("config", "Must be an object.")
    problems: list[tuple[str, str]] = []
    if kind == Tool.Kind.HTTP:
        problems += [("parameters", p) for p in check_parameters_schema(parameters)]
        if not problems:
            problems += _check_http_config(config, parameters)
        if integration is not None and integration.kind not in GENERIC_AUTH_KINDS:
            problems.append(
                (
                    "integration",
                    "An http tool authenticates with "
                    f"{', '.join(GENERIC_AUTH_KINDS)} integrations.",
                )
            )
    elif kind == Tool.Kind.CONNECTOR:
        connector = CONNECTORS.get(config.get("connector", ""))
        if connector is None:
            problems.append(
                ("config.connector", f"Connector is one of {', '.join(sorted(CONNECTORS))}.")
            )
        else:
            operation = connector.operations.get(config.get("operation", ""))
            if operation is None:
                problems.append(
                    (
                        "config.operation",
                        f"{connector.label} offers {', '.join(sorted(connector.operations))}.",
                    )
                )
            else:
                parameters = operation.parameters
            if integration is None or integration.kind != connector.integration.kind:
                problems.append(("integration", f"Choose a {connector.label} integration."))
        for key in sorted(set(config) - {"connector", "operation"}):
            problems.append((f"config.{key}", f"A connector tool takes no {key}."))
    else:
        parameters = BUILTIN_PARAMETERS[kind]
        allowed = {"limit"} if kind == Tool.Kind.SEARCH_KNOWLEDGE else set()
        for key in sorted(set(config) - allowed):
            problems.append((f"config.{key}", f"A {kind} tool takes no {key}."))
        limit = config.get("limit", 3)
        if kind == Tool.Kind.SEARCH_KNOWLEDGE and not (isinstance(limit, int) and 1 <= limit <= 10):
            problems.append(("config.limit", "Between 1 and 10 passages."))
        if integration is not None:
            problems.append(("integration", f"A {kind} tool uses no integration."))
    if problems:
        raise invalid(problems, "The tool definition has problems")
    return parameters, config


def tool_create(
    *,
    tenant: Tenant,
    actor: Actor,
    name: str,
    description: str,
    kind: str,
    parameters: Any = None,
    config: Any = None,
    integration: Integration | None = None,
) -> Tool:
    actor.require("tools:write")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise InvalidInput.field(
            "name", "Tool names are 1-64 letters, digits, _ or - (the model sees it)."
        )
    if not isinstance(description, str) or not description.strip():
        raise InvalidInput.field("description", "Tell the model when to use this tool.")
    parameters, config = normalise_tool(kind, parameters, config, integration)
    try:
        with transaction.atomic():
            tool = Tool.objects.create(
                tenant=tenant,
                name=name,
                description=description.strip(),
                kind=kind,
                parameters=parameters,
                config=config,
                integration=integration,
            )
            audit_event_record(
                actor=actor,
                action="tool.create",
                target=tool,
                changes={"kind": [None, kind], "name": [None, name]},
            )
    except IntegrityError:
        raise InvalidInput.field("name", f"A tool named {name!r} exists.") from None
    return tool


TOOL_FIELDS = ("name", "description", "parameters", "config", "integration")


def tool_update(*, tool: Tool, actor: Actor, **fields: Any) -> Tool:
    """Change a tool. Published versions use tools as they are at call time."""
    actor.require("tools:write")
    unknown = set(fields) - set(TOOL_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    name = fields.get("name", tool.name)
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise InvalidInput.field(
            "name", "Tool names are 1-64 letters, digits, _ or - (the model sees it)."
        )
    integration = fields.get("integration", tool.integration)
    parameters, config = normalise_tool(
        tool.kind,
        fields.get("parameters", tool.parameters),
        fields.get("config", tool.config),
        integration,
    )
    after = {
        "name": name,
        "description": fields.get("description", tool.description),
        "parameters": parameters,
        "config": config,
        "integration": integration,
    }
    changes = {}
    for key, value in after.items():
        if getattr(tool, key) != value:
            before = getattr(tool, key)
            changes[key] = [
                getattr(before, "public_id", before),
                getattr(value, "public_id", value),
            ]
            setattr(tool, key, value)
    if not changes:
        return tool
    try:
        with transaction.atomic():
            tool.save()
            audit_event_record(actor=actor, action="tool.update", target=tool, changes=changes)
    except IntegrityError:
        raise InvalidInput.field("name", f"A tool named {name!r} exists.") from None
    return tool


def tool_delete(*, tool: Tool, actor: Actor) -> None:
    actor.require("tools:write")
    with transaction.atomic():
        versions = list(
            VersionTool.objects.for_tenant(tool.tenant)
            .filter(tool=tool)
            .values_list("version__public_id", flat=True)
        )
        if versions:
            raise Conflict(f"Versions use this tool: {', '.join(versions)}.", code="in_use")
        audit_event_record(actor=actor, action="tool.delete", target=tool)
        tool.delete()
