"""The three first-class connectors, each run against a fake of its vendor's REST API."""

from typing import Any

import pytest

from tests.conftest import TenantWorld
from tests.fakes.vendors import FakeHubSpot, FakeShopify, FakeZendesk

pytestmark = pytest.mark.django_db


@pytest.fixture
def vendors(settings: Any) -> Any:
    zendesk, hubspot, shopify = FakeZendesk().start(), FakeHubSpot().start(), FakeShopify().start()
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    settings.CONNECTOR_BASE_URLS = {
        "zendesk": zendesk.server.url,
        "hubspot": hubspot.server.url,
        "shopify": shopify.server.url,
    }
    yield zendesk, hubspot, shopify
    for fake in (zendesk, hubspot, shopify):
        fake.server.stop()


def connect(
    world: TenantWorld, kind: str, config: dict[str, str], secrets: dict[str, str], operation: str
) -> str:
    integration = world.client.post(
        "/v1/integrations",
        {"kind": kind, "name": kind.title(), "config": config, "secrets": secrets},
        format="json",
    )
    assert integration.status_code == 201, integration.content
    return add_tool(world, kind, operation, integration.json()["id"])


def add_tool(world: TenantWorld, kind: str, operation: str, integration_id: str) -> str:
    tool = world.client.post(
        "/v1/tools",
        {
            "name": f"{kind}_{operation}",
            "description": f"{kind} {operation}",
            "kind": "connector",
            "config": {"connector": kind, "operation": operation},
            "integration": integration_id,
        },
        format="json",
    )
    assert tool.status_code == 201, tool.content
    return str(tool.json()["id"])


def run(world: TenantWorld, tool_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = world.client.post(
        f"/v1/tools/{tool_id}/test", {"arguments": arguments}, format="json"
    )
    return dict(response.json())


def test_zendesk_creates_and_looks_up_tickets(world: TenantWorld, vendors: Any) -> None:
    zendesk = vendors[0]
    config = {"subdomain": "acme", "email": zendesk.email}
    create = connect(world, "zendesk", config, {"api_token": zendesk.api_token}, "create_ticket")
    created = run(
        world,
        create,
        {
            "subject": "Refund",
            "description": "Caller wants a refund for order 17",
            "requester_email": "pat@example.com",
        },
    )
    assert created["ok"], created
    assert created["result"] == {"ticket_id": 1001, "status": "new"}
    sent = zendesk.server.requests[-1].json()["ticket"]
    assert sent["comment"] == {"body": "Caller wants a refund for order 17"}
    assert sent["requester"] == {
        "email": "pat@example.com"
    }  # an omitted optional argument is left out

    integration = world.client.get(f"/v1/tools/{create}").json()["integration"]
    lookup = add_tool(world, "zendesk", "lookup_ticket", integration)
    found = run(world, lookup, {"ticket_id": 1001})
    assert found["result"]["subject"] == "Refund"
    missing = run(world, lookup, {"ticket_id": 9})
    assert (missing["ok"], missing["status"]) == (False, 404)


def test_zendesk_with_a_wrong_token_says_so(world: TenantWorld, vendors: Any) -> None:
    tool = connect(
        world,
        "zendesk",
        {"subdomain": "acme", "email": "ops@acme.test"},
        {"api_token": "wrong"},
        "create_ticket",
    )
    result = run(world, tool, {"subject": "x", "description": "y"})
    assert (result["ok"], result["error"]) == (False, "The service answered 401.")


def test_hubspot_finds_a_contact_by_phone(world: TenantWorld, vendors: Any) -> None:
    hubspot = vendors[1]
    hubspot.contacts.append(
        {
            "firstname": "Ada",
            "lastname": "Lovelace",
            "email": "ada@example.com",
            "phone": "+14155550100",
            "lifecyclestage": "customer",
        }
    )
    tool = connect(world, "hubspot", {}, {"access_token": hubspot.access_token}, "lookup_contact")
    result = run(world, tool, {"property": "phone", "value": "+14155550100"})
    assert result["result"] == {
        "matches": 1,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": "+14155550100",
        "lifecycle_stage": "customer",
    }
    nobody = run(world, tool, {"property": "email", "value": "nobody@example.com"})
    assert nobody["result"]["matches"] == 0
    assert nobody["result"]["first_name"] is None


def test_shopify_tells_an_order_status(world: TenantWorld, vendors: Any) -> None:
    shopify = vendors[2]
    shopify.orders.append(
        {
            "name": "#1001",
            "financial_status": "paid",
            "fulfillment_status": "fulfilled",
            "fulfillments": [{"tracking_number": "1Z999", "tracking_url": "https://track/1Z999"}],
        }
    )
    tool = connect(
        world, "shopify", {"shop": "acme"}, {"access_token": shopify.access_token}, "order_status"
    )
    result = run(world, tool, {"order_number": "#1001"})
    assert result["result"] == {
        "order": "#1001",
        "financial_status": "paid",
        "fulfillment_status": "fulfilled",
        "tracking_number": "1Z999",
        "tracking_url": "https://track/1Z999",
    }
    assert shopify.server.requests[-1].query == {"name": ["#1001"], "status": ["any"]}


def test_a_connector_tool_needs_an_integration_of_its_kind(world: TenantWorld) -> None:
    response = world.client.post(
        "/v1/tools",
        {
            "name": "orders",
            "description": "Orders",
            "kind": "connector",
            "config": {"connector": "shopify", "operation": "refund"},
            "integration": world.integration.public_id,
        },
        format="json",
    )
    messages = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert messages == {
        "config.operation": "Shopify offers order_status.",
        "integration": "Choose a Shopify integration.",
    }


def test_the_catalogue_lists_every_kind_with_its_fields(world: TenantWorld) -> None:
    kinds = {k["kind"]: k for k in world.client.get("/v1/integration-kinds").json()}
    assert {"zendesk", "hubspot", "shopify", "bearer_token", "basic_auth", "api_key_header"} <= set(
        kinds
    )
    assert [f["name"] for f in kinds["zendesk"]["fields"] if f["secret"]] == ["api_token"]
    assert [o["name"] for o in kinds["zendesk"]["operations"]] == ["create_ticket", "lookup_ticket"]
