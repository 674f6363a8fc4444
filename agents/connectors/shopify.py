"""Shopify: tell an order's status (Admin API access token of a custom app)."""

from agents.connectors import Connector, Operation
from agents.integrations import CredentialField, IntegrationKind

API_VERSION = "2024-10"

INTEGRATION = IntegrationKind(
    kind="shopify",
    label="Shopify",
    description="A custom app's Admin API access token with the read_orders scope.",
    fields=(
        CredentialField("shop", "Shop", help="acme for acme.myshopify.com"),
        CredentialField("access_token", "Admin API access token", secret=True),
    ),
    auth=lambda config, secrets: {"X-Shopify-Access-Token": secrets["access_token"]},
)

CONNECTOR = Connector(
    kind="shopify",
    label="Shopify",
    integration=INTEGRATION,
    base_url="https://{shop}.myshopify.com",
    operations={
        "order_status": Operation(
            name="order_status",
            description="Look up an order by its number (as on the receipt, e.g. #1001).",
            parameters={
                "type": "object",
                "properties": {"order_number": {"type": "string", "description": "e.g. #1001"}},
                "required": ["order_number"],
            },
            method="GET",
            path=f"/admin/api/{API_VERSION}/orders.json",
            query={"name": "{order_number}", "status": "any"},
            response_mapping={
                "order": "orders.0.name",
                "financial_status": "orders.0.financial_status",
                "fulfillment_status": "orders.0.fulfillment_status",
                "tracking_number": "orders.0.fulfillments.0.tracking_number",
                "tracking_url": "orders.0.fulfillments.0.tracking_url",
            },
        ),
    },
)
