"""Through the API alone: integration, tool, knowledge, prompt, agent and versions, publishing,
a sandbox and a (fake) Twilio number, and a 90/10 split. At each step a bad request first gets a
problem-details error and changes nothing."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from agents.models import Agent, AgentVersion
from agents.selectors import active_number, version_for_call
from tests.conftest import key_client
from tests.factories import ApiKeyFactory, TenantFactory
from tests.fakes.twilio import FakeTwilio
from tests.test_isolation import snapshot

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, client: APIClient, tenant: Any) -> None:
        self.client, self.tenant = client, tenant

    def ok(
        self, method: str, path: str, body: Any = None, status: int = 200, **headers: str
    ) -> Any:
        response = self.client.generic(
            method, path, _json(body), content_type="application/json", **headers
        )
        assert response.status_code == status, response.content
        return response.json()

    def refused(
        self, method: str, path: str, body: Any = None, status: int = 400, **headers: str
    ) -> dict[str, Any]:
        before = snapshot(self.tenant)
        response = self.client.generic(
            method, path, _json(body), content_type="application/json", **headers
        )
        assert response.status_code == status, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert snapshot(self.tenant) == before, "a refused request changed something"
        return dict(response.json())


def _json(body: Any) -> str:
    import json

    return json.dumps(body) if body is not None else ""


def test_a_client_sets_up_a_phone_agent_with_the_api_alone(fake_twilio: FakeTwilio) -> None:
    tenant = TenantFactory()
    api = Api(key_client(ApiKeyFactory(tenant=tenant)), tenant)
    api.ok("GET", "/v1/")  # the key's first use is recorded now, not during a refused request

    # 1. An integration holding the credential for the business's order system.
    api.refused("POST", "/v1/integrations", {"kind": "bearer_token", "name": "Orders"})
    integration = api.ok(
        "POST",
        "/v1/integrations",
        {"kind": "bearer_token", "name": "Orders", "secrets": {"token": "t0k3n"}},
        201,
    )

    # 2. Tools: an HTTP lookup and a transfer to a person.
    lookup_body = {
        "name": "order_status",
        "description": "Where is an order?",
        "kind": "http",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        "config": {"url": "https://93.184.216.34/orders/{order_id}"},
        "integration": integration["id"],
    }
    api.refused(
        "POST", "/v1/tools", {**lookup_body, "config": {"url": "http://169.254.169.254/{order_id}"}}
    )
    lookup = api.ok("POST", "/v1/tools", lookup_body, 201)
    transfer = api.ok(
        "POST",
        "/v1/tools",
        {"name": "transfer", "description": "Hand over to a person", "kind": "transfer_call"},
        201,
    )

    # 3. A knowledge base with a document, and the tool that searches it.
    kb = api.ok("POST", "/v1/knowledge-bases", {"name": "FAQ"}, 201)
    api.refused(
        "POST", f"/v1/knowledge-bases/{kb['id']}/documents", {"title": "Empty", "content": "  "}
    )
    api.ok(
        "POST",
        f"/v1/knowledge-bases/{kb['id']}/documents",
        {"title": "Returns", "content": "Returns are free within 30 days."},
        201,
    )
    search = api.ok(
        "POST",
        "/v1/tools",
        {"name": "faq", "description": "Search the FAQ", "kind": "search_knowledge"},
        201,
    )

    # 4. A prompt template.
    api.refused(
        "POST",
        "/v1/prompt-templates",
        {"name": "Support", "body": "For {{ shop }}", "variables": []},
    )
    template = api.ok(
        "POST",
        "/v1/prompt-templates",
        {
            "name": "Support",
            "body": "You help customers of {{ shop }}. Be brief.",
            "variables": [{"name": "shop", "type": "string"}],
        },
        201,
    )
    revision = template["latest_revision"]["id"]

    # 5. An agent with a version, published.
    agent = api.ok("POST", "/v1/agents", {"name": "Support line"}, 201)
    api.refused("POST", f"/v1/agents/{agent['id']}/versions", {"voice": "robot"})
    draft = api.ok(
        "POST",
        f"/v1/agents/{agent['id']}/versions",
        {
            "prompt_revision": revision,
            "tools": [lookup["id"], transfer["id"], search["id"]],
            "knowledge_bases": [kb["id"]],
            "greeting": "Hi, this is Acme support.",
            "transfer_targets": [{"name": "support team", "destination": "+14155550123"}],
        },
        201,
    )
    problems = api.refused("POST", f"/v1/versions/{draft['id']}/publish", {})
    assert problems["errors"][0]["field"] == "variables.shop"
    api.ok("PATCH", f"/v1/versions/{draft['id']}", {"prompt_variables": {"shop": "Acme"}})
    v1 = api.ok("POST", f"/v1/versions/{draft['id']}/publish", {})
    assert v1["instructions"] == "You help customers of Acme. Be brief."

    # 6. A second version, published without taking calls yet.
    v2 = api.ok(
        "POST", f"/v1/agents/{agent['id']}/versions", {"based_on": v1["id"], "voice": "cedar"}, 201
    )
    api.ok("POST", f"/v1/versions/{v2['id']}/publish", {"activate": False})

    # 7. Numbers: one from the sandbox, one from Twilio (a fake here).
    sandbox = api.ok("POST", "/v1/carrier-accounts", {"kind": "sandbox", "name": "Sandbox"}, 201)
    available = api.ok(
        "GET", f"/v1/phone-numbers/available?carrier_account={sandbox['id']}&area_code=512"
    )
    purchase = {
        "carrier_account": sandbox["id"],
        "phone_number": available[0]["phone_number"],
        "agent": agent["id"],
    }
    api.refused("POST", "/v1/phone-numbers", purchase)  # no Idempotency-Key
    number = api.ok(
        "POST", "/v1/phone-numbers", purchase, 201, HTTP_IDEMPOTENCY_KEY="buy-sandbox-1"
    )

    fake_twilio.for_sale["+12065550177"] = ("Seattle", "WA")
    twilio = api.ok(
        "POST",
        "/v1/carrier-accounts",
        {
            "kind": "twilio",
            "name": "Twilio",
            "config": {"account_sid": fake_twilio.account_sid},
            "secrets": {"auth_token": fake_twilio.auth_token},
        },
        201,
    )
    api.refused(
        "POST",
        "/v1/phone-numbers",
        {"carrier_account": twilio["id"], "phone_number": "+12065550100"},
        502,
        HTTP_IDEMPOTENCY_KEY="buy-twilio-0",
    )
    twilio_number = api.ok(
        "POST",
        "/v1/phone-numbers",
        {"carrier_account": twilio["id"], "phone_number": "+12065550177", "agent": agent["id"]},
        201,
        HTTP_IDEMPOTENCY_KEY="buy-twilio-1",
    )
    assert twilio_number["carrier"] == "twilio"

    # 8. A 90/10 split between the two versions.
    split_url = f"/v1/agents/{agent['id']}/traffic-split"
    api.refused(
        "PUT",
        split_url,
        {"allocations": [{"version": v1["id"], "weight": 90}, {"version": v2["id"], "weight": 20}]},
    )
    split = api.ok(
        "PUT",
        split_url,
        {"allocations": [{"version": v1["id"], "weight": 90}, {"version": v2["id"], "weight": 10}]},
    )
    assert [(a["version"], a["weight"]) for a in split["allocations"]] == [
        (v1["id"], 90),
        (v2["id"], 10),
    ]

    # A call to either number now finds a published version of the agent.
    for e164 in (number["phone_number"], twilio_number["phone_number"]):
        routed = active_number(e164)
        assert routed is not None
        version = version_for_call(routed, "+15035550100")
        assert version is not None and version.public_id in (v1["id"], v2["id"])
    assert Agent.objects.for_tenant(tenant).count() == 1
    assert AgentVersion.objects.for_tenant(tenant).filter(status="published").count() == 2
