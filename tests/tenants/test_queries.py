"""A page of 50 costs the same number of queries as a page of 1, on every list endpoint."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.models import AuditEvent
from tests import factories as f
from tests.conftest import TenantWorld

pytestmark = pytest.mark.django_db


def _versions(world: TenantWorld) -> None:
    for _ in range(50):
        version = f.AgentVersionFactory(agent=world.agent)
        f.VersionToolFactory(version=version)
        f.VersionKnowledgeBaseFactory(version=version)


def _revisions(world: TenantWorld) -> None:
    f.PromptRevisionFactory.create_batch(50, template=world.prompt_template)


def _templates(world: TenantWorld) -> None:
    for _ in range(50):
        f.PromptRevisionFactory(template=f.PromptTemplateFactory(tenant=world.tenant))


# (path for a world, what fills it with 50 more rows)
LISTS: dict[str, tuple[Callable[[TenantWorld], str], Callable[[TenantWorld], Any]]] = {
    "members": (
        lambda w: "/v1/members",
        lambda w: f.MembershipFactory.create_batch(50, tenant=w.tenant),
    ),
    "invitations": (
        lambda w: "/v1/invitations",
        lambda w: f.InvitationFactory.create_batch(50, tenant=w.tenant, invited_by=f.UserFactory()),
    ),
    "api-keys": (
        lambda w: "/v1/api-keys",
        lambda w: f.ApiKeyFactory.create_batch(50, tenant=w.tenant, created_by=f.UserFactory()),
    ),
    "audit-events": (
        lambda w: "/v1/audit-events",
        lambda w: f.AuditEventFactory.create_batch(50, tenant=w.tenant),
    ),
    "agents": (lambda w: "/v1/agents", lambda w: f.AgentFactory.create_batch(50, tenant=w.tenant)),
    "versions": (lambda w: f"/v1/agents/{w.agent.public_id}/versions", _versions),
    "prompt-templates": (lambda w: "/v1/prompt-templates", _templates),
    "revisions": (
        lambda w: f"/v1/prompt-templates/{w.prompt_template.public_id}/revisions",
        _revisions,
    ),
    "integrations": (
        lambda w: "/v1/integrations",
        lambda w: f.IntegrationFactory.create_batch(50, tenant=w.tenant),
    ),
    "tools": (
        lambda w: "/v1/tools",
        lambda w: f.ToolFactory.create_batch(50, tenant=w.tenant, integration=w.integration),
    ),
    "knowledge-bases": (
        lambda w: "/v1/knowledge-bases",
        lambda w: f.KnowledgeBaseFactory.create_batch(50, tenant=w.tenant),
    ),
    "documents": (
        lambda w: f"/v1/knowledge-bases/{w.knowledge_base.public_id}/documents",
        lambda w: f.DocumentFactory.create_batch(50, knowledge_base=w.knowledge_base),
    ),
    "chunks": (
        lambda w: f"/v1/documents/{w.document.public_id}/chunks",
        lambda w: f.ChunkFactory.create_batch(50, document=w.document),
    ),
    "carrier-accounts": (
        lambda w: "/v1/carrier-accounts",
        lambda w: f.CarrierAccountFactory.create_batch(50, tenant=w.tenant),
    ),
    "phone-numbers": (
        lambda w: "/v1/phone-numbers",
        lambda w: f.PhoneNumberFactory.create_batch(
            50, carrier_account=w.carrier_account, agent=w.agent
        ),
    ),
    "calls": (
        lambda w: "/v1/calls",
        lambda w: f.CallFactory.create_batch(50, phone_number=w.phone_number),
    ),
    "erasures": (
        lambda w: "/v1/erasures",
        lambda w: f.ErasureFactory.create_batch(50, tenant=w.tenant),
    ),
    "call-events": (
        lambda w: f"/v1/calls/{w.call.public_id}/events",
        lambda w: [
            f.CallEventFactory(call=w.call, sequence=n, offset_ms=n * 100) for n in range(3, 53)
        ],
    ),
}


@pytest.mark.parametrize("name", LISTS)
def test_list_query_count_does_not_grow_with_the_page(
    world: TenantWorld, name: str, django_assert_num_queries
) -> None:
    path_for, fill = LISTS[name]
    fill(world)
    path = path_for(world)
    client = world.session_client()
    client.get(path)  # warm up: the session's first request may write (last login etc.)
    with CaptureQueriesContext(connection) as one:
        first = client.get(f"{path}?limit=1")
    assert len(first.json()["results"]) == 1
    with django_assert_num_queries(len(one)):
        page = client.get(f"{path}?limit=50")
    assert len(page.json()["results"]) == 50


def test_cursor_pages_walk_every_row_once(world: TenantWorld) -> None:
    f.AuditEventFactory.create_batch(7, tenant=world.tenant)
    total = AuditEvent.objects.for_tenant(world.tenant).count()
    seen: list[str] = []
    url: str | None = "/v1/audit-events?limit=3"
    while url:
        body = world.client.get(url).json()
        seen += [e["id"] for e in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == total
