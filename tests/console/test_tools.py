"""The Tools pages: tools by kind, "Test this tool", and integrations with write-only secrets."""

import html as entities
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from agents.models import Integration, Tool
from tenants.models import AuditEvent
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld
from tests.console.conftest import member_client, text
from tests.fakes.server import FakeServer, Recorded, Reply
from tests.test_isolation import snapshot

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
}


def tool_url(tool: Tool, name: str = "tool") -> str:
    return reverse(f"console:{name}", kwargs={"id": tool.public_id})


def integration_url(integration: Integration, name: str = "integration") -> str:
    return reverse(f"console:{name}", kwargs={"id": integration.public_id})


def field_errors(html: str, name: str) -> list[str]:
    """The error messages under the field whose input is named `name`."""
    match = re.search(
        rf'<div class="field has-error">(?:(?!<div class="field).)*?name="{name}"(.*?)</div>',
        html,
        re.S,
    )
    assert match, f"no error next to {name}"
    return [entities.unescape(m) for m in re.findall(r'<p class="error">(.*?)</p>', match.group(1))]


@pytest.fixture
def orders_api() -> Iterator[FakeServer]:
    server = FakeServer()

    def order(request: Recorded, match: Any) -> Reply:
        if request.headers.get("authorization") != "Bearer secret-token-value":
            return Reply(401, {"error": "unauthorised"})
        return Reply(200, {"order": {"id": match["id"], "status": "shipped"}, "internal": "x"})

    server.route("GET", r"/orders/(?P<id>\w+)", order)
    server.start()
    yield server
    server.stop()


# --- Tools list -------------------------------------------------------------------------------


def test_the_list_shows_each_tool_with_its_kind_and_integration(world: TenantWorld) -> None:
    html = text(member_client(world).get(reverse("console:tools")))
    assert world.tool.name in html
    assert "HTTP request" in html
    assert world.integration.name in html
    assert "New tool" in html


def test_a_viewer_sees_the_tools_but_cannot_create_one(world: TenantWorld) -> None:
    client = member_client(world, Role.VIEWER)
    html = text(client.get(reverse("console:tools")))
    assert world.tool.name in html
    assert "New tool" not in html
    assert client.get(reverse("console:tool-new")).status_code == 403


def test_without_tools_the_list_says_what_to_do(world: TenantWorld) -> None:
    Tool.objects.for_tenant(world.tenant).delete()
    html = text(member_client(world).get(reverse("console:tools")))
    assert "No tools yet" in html
    assert f'href="{reverse("console:tool-new")}"' in html


# --- Creating and editing ---------------------------------------------------------------------


def test_a_new_tool_starts_by_choosing_its_kind(world: TenantWorld) -> None:
    html = text(member_client(world).get(reverse("console:tool-new")))
    for label in ("HTTP request", "Connector", "Search knowledge", "Transfer call", "End call"):
        assert label in html
    http_form = text(member_client(world).get(reverse("console:tool-new") + "?kind=http"))
    assert 'name="url"' in http_form and 'name="parameters"' in http_form
    end_form = text(member_client(world).get(reverse("console:tool-new") + "?kind=end_call"))
    assert 'name="url"' not in end_form and 'name="description"' in end_form


def http_form(world: TenantWorld, **changes: Any) -> dict[str, Any]:
    return {
        "name": "order_status",
        "description": "Where is an order?",
        "method": "GET",
        "url": "https://93.184.216.34/orders/{order_id}",
        "parameters": json.dumps(SCHEMA),
        "headers": '{"Accept": "application/json"}',
        "response_mapping": '{"status": "order.status"}',
        "timeout_seconds": "5",
        "integration": world.integration.public_id,
        **changes,
    }


def test_an_http_tool_is_created_through_the_service(world: TenantWorld) -> None:
    response = member_client(world).post(
        reverse("console:tool-new") + "?kind=http", http_form(world), follow=True
    )
    tool = Tool.objects.for_tenant(world.tenant).get(name="order_status")
    assert response.redirect_chain[-1][0] == tool_url(tool)
    assert "Tool order_status created" in text(response)
    assert tool.kind == Tool.Kind.HTTP
    assert tool.parameters == SCHEMA
    assert tool.integration == world.integration
    assert tool.config == {
        "method": "GET",
        "url": "https://93.184.216.34/orders/{order_id}",
        "headers": {"Accept": "application/json"},
        "response_mapping": {"status": "order.status"},
        "timeout_seconds": 5.0,
    }
    assert AuditEvent.objects.for_tenant(world.tenant).filter(action="tool.create").exists()


def test_the_services_complaints_sit_next_to_their_fields_and_values_are_kept(
    world: TenantWorld,
) -> None:
    data = http_form(
        world,
        url="http://10.1.2.3/orders/{order_id}/{color}",
        headers='{"X": 1}',
        timeout_seconds="90",
    )
    response = member_client(world).post(reverse("console:tool-new") + "?kind=http", data)
    assert response.status_code == 400
    html = text(response)
    assert field_errors(html, "url")
    assert field_errors(html, "headers") == ["An object of text values."]
    assert field_errors(html, "timeout_seconds") == ["Between 0.5 and 30 seconds."]
    assert 'value="http://10.1.2.3/orders/{order_id}/{color}"' in html
    assert 'value="Where is an order?"' in html or "Where is an order?</textarea>" in html
    assert not Tool.objects.for_tenant(world.tenant).filter(name="order_status").exists()


def test_json_that_does_not_parse_is_refused_by_the_form(world: TenantWorld) -> None:
    data = http_form(world, parameters="{not json")
    response = member_client(world).post(reverse("console:tool-new") + "?kind=http", data)
    assert response.status_code == 400
    assert field_errors(text(response), "parameters") == ["Enter a valid JSON."]
    assert "{not json</textarea>" in text(response)


def test_a_search_knowledge_tool_takes_a_number_of_passages(world: TenantWorld) -> None:
    url = reverse("console:tool-new") + "?kind=search_knowledge"
    data = {"name": "faq", "description": "Answer from the FAQ."}
    refused = member_client(world).post(url, {**data, "limit": "50"})
    assert field_errors(text(refused), "limit") == ["Between 1 and 10 passages."]
    member_client(world).post(url, {**data, "limit": "4"})
    tool = Tool.objects.for_tenant(world.tenant).get(name="faq")
    assert tool.config == {"limit": 4}
    assert tool.parameters["required"] == ["query"]


def test_a_connector_tool_needs_an_integration_of_its_kind(world: TenantWorld) -> None:
    url = reverse("console:tool-new") + "?kind=connector"
    data = {
        "name": "ticket",
        "description": "Open a ticket.",
        "operation": "zendesk/create_ticket",
        "integration": world.integration.public_id,  # a bearer token, not Zendesk
    }
    response = member_client(world).post(url, data)
    assert field_errors(text(response), "integration") == ["Choose a Zendesk integration."]
    zendesk = factories.IntegrationFactory(
        tenant=world.tenant,
        kind="zendesk",
        config={"subdomain": "acme", "email": "ops@acme.test"},
        secrets={"api_token": "t"},
    )
    member_client(world).post(url, {**data, "integration": zendesk.public_id})
    tool = Tool.objects.for_tenant(world.tenant).get(name="ticket")
    assert tool.config == {"connector": "zendesk", "operation": "create_ticket"}
    assert tool.integration == zendesk


def test_the_tool_page_edits_the_tool(world: TenantWorld) -> None:
    client = member_client(world)
    page = text(client.get(tool_url(world.tool)))
    assert 'value="https://93.184.216.34/items/{id}"' in page
    data = {
        "name": world.tool.name,
        "description": "Look an item up by its id.",
        "method": "GET",
        "url": "https://93.184.216.34/v2/items/{id}",
        "parameters": json.dumps(world.tool.parameters),
        "integration": "",
    }
    response = client.post(tool_url(world.tool), data, follow=True)
    assert "saved" in text(response)
    world.tool.refresh_from_db()
    assert world.tool.description == "Look an item up by its id."
    assert world.tool.config["url"] == "https://93.184.216.34/v2/items/{id}"
    assert world.tool.integration is None


def test_a_refused_rename_keeps_the_typed_name_and_the_stored_one(world: TenantWorld) -> None:
    other = factories.ToolFactory(tenant=world.tenant, name="taken")
    data = {
        "name": other.name,
        "description": world.tool.description,
        "method": "GET",
        "url": world.tool.config["url"],
        "parameters": json.dumps(world.tool.parameters),
    }
    response = member_client(world).post(tool_url(world.tool), data)
    assert response.status_code == 400
    html = text(response)
    assert field_errors(html, "name") == ["A tool named 'taken' exists."]
    assert f"<h1>{world.tool.name} " in html
    world.tool.refresh_from_db()
    assert world.tool.name != "taken"


def test_a_viewer_reads_a_tool_without_edit_or_test_controls(world: TenantWorld) -> None:
    client = member_client(world, Role.VIEWER)
    html = text(client.get(tool_url(world.tool)))
    assert world.tool.name in html
    assert "Save tool" not in html
    assert "Test this tool" not in html
    assert "Delete tool" not in html
    before = snapshot(world.tenant)
    response = client.post(tool_url(world.tool), {"name": "renamed", "description": "x"})
    assert response.status_code == 403
    assert snapshot(world.tenant) == before


# --- Test this tool ---------------------------------------------------------------------------


def test_testing_an_http_tool_runs_it_with_its_credentials(
    world: TenantWorld, orders_api: FakeServer, settings: Any
) -> None:
    settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    tool = factories.ToolFactory(
        tenant=world.tenant,
        parameters=SCHEMA,
        config={
            "url": orders_api.url + "/orders/{order_id}",
            "response_mapping": {"s": "order.status"},
        },
        integration=world.integration,
    )
    before = snapshot(world.tenant)
    response = member_client(world).post(
        tool_url(tool, "tool-test"), {"arguments": '{"order_id": "A17"}'}
    )
    assert response.status_code == 200
    html = text(response)
    assert 'data-testid="test-result"' in html
    assert '<span class="badge ok">ok</span>' in html
    assert "&quot;s&quot;: &quot;shipped&quot;" in html
    assert "<dt>HTTP status</dt><dd>200</dd>" in html
    assert orders_api.requests[-1].path == "/orders/A17"
    assert snapshot(world.tenant) == before


def test_an_htmx_test_answers_with_the_result_panel_only(world: TenantWorld) -> None:
    tool = factories.ToolFactory(
        tenant=world.tenant, kind=Tool.Kind.END_CALL, parameters={}, config={}
    )
    response = member_client(world).post(
        tool_url(tool, "tool-test"), {"arguments": '{"reason": "done"}'}, HTTP_HX_REQUEST="true"
    )
    html = text(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="tool-test"')
    assert "<html" not in html
    assert "What a live call would do" in html
    assert "&quot;type&quot;: &quot;end_call&quot;" in html


def test_invalid_arguments_are_reported_as_the_api_reports_them(world: TenantWorld) -> None:
    client = member_client(world)
    not_json = client.post(tool_url(world.tool, "tool-test"), {"arguments": "{oops"})
    assert not_json.status_code == 400
    assert field_errors(text(not_json), "arguments") == ["Enter a valid JSON."]
    a_list = client.post(tool_url(world.tool, "tool-test"), {"arguments": "[1]"})
    assert field_errors(text(a_list), "arguments") == ['A JSON object, e.g. {"order_id": "A17"}.']
    missing = text(client.post(tool_url(world.tool, "tool-test"), {"arguments": "{}"}))
    assert "Invalid arguments: arguments: &#x27;id&#x27; is a required property" in missing
    assert '<span class="badge error">failed</span>' in missing


def test_a_transfer_is_tried_against_a_versions_targets(world: TenantWorld) -> None:
    tool = factories.ToolFactory(
        tenant=world.tenant, kind=Tool.Kind.TRANSFER_CALL, parameters={}, config={}
    )
    world.version.transfer_targets = [{"name": "Sales", "destination": "+14155550100"}]
    world.version.save()
    client = member_client(world)
    page = text(client.get(tool_url(tool)))
    assert f'value="{world.version.public_id}"' in page
    without = text(client.post(tool_url(tool, "tool-test"), {"arguments": '{"target": "sales"}'}))
    assert "Transfer targets belong to a version" in without
    data = {"arguments": '{"target": "sales"}', "version": world.version.public_id}
    tried = text(client.post(tool_url(tool, "tool-test"), data))
    assert "+14155550100" in tried


def test_a_member_without_tools_write_cannot_test(world: TenantWorld) -> None:
    client = member_client(world, Role.VIEWER)
    response = client.post(tool_url(world.tool, "tool-test"), {"arguments": '{"id": "1"}'})
    assert response.status_code == 403


# --- Deleting ---------------------------------------------------------------------------------


def test_deleting_a_tool_asks_first(world: TenantWorld) -> None:
    client = member_client(world)
    asked = client.post(tool_url(world.tool, "tool-delete"))
    assert asked.status_code == 200
    assert 'name="confirmed" value="yes"' in text(asked)
    assert Tool.objects.for_tenant(world.tenant).filter(pk=world.tool.pk).exists()
    done = client.post(tool_url(world.tool, "tool-delete"), {"confirmed": "yes"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("console:tools")
    assert f"Tool {world.tool.name} deleted." in text(done)
    assert not Tool.objects.for_tenant(world.tenant).filter(pk=world.tool.pk).exists()


def test_a_tool_in_use_is_kept_and_the_page_says_why(world: TenantWorld) -> None:
    factories.VersionToolFactory(version=world.version, tool=world.tool)
    response = member_client(world).post(
        tool_url(world.tool, "tool-delete"), {"confirmed": "yes"}, follow=True
    )
    assert f"Versions use this tool: {world.version.public_id}." in text(response)
    assert Tool.objects.for_tenant(world.tenant).filter(pk=world.tool.pk).exists()


# --- Integrations -----------------------------------------------------------------------------


def test_integrations_show_which_secrets_are_set_never_their_values(world: TenantWorld) -> None:
    html = text(member_client(world).get(reverse("console:integrations")))
    assert world.integration.name in html
    assert "Token: set" in html
    assert "secret-token-value" not in html


def test_an_integration_is_created_with_its_secret(world: TenantWorld) -> None:
    client = member_client(world)
    chooser = text(client.get(reverse("console:integration-new")))
    assert "Bearer token" in chooser and "Zendesk" in chooser
    url = reverse("console:integration-new") + "?kind=api_key_header"
    missing = client.post(url, {"name": "Orders API", "config_header_name": "X-Key"})
    assert missing.status_code == 400
    assert field_errors(text(missing), "secret_value") == ["This field is required."]
    assert 'value="X-Key"' in text(missing)
    data = {"name": "Orders API", "config_header_name": "X-Key", "secret_value": "k-123"}
    response = client.post(url, data, follow=True)
    integration = Integration.objects.for_tenant(world.tenant).get(name="Orders API")
    assert response.redirect_chain[-1][0] == integration_url(integration)
    assert integration.config == {"header_name": "X-Key"}
    assert integration.secrets == {"value": "k-123"}
    assert "k-123" not in text(response)


def test_a_secret_with_a_line_break_is_refused_next_to_its_field(world: TenantWorld) -> None:
    url = reverse("console:integration-new") + "?kind=bearer_token"
    response = member_client(world).post(url, {"name": "Bad", "secret_token": "a\u00e9b"})
    assert field_errors(text(response), "secret_token") == [
        "Use plain ASCII characters, without line breaks."
    ]
    assert "a\u00e9b" not in text(response)


def test_the_edit_page_never_shows_a_secret_and_an_empty_field_keeps_it(
    world: TenantWorld,
) -> None:
    client = member_client(world)
    page = text(client.get(integration_url(world.integration)))
    assert "secret-token-value" not in page
    assert "Set: leave empty to keep it." in page
    client.post(integration_url(world.integration), {"name": "Renamed", "secret_token": ""})
    world.integration.refresh_from_db()
    assert world.integration.name == "Renamed"
    assert world.integration.secrets == {"token": "secret-token-value"}
    client.post(integration_url(world.integration), {"name": "Renamed", "secret_token": "new"})
    world.integration.refresh_from_db()
    assert world.integration.secrets == {"token": "new"}
    event = (
        AuditEvent.objects.for_tenant(world.tenant).filter(action="integration.update").latest("pk")
    )
    assert "new" not in json.dumps(event.changes)


def test_an_editor_sees_an_integration_but_cannot_change_it(world: TenantWorld) -> None:
    client = member_client(world, Role.EDITOR)
    page = text(client.get(integration_url(world.integration)))
    assert world.integration.name in page
    assert "Save integration" not in page
    assert "Delete integration" not in page
    before = snapshot(world.tenant)
    response = client.post(integration_url(world.integration), {"name": "x", "secret_token": "y"})
    assert response.status_code == 403
    assert snapshot(world.tenant) == before


def test_an_integration_used_by_a_tool_is_kept(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.post(
        integration_url(world.integration, "integration-delete"), {"confirmed": "yes"}, follow=True
    )
    assert f"Tools use this integration: {world.tool.name}." in text(response)
    world.tool.delete()
    asked = client.post(integration_url(world.integration, "integration-delete"))
    assert "Delete integration" in text(asked)
    assert Integration.objects.for_tenant(world.tenant).filter(pk=world.integration.pk).exists()
    client.post(integration_url(world.integration, "integration-delete"), {"confirmed": "yes"})
    assert not Integration.objects.for_tenant(world.tenant).filter(pk=world.integration.pk).exists()
