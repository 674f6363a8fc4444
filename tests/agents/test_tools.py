import json
import time

import pytest
from django.test import override_settings

from agents.models import Tool
from tests.conftest import TenantWorld
from tests.factories import AgentVersionFactory, IntegrationFactory, VersionToolFactory
from tests.fakes.server import FakeServer, Recorded, Reply

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
}


@pytest.fixture
def orders_api():
    server = FakeServer()

    def order(request: Recorded, match) -> Reply:
        if request.headers.get("authorization") != "Bearer secret-token-value":
            return Reply(401, {"error": "unauthorised"})
        if match["id"] == "slow":
            time.sleep(2)
        if match["id"] == "big":
            return Reply(200, b"x" * (1024 * 1024 + 10), {"Content-Type": "text/plain"})
        return Reply(
            200,
            {"order": {"id": match["id"], "status": "shipped", "eta": "Friday"}, "internal": "x"},
        )

    server.route("GET", r"/orders/(?P<id>\w+)", order)
    server.route(
        "GET", r"/hop", lambda r, m: Reply(302, None, {"Location": "http://10.0.0.1/secret"})
    )
    server.start()
    yield server
    server.stop()


def http_tool(world: TenantWorld, url: str, **config):
    return world.client.post(
        "/v1/tools",
        {
            "name": "order_status",
            "description": "Where is an order?",
            "kind": "http",
            "parameters": SCHEMA,
            "config": {"url": url, **config},
            "integration": world.integration.public_id,
        },
        format="json",
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/orders/{order_id}",
        "http://localhost/orders/{order_id}",
        "http://10.1.2.3/orders/{order_id}",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/orders/{order_id}",
        "http://[::ffff:127.0.0.1]/x",
        "http://100.64.0.1/x",
        "ftp://example.com/x",
    ],
)
def test_tools_cannot_point_at_private_addresses(world: TenantWorld, url: str) -> None:
    response = http_tool(world, url)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "config.url"
    assert not Tool.objects.for_tenant(world.tenant).filter(name="order_status").exists()


def test_arguments_cannot_choose_the_host(world: TenantWorld) -> None:
    response = http_tool(world, "https://{order_id}.example.com/")
    assert (
        response.json()["errors"][0]["message"]
        == "Arguments may fill the path and query, not the host."
    )


def test_a_bad_schema_and_undeclared_placeholders_are_reported(world: TenantWorld) -> None:
    response = world.client.post(
        "/v1/tools",
        {
            "name": "t",
            "description": "d",
            "kind": "http",
            "parameters": {"type": "strin"},
            "config": {"url": "https://93.184.216.34/{x}"},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "Not a valid JSON schema" in response.json()["errors"][0]["message"]
    undeclared = http_tool(world, "https://93.184.216.34/orders/{order_id}/{color}")
    assert "{color} is not an argument in the parameters schema." in [
        e["message"] for e in undeclared.json()["errors"]
    ]


def test_testing_a_tool_runs_it_with_its_credentials(
    world: TenantWorld, orders_api: FakeServer, settings
) -> None:
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    tool = http_tool(
        world,
        orders_api.url + "/orders/{order_id}",
        response_mapping={"status": "order.status", "eta": "order.eta"},
    ).json()
    response = world.client.post(
        f"/v1/tools/{tool['id']}/test", {"arguments": {"order_id": "A17"}}, format="json"
    )
    body = response.json()
    assert body["ok"] is True
    assert body["status"] == 200
    assert body["result"] == {"status": "shipped", "eta": "Friday"}
    assert body["duration_ms"] > 0
    assert orders_api.requests[-1].path == "/orders/A17"


def test_tool_test_reports_problems_without_failing(
    world: TenantWorld, orders_api: FakeServer, settings
) -> None:
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    tool = http_tool(world, orders_api.url + "/orders/{order_id}", timeout_seconds=1).json()

    def run(arguments):
        return world.client.post(
            f"/v1/tools/{tool['id']}/test", {"arguments": arguments}, format="json"
        ).json()

    invalid = run({})
    assert invalid["ok"] is False
    assert invalid["error"] == "Invalid arguments: arguments: 'order_id' is a required property"
    assert run({"order_id": "slow"})["error"] == "No answer within 1 seconds."
    assert run({"order_id": "big"})["error"] == "The response is too large."


def test_private_addresses_are_checked_again_when_the_tool_runs(
    world: TenantWorld,
    orders_api: FakeServer,
    settings,
) -> None:
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    tool = http_tool(world, orders_api.url + "/orders/{order_id}").json()
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = []
    result = world.client.post(
        f"/v1/tools/{tool['id']}/test", {"arguments": {"order_id": "1"}}, format="json"
    ).json()
    assert result["ok"] is False
    assert result["error"].startswith("Blocked: 127.0.0.1 resolves to 127.0.0.1")
    assert not orders_api.requests


def test_a_redirect_to_a_private_address_is_blocked(
    world: TenantWorld, orders_api: FakeServer, settings
) -> None:
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    response = world.client.post(
        "/v1/tools",
        {
            "name": "hop",
            "description": "d",
            "kind": "http",
            "parameters": {"type": "object"},
            "config": {"url": orders_api.url + "/hop"},
        },
        format="json",
    )
    result = world.client.post(
        f"/v1/tools/{response.json()['id']}/test", {"arguments": {}}, format="json"
    ).json()
    assert (
        result["error"] == "Blocked: 10.0.0.1 resolves to 10.0.0.1, which is not a public address."
    )


def test_built_in_tools_have_fixed_arguments_and_report_their_action(world: TenantWorld) -> None:
    tool = world.client.post(
        "/v1/tools",
        {
            "name": "handoff",
            "description": "A person takes over",
            "kind": "transfer_call",
            "parameters": {"type": "object", "properties": {"x": {}}},
        },
        format="json",
    ).json()
    assert tool["parameters"]["required"] == ["target"]
    version = AgentVersionFactory(
        agent=world.agent, transfer_targets=[{"name": "Billing", "destination": "+14155550199"}]
    )
    result = world.client.post(
        f"/v1/tools/{tool['id']}/test",
        {"arguments": {"target": "billing"}, "version": version.public_id},
        format="json",
    ).json()
    assert result["action"] == {
        "type": "transfer",
        "name": "Billing",
        "destination": "+14155550199",
        "reason": "",
    }
    unknown = world.client.post(
        f"/v1/tools/{tool['id']}/test",
        {"arguments": {"target": "sales"}, "version": version.public_id},
        format="json",
    ).json()
    assert unknown["error"] == "No transfer target named 'sales'; targets: Billing."


def test_a_tool_in_use_cannot_be_deleted(world: TenantWorld) -> None:
    link = VersionToolFactory(version=world.version)
    response = world.client.delete(f"/v1/tools/{link.tool.public_id}")
    assert response.status_code == 409
    assert world.version.public_id in response.json()["detail"]


def test_http_tools_authenticate_only_with_generic_integrations(world: TenantWorld) -> None:
    zendesk = IntegrationFactory(
        tenant=world.tenant,
        kind="zendesk",
        config={"subdomain": "a", "email": "e"},
        secrets={"api_token": "t"},
    )
    response = http_tool(world, "https://93.184.216.34/orders/{order_id}")
    assert response.status_code == 201
    change = world.client.patch(
        f"/v1/tools/{response.json()['id']}", {"integration": zendesk.public_id}, format="json"
    )
    assert change.status_code == 400
    assert change.json()["errors"][0]["field"] == "integration"


@override_settings(TOOL_HTTP_ALLOWED_PRIVATE_HOSTS=["127.0.0.1"])
def test_json_bodies_keep_argument_types(world: TenantWorld) -> None:
    server = FakeServer()
    server.route("POST", "/bookings", lambda r, m: Reply(201, {"booked": r.json()}))
    server.start()
    try:
        tool = world.client.post(
            "/v1/tools",
            {
                "name": "book",
                "description": "Book",
                "kind": "http",
                "parameters": {
                    "type": "object",
                    "properties": {"seats": {"type": "integer"}, "note": {"type": "string"}},
                },
                "config": {
                    "method": "POST",
                    "url": server.url + "/bookings",
                    "body": {"seats": "{seats}", "text": "Party of {seats}", "note": "{note}"},
                },
            },
            format="json",
        ).json()
        result = world.client.post(
            f"/v1/tools/{tool['id']}/test", {"arguments": {"seats": 4}}, format="json"
        ).json()
    finally:
        server.stop()
    assert result["result"] == {"booked": {"seats": 4, "text": "Party of 4"}}
    assert json.loads(server.requests[0].body) == {"seats": 4, "text": "Party of 4"}


@override_settings(TOOL_HTTP_ALLOWED_PRIVATE_HOSTS=["127.0.0.1"])
def test_arguments_cannot_inject_headers(world: TenantWorld, orders_api: FakeServer) -> None:
    tool = world.client.post(
        "/v1/tools",
        {
            "name": "t",
            "description": "d",
            "kind": "http",
            "parameters": {"type": "object", "properties": {"ref": {"type": "string"}}},
            "config": {"url": orders_api.url + "/orders/1", "headers": {"X-Ref": "{ref}"}},
        },
        format="json",
    ).json()
    result = world.client.post(
        f"/v1/tools/{tool['id']}/test",
        {"arguments": {"ref": "1\r\nAuthorization: Bearer stolen"}},
        format="json",
    ).json()
    assert result["ok"] is False
    assert "header X-Ref would not be plain ASCII on one line" in result["error"]
    assert not orders_api.requests
