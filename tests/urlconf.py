"""Walk the URL conf and the WebSocket routes, so coverage tests can enumerate them."""

from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver


@dataclass(frozen=True)
class FoundRoute:
    pattern: str
    name: str | None
    takes_arguments: bool


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[FoundRoute]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(list(entry.url_patterns), prefix + str(entry.pattern))
        else:
            full = prefix + str(entry.pattern)
            takes_arguments = "<" in full or "(?P" in full
            yield FoundRoute(full, entry.name, takes_arguments)


def http_routes() -> list[FoundRoute]:
    return list(_walk(list(get_resolver().url_patterns)))


def websocket_routes() -> list[FoundRoute]:
    from config.routing import websocket_urlpatterns

    return list(_walk(list(websocket_urlpatterns)))
