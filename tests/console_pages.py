"""Every console page, with what the suites need to exercise it.

tests/console/test_pages.py walks the console's URL conf and fails when a page is missing here,
so a new page cannot ship without isolation and permission coverage. A page takes at most one
path argument, `id`, the public id of the TenantWorld object named by `object`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import TenantWorld

Build = Callable[["TenantWorld"], dict[str, Any]]


@dataclass(frozen=True)
class Page:
    name: str  # without the "console:" namespace; "home" is the dashboard
    permission: str | None  # None: any member of the tenant
    object: str | None = None
    method: str = "GET"
    # What a POST sends (confirmed where the page asks first); GET pages may add a query.
    data: Build | None = None
    query: str = ""
    # Extra pages reached with the same permission but not linked from the navigation.
    notes: str = field(default="", compare=False)


def _all_pages() -> list[Page]:
    """Each area of the console lists its pages in tests/console/pages/<area>.py."""
    from tests.console.pages import (
        agents,
        billing,
        calls,
        knowledge,
        numbers,
        settings,
        team,
        tools,
    )

    areas = [agents, tools, knowledge, numbers, calls, billing, team, settings]
    return [Page("home", None)] + [page for area in areas for page in area.PAGES]


PAGES: list[Page] = _all_pages()
PAGES_BY_NAME = {page.name: page for page in PAGES}
