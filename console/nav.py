"""The console's navigation: each entry shows only to members whose role grants its permission."""

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    permission: str | None
    # The first path segment that marks the entry as current (its section of the console).
    section: str


NAV = [
    NavEntry("Dashboard", "home", None, ""),
    NavEntry("Agents", "console:agents", "agents:read", "agents"),
    NavEntry("Tools", "console:tools", "tools:read", "tools"),
    NavEntry("Knowledge", "console:knowledge", "knowledge:read", "knowledge"),
    NavEntry("Numbers", "console:numbers", "numbers:read", "numbers"),
    NavEntry("Calls", "console:calls", "calls:read", "calls"),
    NavEntry("Billing", "console:billing", "billing:read", "billing"),
    NavEntry("Team", "console:team", "members:read", "team"),
    NavEntry("Settings", "console:settings", None, "settings"),
]


def nav_for(permissions: frozenset[str], path: str) -> list[dict[str, object]]:
    section = path.strip("/").split("/")[0]
    return [
        {"label": e.label, "url": reverse(e.url_name), "current": e.section == section}
        for e in NAV
        if e.permission is None or e.permission in permissions
    ]
