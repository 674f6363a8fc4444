"""The tenancy isolation matrix: tenant A's credentials never reach tenant B's objects.

For every route that takes an object id, A asking for B's object gets the same 404 as for an
object that does not exist, and B's data is unchanged. Lists never show B's objects. The test
enumerates the URL conf and the WebSocket routes itself and fails on any it does not cover.
"""

import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.urls import reverse

from tenants.models import Tenant, TenantOwnedModel
from tests.api_routes import (
    PUBLIC_API_ROUTES,
    ROUTES,
    ROUTES_BY_NAME,
    Call,
    Route,
    call_id,
    calls,
    send,
    target_of,
)
from tests.conftest import TenantWorld
from tests.urlconf import http_routes, websocket_routes

# Routes outside /v1/ that take an argument, and why the matrix does not apply to them.
EXEMPT_ROUTES = {
    "admin/": "the operator admin is cross-tenant by design and needs a verified staff user "
    "(tests/tenants/test_admin_2fa.py)",
    "accounts/invitations/<str:token>/": "addressed by a secret token, not an object id; the "
    "token is the credential (tests/tenants/test_invitation_flow.py)",
}

# pattern -> the test that covers it. The media stream takes no id in its path: the call it
# joins is named by a signed, short-lived token, and a token opens no other call, of this tenant
# or another.
WEBSOCKET_ROUTES: dict[str, str] = {
    "carriers/twilio/media": "tests/workers/test_failures.py::"
    "test_forged_expired_or_misused_tokens_close_the_stream",
}


def test_every_api_route_is_covered() -> None:
    api_routes = {r.name or r.pattern for r in http_routes() if r.pattern.startswith("v1/")}
    uncovered = api_routes - set(ROUTES_BY_NAME) - PUBLIC_API_ROUTES
    assert not uncovered, f"add these routes to tests/api_routes.py: {sorted(uncovered)}"
    stale = set(ROUTES_BY_NAME) - api_routes
    assert not stale, f"tests/api_routes.py lists routes that no longer exist: {sorted(stale)}"


def test_every_route_with_an_argument_is_covered_or_exempt() -> None:
    from tests.console.test_pages import console_route_patterns

    # Console pages have their own matrix (tests/console/test_pages.py).
    console = console_route_patterns()
    uncovered = [
        route.pattern
        for route in http_routes()
        if route.takes_arguments
        and route.pattern not in console
        and route.name not in ROUTES_BY_NAME
        and not any(route.pattern.startswith(prefix) for prefix in EXEMPT_ROUTES)
    ]
    assert not uncovered, f"routes with an object id need isolation coverage: {uncovered}"


def test_every_websocket_route_is_covered() -> None:
    uncovered = [r.pattern for r in websocket_routes() if r.pattern not in WEBSOCKET_ROUTES]
    assert not uncovered, f"WebSocket routes need isolation coverage: {uncovered}"
    for covering in WEBSOCKET_ROUTES.values():
        module, test = covering.split("::")
        imported = importlib.import_module(module.removesuffix(".py").replace("/", "."))
        assert callable(getattr(imported, test, None)), f"{covering} does not exist"


def snapshot(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """Every row the tenant owns, across every tenant-owned table, plus the tenant itself."""
    rows: dict[str, list[dict[str, Any]]] = {
        "tenant": list(Tenant.objects.filter(pk=tenant.pk).values())
    }
    for model in apps.get_models():
        if issubclass(model, TenantOwnedModel):
            rows[model._meta.label] = list(
                model.all_tenants.filter(tenant=tenant).order_by("pk").values()
            )
    return rows


ID_CALLS = [(route, call) for route, call in calls() if route.object is not None]


@pytest.mark.parametrize("route_call", ID_CALLS, ids=call_id)
@pytest.mark.parametrize("credential", ["api_key", "session"])
def test_another_tenants_object_is_not_found(
    world: TenantWorld, other_world: TenantWorld, route_call: tuple[Route, Call], credential: str
) -> None:
    route, call = route_call
    client = world.client if credential == "api_key" else world.session_client()
    theirs = target_of(route, call, other_world)
    missing = SimpleNamespace(public_id=theirs.public_id[:-4] + "zzzz")
    before = snapshot(other_world.tenant)

    answer = send(client, route, call, world=world, target=theirs)
    absent = send(client, route, call, world=world, target=missing)

    assert answer.status_code == 404, answer.content
    # Missing and forbidden are indistinguishable, apart from the path echoed back.
    assert {k: v for k, v in answer.json().items() if k not in ("instance", "request_id")} == {
        k: v for k, v in absent.json().items() if k not in ("instance", "request_id")
    }
    assert snapshot(other_world.tenant) == before


LIST_CALLS = [(r, c) for r, c in calls() if r.object is None and c.method == "GET"]


@pytest.mark.parametrize("route_call", LIST_CALLS, ids=call_id)
def test_lists_show_only_own_objects(
    world: TenantWorld, other_world: TenantWorld, route_call: tuple[Route, Call]
) -> None:
    route, call = route_call
    response = send(world.client, route, call, world=world)
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode()
    leaked = [public_id for public_id in other_world.public_ids() if public_id in text]
    assert not leaked
    if route.name.endswith("-list"):
        assert any(public_id in text for public_id in world.public_ids())


CREATE_CALLS = [(r, c) for r, c in calls() if c.method == "POST" and r.name.endswith("-list")]


@pytest.mark.parametrize("route_call", CREATE_CALLS, ids=call_id)
def test_a_tenant_id_in_the_body_is_ignored(
    world: TenantWorld, other_world: TenantWorld, route_call: tuple[Route, Call]
) -> None:
    route, call = route_call
    before = snapshot(other_world.tenant)
    body = call.body(world) if callable(call.body) else dict(call.body or {})
    body.update({"tenant": other_world.tenant.public_id, "tenant_id": other_world.tenant.pk})
    response = send(world.client, route, call, world=world, body=body)
    assert response.status_code == 201, response.content
    assert snapshot(other_world.tenant) == before
    created = response.json()["id"]
    detail = route.name.replace("-list", "-detail")
    assert world.client.get(reverse(detail, kwargs={"id": created})).status_code == 200
    assert other_world.client.get(reverse(detail, kwargs={"id": created})).status_code == 404


def test_routes_registry_has_no_duplicates() -> None:
    assert len(ROUTES) == len(ROUTES_BY_NAME)
