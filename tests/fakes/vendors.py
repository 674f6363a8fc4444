"""Fakes of the REST endpoints the connectors call: Zendesk, HubSpot and Shopify.

Each checks its vendor's authentication scheme and answers in its vendor's JSON shape.
"""

import base64
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeServer, Recorded, Reply


@dataclass
class FakeZendesk:
    email: str = "ops@acme.test"
    api_token: str = "zendesk-token"
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    server: FakeServer = field(default_factory=FakeServer)

    def start(self) -> "FakeZendesk":
        self.server.route("POST", r"/api/v2/tickets\.json", self._create)
        self.server.route("GET", r"/api/v2/tickets/(?P<id>\d+)\.json", self._show)
        self.server.start()
        return self

    def _authorised(self, request: Recorded) -> bool:
        token = base64.b64encode(f"{self.email}/token:{self.api_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {token}"

    def _create(self, request: Recorded, match: Any) -> Reply:
        if not self._authorised(request):
            return Reply(401, {"error": "Couldn't authenticate you"})
        ticket = request.json()["ticket"]
        number = len(self.tickets) + 1001
        self.tickets[number] = {
            "id": number,
            "subject": ticket["subject"],
            "description": ticket["comment"]["body"],
            "status": "new",
            "requester": ticket.get("requester"),
            "updated_at": "2026-11-23T10:00:00Z",
        }
        return Reply(201, {"ticket": self.tickets[number]})

    def _show(self, request: Recorded, match: Any) -> Reply:
        if not self._authorised(request):
            return Reply(401, {"error": "Couldn't authenticate you"})
        ticket = self.tickets.get(int(match["id"]))
        if ticket is None:
            return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
        return Reply(200, {"ticket": ticket})


@dataclass
class FakeHubSpot:
    access_token: str = "pat-na1-fake"
    contacts: list[dict[str, str]] = field(default_factory=list)
    server: FakeServer = field(default_factory=FakeServer)

    def start(self) -> "FakeHubSpot":
        self.server.route("POST", r"/crm/v3/objects/contacts/search", self._search)
        self.server.start()
        return self

    def _search(self, request: Recorded, match: Any) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return Reply(
                401, {"status": "error", "message": "Authentication credentials not found."}
            )
        flt = request.json()["filterGroups"][0]["filters"][0]
        found = [c for c in self.contacts if c.get(flt["propertyName"]) == flt["value"]]
        results = [{"id": str(i + 1), "properties": c} for i, c in enumerate(found)]
        return Reply(200, {"total": len(results), "results": results})


@dataclass
class FakeShopify:
    access_token: str = "shpat_fake"
    orders: list[dict[str, Any]] = field(default_factory=list)
    server: FakeServer = field(default_factory=FakeServer)

    def start(self) -> "FakeShopify":
        self.server.route("GET", r"/admin/api/2024-10/orders\.json", self._orders)
        self.server.start()
        return self

    def _orders(self, request: Recorded, match: Any) -> Reply:
        if request.headers.get("x-shopify-access-token") != self.access_token:
            return Reply(
                401,
                {
                    "errors": "[API] Invalid API key or access token "
                    "(unrecognized login or wrong password)"
                },
            )
        name = request.query.get("name", [""])[0]
        return Reply(200, {"orders": [o for o in self.orders if o["name"] == name]})
