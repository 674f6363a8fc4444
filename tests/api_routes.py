"""Every tenant API route, with what the suites need to exercise it.

tests/test_isolation.py enumerates the URL conf and fails when a route is missing here, so a new
endpoint cannot ship without isolation, permission and audit coverage. Bodies, queries and the
object a call acts on are built from the acting tenant's TenantWorld.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.urls import reverse

from agents.models import AgentVersion
from tests import factories

if TYPE_CHECKING:
    from rest_framework.test import APIClient

    from tests.conftest import TenantWorld

Build = Callable[["TenantWorld"], Any]


@dataclass(frozen=True)
class Call:
    method: str
    permission: str | None  # None: any valid credential of the tenant
    body: dict[str, Any] | Build | None = None
    # For state-changing calls: the audit action the change must record.
    audit_action: str = ""
    # The object the call acts on, when not the route's usual one (e.g. an unused one to delete).
    target: Build | None = None
    query: Build | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A POST that changes nothing (previews, searches, tool tests) says so.
    changes_state: bool | None = None

    @property
    def mutates(self) -> bool:
        return self.changes_state if self.changes_state is not None else self.method != "GET"


@dataclass(frozen=True)
class Route:
    name: str
    # Which object of a TenantWorld fills the `{id}` in the path (None: the route takes no id).
    object: str | None
    calls: list[Call] = field(default_factory=list)


def _unused_published(world: "TenantWorld") -> AgentVersion:
    return factories.published_version(agent=world.agent)


def _other_plan(world: "TenantWorld") -> dict[str, Any]:
    plan = factories.PriceFactory(plan__code=f"growth-{world.tenant.public_id}").plan
    return {"plan": plan.code}


def _import_document(world: "TenantWorld") -> dict[str, Any]:
    return {"format": "switchboard.agent/v1", "agent": {"name": "Imported"}, "versions": []}


ROUTES = [
    Route("api-root", None, [Call("GET", None)]),
    Route(
        "tenant",
        None,
        [
            Call("GET", "tenant:read"),
            Call("PATCH", "tenant:write", {"name": "Renamed"}, "tenant.update"),
        ],
    ),
    Route("member-list", None, [Call("GET", "members:read")]),
    Route(
        "member-detail",
        "member",
        [
            Call("GET", "members:read"),
            Call("PATCH", "members:write", {"role": "editor"}, "membership.update"),
            Call("DELETE", "members:write", None, "membership.delete"),
        ],
    ),
    Route(
        "invitation-list",
        None,
        [
            Call("GET", "members:read"),
            Call(
                "POST",
                "members:write",
                {"email": "new@example.com", "role": "viewer"},
                "invitation.create",
            ),
        ],
    ),
    Route(
        "invitation-detail",
        "invitation",
        [Call("GET", "members:read"), Call("DELETE", "members:write", None, "invitation.revoke")],
    ),
    Route(
        "api-key-list",
        None,
        [
            Call("GET", "api_keys:read"),
            Call(
                "POST",
                "api_keys:write",
                {"name": "ci", "scopes": ["tenant:read"]},
                "api_key.create",
            ),
        ],
    ),
    Route("api-key-detail", "api_key", [Call("GET", "api_keys:read")]),
    Route("api-key-revoke", "api_key", [Call("POST", "api_keys:write", None, "api_key.revoke")]),
    Route("audit-event-list", None, [Call("GET", "audit:read")]),
    Route("audit-event-detail", "audit_event", [Call("GET", "audit:read")]),
    # --- Prompts ---
    Route(
        "prompt-template-list",
        None,
        [
            Call("GET", "agents:read"),
            Call(
                "POST",
                "agents:write",
                {
                    "name": "Greeter",
                    "body": "Hello {{ who }}",
                    "variables": [{"name": "who", "type": "string"}],
                },
                "prompt_template.create",
            ),
        ],
    ),
    Route(
        "prompt-template-detail",
        "prompt_template",
        [
            Call("GET", "agents:read"),
            Call("PATCH", "agents:write", {"description": "Reception"}, "prompt_template.update"),
            Call(
                "DELETE",
                "agents:write",
                None,
                "prompt_template.delete",
                target=lambda w: factories.PromptTemplateFactory(tenant=w.tenant),
            ),
        ],
    ),
    Route(
        "prompt-template-revisions",
        "prompt_template",
        [
            Call("GET", "agents:read"),
            Call(
                "POST", "agents:write", {"body": "Hi.", "variables": []}, "prompt_revision.create"
            ),
        ],
    ),
    Route("prompt-revision-detail", "prompt_revision", [Call("GET", "agents:read")]),
    Route(
        "prompt-revision-preview",
        "prompt_revision",
        [Call("POST", "agents:read", {"variables": {}}, changes_state=False)],
    ),
    # --- Integrations and tools ---
    Route("integration-kinds", None, [Call("GET", "integrations:read")]),
    Route(
        "integration-list",
        None,
        [
            Call("GET", "integrations:read"),
            Call(
                "POST",
                "integrations:write",
                {"kind": "bearer_token", "name": "CRM", "secrets": {"token": "t0k3n"}},
                "integration.create",
            ),
        ],
    ),
    Route(
        "integration-detail",
        "integration",
        [
            Call("GET", "integrations:read"),
            Call(
                "PATCH",
                "integrations:write",
                {"secrets": {"token": "rotated"}},
                "integration.update",
            ),
            Call(
                "DELETE",
                "integrations:write",
                None,
                "integration.delete",
                target=lambda w: factories.IntegrationFactory(tenant=w.tenant),
            ),
        ],
    ),
    Route(
        "tool-list",
        None,
        [
            Call("GET", "tools:read"),
            Call(
                "POST",
                "tools:write",
                {"name": "hang_up", "description": "End the call politely.", "kind": "end_call"},
                "tool.create",
            ),
        ],
    ),
    Route(
        "tool-detail",
        "tool",
        [
            Call("GET", "tools:read"),
            Call("PATCH", "tools:write", {"description": "Find an item."}, "tool.update"),
            Call("DELETE", "tools:write", None, "tool.delete"),
        ],
    ),
    Route(
        "tool-test",
        "tool",
        [
            Call(
                "POST",
                "tools:write",
                {"arguments": {"reason": "done"}},
                changes_state=False,
                target=lambda w: factories.ToolFactory(
                    tenant=w.tenant, kind="end_call", config={}, parameters={"type": "object"}
                ),
            )
        ],
    ),
    # --- Knowledge ---
    Route(
        "knowledge-base-list",
        None,
        [
            Call("GET", "knowledge:read"),
            Call("POST", "knowledge:write", {"name": "Policies"}, "knowledge_base.create"),
        ],
    ),
    Route(
        "knowledge-base-detail",
        "knowledge_base",
        [
            Call("GET", "knowledge:read"),
            Call(
                "PATCH",
                "knowledge:write",
                {"description": "What callers ask"},
                "knowledge_base.update",
            ),
            Call("DELETE", "knowledge:write", None, "knowledge_base.delete"),
        ],
    ),
    Route(
        "knowledge-base-documents",
        "knowledge_base",
        [
            Call("GET", "knowledge:read"),
            Call(
                "POST",
                "knowledge:write",
                {"title": "Parking", "content": "Parking is free."},
                "document.create",
            ),
        ],
    ),
    Route(
        "knowledge-base-search",
        "knowledge_base",
        [Call("POST", "knowledge:read", {"query": "hours"}, changes_state=False)],
    ),
    Route(
        "document-detail",
        "document",
        [Call("GET", "knowledge:read"), Call("DELETE", "knowledge:write", None, "document.delete")],
    ),
    Route("document-chunks", "document", [Call("GET", "knowledge:read")]),
    # --- Agents and versions ---
    Route(
        "agent-list",
        None,
        [
            Call("GET", "agents:read"),
            Call("POST", "agents:write", {"name": "Night line"}, "agent.create"),
        ],
    ),
    Route(
        "agent-detail",
        "agent",
        [
            Call("GET", "agents:read"),
            Call("PATCH", "agents:write", {"description": "Main line"}, "agent.update"),
        ],
    ),
    Route(
        "agent-versions",
        "agent",
        [
            Call("GET", "agents:read"),
            Call("POST", "agents:write", {"voice": "cedar"}, "version.create"),
        ],
    ),
    Route(
        "agent-traffic-split",
        "agent",
        [
            Call("GET", "agents:read"),
            Call(
                "PUT",
                "agents:publish",
                lambda w: {
                    "allocations": [{"version": w.published_version.public_id, "weight": 100}]
                },
                "agent.traffic_split.update",
            ),
        ],
    ),
    Route(
        "agent-rollback",
        "agent",
        [
            Call(
                "POST",
                "agents:publish",
                lambda w: {"version": w.published_version.public_id},
                "agent.rollback",
            )
        ],
    ),
    Route("agent-export", "agent", [Call("GET", "agents:read")]),
    Route("agent-import", None, [Call("POST", "agents:write", _import_document, "agent.import")]),
    Route(
        "version-detail",
        "version",
        [
            Call("GET", "agents:read"),
            Call("PATCH", "agents:write", {"greeting": "Hello!"}, "version.update"),
            Call("DELETE", "agents:write", None, "version.delete"),
        ],
    ),
    Route("version-publish", "version", [Call("POST", "agents:publish", {}, "version.publish")]),
    Route(
        "version-archive",
        "version",
        [Call("POST", "agents:publish", None, "version.archive", target=_unused_published)],
    ),
    Route(
        "version-diff",
        "version",
        [Call("GET", "agents:read", query=lambda w: f"against={w.published_version.public_id}")],
    ),
    # --- Carriers and numbers ---
    Route(
        "carrier-account-list",
        None,
        [
            Call("GET", "numbers:read"),
            Call(
                "POST",
                "numbers:write",
                {"kind": "sandbox", "name": "Trial"},
                "carrier_account.create",
            ),
        ],
    ),
    Route(
        "carrier-account-detail",
        "carrier_account",
        [
            Call("GET", "numbers:read"),
            Call("PATCH", "numbers:write", {"name": "Sandbox numbers"}, "carrier_account.update"),
            Call(
                "DELETE",
                "numbers:write",
                None,
                "carrier_account.delete",
                target=lambda w: factories.CarrierAccountFactory(tenant=w.tenant),
            ),
        ],
    ),
    Route(
        "phone-number-list",
        None,
        [
            Call("GET", "numbers:read"),
            Call(
                "POST",
                "numbers:write",
                lambda w: {
                    "carrier_account": w.carrier_account.public_id,
                    "phone_number": "+14155550142",
                },
                "phone_number.purchase",
                headers={"HTTP_IDEMPOTENCY_KEY": "buy-0142"},
            ),
        ],
    ),
    Route(
        "phone-number-available",
        None,
        [
            Call(
                "GET",
                "numbers:write",
                query=lambda w: f"carrier_account={w.carrier_account.public_id}",
            )
        ],
    ),
    Route(
        "phone-number-import",
        None,
        [
            Call(
                "POST",
                "numbers:write",
                lambda w: {
                    "carrier_account": w.twilio_account.public_id,
                    "phone_number": w.twilio.add_owned(
                        f"+1628555{len(w.twilio.owned):04d}"
                    ).phone_number,
                },
                "phone_number.import",
            )
        ],
    ),
    Route(
        "phone-number-detail",
        "phone_number",
        [
            Call("GET", "numbers:read"),
            Call("PATCH", "numbers:write", {"agent": None}, "phone_number.update"),
        ],
    ),
    Route(
        "phone-number-release",
        "phone_number",
        [Call("POST", "numbers:write", None, "phone_number.release")],
    ),
    # --- Calls ---
    Route(
        "call-list",
        None,
        [
            Call("GET", "calls:read"),
            Call(
                "GET", "calls:read", query=lambda w: f"agent={w.agent.public_id}&status=completed"
            ),
        ],
    ),
    Route("call-detail", "call", [Call("GET", "calls:read")]),
    Route("call-events", "call", [Call("GET", "calls:read")]),
    Route("call-transcript", "call", [Call("GET", "calls:read")]),
    Route("call-recording", "call", [Call("GET", "calls:listen")]),
    Route("call-retag", "call", [Call("POST", "calls:write", None, "call.outcome_changed")]),
    Route(
        "call-outcome",
        "call",
        [Call("PUT", "calls:write", {"label": "escalated"}, "call.outcome_changed")],
    ),
    # --- Privacy ---
    Route(
        "erasure-list",
        None,
        [
            Call("GET", "privacy:read"),
            # A number with no calls in either world: the erasure is recorded all the same.
            Call("POST", "privacy:write", {"phone_number": "+15005550142"}, "erasure.create"),
        ],
    ),
    Route("erasure-detail", "erasure", [Call("GET", "privacy:read")]),
    # --- Webhooks ---
    Route(
        "webhook-endpoint-list",
        None,
        [
            Call("GET", "webhooks:read"),
            Call(
                "POST",
                "webhooks:write",
                {"url": "https://93.184.215.14/other", "event_types": ["call.completed"]},
                "webhook_endpoint.created",
            ),
        ],
    ),
    Route(
        "webhook-endpoint-detail",
        "webhook_endpoint",
        [
            Call("GET", "webhooks:read"),
            Call("PATCH", "webhooks:write", {"description": "CRM"}, "webhook_endpoint.updated"),
            Call(
                "DELETE",
                "webhooks:write",
                None,
                "webhook_endpoint.deleted",
                target=lambda w: factories.WebhookEndpointFactory(tenant=w.tenant),
            ),
        ],
    ),
    Route(
        "webhook-endpoint-rotate-secret",
        "webhook_endpoint",
        [Call("POST", "webhooks:write", None, "webhook_endpoint.secret_rotated")],
    ),
    Route(
        "webhook-endpoint-enable",
        "webhook_endpoint",
        [Call("POST", "webhooks:write", None, "webhook_endpoint.enabled")],
    ),
    Route("webhook-delivery-list", None, [Call("GET", "webhooks:read")]),
    Route("webhook-delivery-detail", "webhook_delivery", [Call("GET", "webhooks:read")]),
    Route(
        "webhook-delivery-replay",
        "webhook_delivery",
        [Call("POST", "webhooks:write", None, "webhook_delivery.replayed")],
    ),
    # --- Billing ---
    Route(
        "billing",
        None,
        [
            Call("GET", "billing:read"),
            Call(
                "PATCH",
                "billing:write",
                {"usage_soft_limit": 500, "usage_hard_limit": 1000},
                "billing.subscription_changed",
            ),
        ],
    ),
    Route(
        "billing-plan", None, [Call("PUT", "billing:write", _other_plan, "billing.plan_changed")]
    ),
    Route("billing-plans", None, [Call("GET", "billing:read")]),
    Route("billing-preview", None, [Call("GET", "billing:read")]),
    Route(
        "usage-event-list",
        None,
        [
            Call("GET", "billing:read"),
            Call(
                "GET", "billing:read", query=lambda w: f"agent={w.agent.public_id}&period=current"
            ),
        ],
    ),
    Route("usage-event-detail", "usage_event", [Call("GET", "billing:read")]),
    Route(
        "usage-event-summary",
        None,
        [Call("GET", "billing:read", query=lambda w: "group_by=agent")],
    ),
    Route("usage-event-export", None, [Call("GET", "billing:read")]),
    Route("invoice-list", None, [Call("GET", "billing:read")]),
    Route("invoice-detail", "invoice", [Call("GET", "billing:read")]),
    Route("invoice-usage", "invoice", [Call("GET", "billing:read", query=lambda w: "line=1")]),
    Route("invoice-export", "invoice", [Call("GET", "billing:read")]),
    Route("invoice-document", "invoice", [Call("GET", "billing:read")]),
    Route("credit-note-list", None, [Call("GET", "billing:read")]),
    Route("credit-note-detail", "credit_note", [Call("GET", "billing:read")]),
    Route("credit-note-usage", "credit_note", [Call("GET", "billing:read")]),
]

# /v1/ routes that hold no tenant data: the API's description, public like any API reference.
PUBLIC_API_ROUTES = {"api-schema", "api-docs"}

ROUTES_BY_NAME = {route.name: route for route in ROUTES}


def calls(*, mutating: bool | None = None) -> list[tuple[Route, Call]]:
    return [
        (route, call)
        for route in ROUTES
        for call in route.calls
        if mutating is None or call.mutates == mutating
    ]


def call_id(pair: tuple[Route, Call]) -> str:
    route, call = pair
    return f"{call.method} {route.name}"


def target_of(route: Route, call: Call, world: "TenantWorld") -> Any:
    if route.object is None:
        return None
    return call.target(world) if call.target else getattr(world, route.object)


def send(
    client: "APIClient",
    route: Route,
    call: Call,
    *,
    world: "TenantWorld",
    target: Any = None,
    body: dict[str, Any] | None = None,
    **extra: Any,
) -> Any:
    """Perform `call` as `client`: its body and query are built from `world` (the caller's own
    tenant); the object in the URL is `target`, by default the call's own in `world`."""
    if route.object is not None:
        target = target if target is not None else target_of(route, call, world)
        url = reverse(route.name, kwargs={"id": target.public_id})
    else:
        url = reverse(route.name)
    if call.query:
        url += "?" + call.query(world)
    if body is None:
        body = call.body(world) if callable(call.body) else call.body
    return client.generic(
        call.method,
        url,
        json.dumps(body or {}),
        content_type="application/json",
        **{**call.headers, **extra},
    )
