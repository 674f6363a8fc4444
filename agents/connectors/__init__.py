"""First-class connectors: declarative operations over the HTTP tool runtime.

Each connector names an integration kind (its credential form), a base URL built from the
integration's settings, and operations, each a request template with a JSON schema for its
arguments and a mapping of the response to what the model sees.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from agents.integrations import IntegrationKind


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    parameters: dict[str, Any]
    method: str
    path: str
    query: dict[str, str] | None = None
    body: Any = None
    response_mapping: dict[str, str] | None = None


@dataclass(frozen=True)
class Connector:
    kind: str
    label: str
    integration: IntegrationKind
    base_url: str  # formatted with the integration's settings, e.g. https://{subdomain}.zendesk.com
    operations: dict[str, Operation]

    def url_base(self, config: dict[str, Any]) -> str:
        template = settings.CONNECTOR_BASE_URLS.get(self.kind, self.base_url)
        return template.format(**config).rstrip("/")


def _registry() -> dict[str, Connector]:
    from agents.connectors import hubspot, shopify, zendesk

    return {c.kind: c for c in (zendesk.CONNECTOR, hubspot.CONNECTOR, shopify.CONNECTOR)}


CONNECTORS = _registry()
