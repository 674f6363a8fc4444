"""The console's isolation and permission matrix, and the rules every page keeps.

Each page in tests/console_pages.py renders for a member allowed to see it, answers 403 to a
member whose role lacks its permission, and 404 for another tenant's object, changing nothing.
"""

from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, reverse

from console.nav import NAV
from console.urls import console_patterns
from tenants.roles import Role, role_permissions
from tests.conftest import TenantWorld
from tests.console.conftest import member_client
from tests.console_pages import PAGES, PAGES_BY_NAME, Page
from tests.test_isolation import snapshot


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found += _walk(list(entry.url_patterns), prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            found.append((prefix + str(entry.pattern), entry.name or ""))
    return found


CONSOLE_ROUTES = _walk(console_patterns)


def console_route_patterns() -> set[str]:
    return {pattern for pattern, _ in CONSOLE_ROUTES}


def test_every_console_page_is_registered() -> None:
    names = {name for _, name in CONSOLE_ROUTES} | {"home"}
    missing = names - set(PAGES_BY_NAME)
    assert not missing, f"add these pages to tests/console_pages.py: {sorted(missing)}"
    stale = set(PAGES_BY_NAME) - names
    assert not stale, f"tests/console_pages.py lists pages that no longer exist: {sorted(stale)}"


def test_a_page_takes_at_most_an_object_id() -> None:
    for pattern, name in CONSOLE_ROUTES:
        arguments = pattern.count("<")
        assert arguments == 0 or (arguments == 1 and "<str:id>" in pattern), pattern
        assert (arguments == 1) == (PAGES_BY_NAME[name].object is not None), name


def test_every_navigation_entry_resolves() -> None:
    for entry in NAV:
        reverse(entry.url_name)


def url_of(page: Page, world: TenantWorld) -> str:
    name = page.name if page.name == "home" else f"console:{page.name}"
    kwargs = {"id": getattr(world, page.object).public_id} if page.object else {}
    url = reverse(name, kwargs=kwargs)
    return f"{url}?{page.query}" if page.query else url


def request(client: Any, page: Page, world: TenantWorld, url: str | None = None) -> Any:
    url = url or url_of(page, world)
    if page.method == "POST":
        data = page.data(world) if page.data else {}
        return client.post(url, {"confirmed": "yes", **data})
    return client.get(url)


GET_PAGES = [page for page in PAGES if page.method == "GET"]


@pytest.mark.parametrize("page", GET_PAGES, ids=lambda p: p.name)
def test_an_allowed_member_sees_the_page(world: TenantWorld, page: Page) -> None:
    response = request(member_client(world), page, world)
    assert response.status_code == 200, response.content.decode()[:2000]
    assert response["Content-Security-Policy"].startswith("default-src 'self'")


def _refused_role(permission: str) -> str | None:
    return next((role for role in Role.values if permission not in role_permissions(role)), None)


GUARDED = [page for page in PAGES if page.permission and _refused_role(page.permission)]


@pytest.mark.parametrize("page", GUARDED, ids=lambda p: p.name)
def test_a_member_without_the_permission_is_refused(world: TenantWorld, page: Page) -> None:
    assert page.permission is not None
    role = _refused_role(page.permission)
    assert role is not None
    client = member_client(world, role)
    before = snapshot(world.tenant)
    response = request(client, page, world)
    assert response.status_code == 403
    assert page.permission in response.content.decode()
    assert snapshot(world.tenant) == before


WITH_OBJECT = [page for page in PAGES if page.object]


@pytest.mark.parametrize("page", WITH_OBJECT, ids=lambda p: f"{p.method} {p.name}")
def test_another_tenants_object_is_not_found(
    world: TenantWorld, other_world: TenantWorld, page: Page
) -> None:
    before = snapshot(other_world.tenant)
    theirs = url_of(page, other_world)
    response = request(member_client(world), page, world, url=theirs)
    assert response.status_code == 404
    assert snapshot(other_world.tenant) == before


def test_signed_out_visitors_are_sent_to_sign_in(world: TenantWorld, client: Any) -> None:
    for page in GET_PAGES:
        response = client.get(url_of(page, world))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
