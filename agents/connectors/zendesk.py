"""Zendesk Support: create a ticket, look one up (API token auth: `{email}/token:{api_token}`)."""

from agents.connectors import Connector, Operation
from agents.integrations import CredentialField, IntegrationKind, basic

INTEGRATION = IntegrationKind(
    kind="zendesk",
    label="Zendesk",
    description="Zendesk Support with an API token (Admin Center > Apps and integrations > APIs).",
    fields=(
        CredentialField("subdomain", "Subdomain", help="acme for acme.zendesk.com"),
        CredentialField("email", "Agent email"),
        CredentialField("api_token", "API token", secret=True),
    ),
    auth=lambda config, secrets: basic(f"{config['email']}/token", secrets["api_token"]),
)

CONNECTOR = Connector(
    kind="zendesk",
    label="Zendesk",
    integration=INTEGRATION,
    base_url="https://{subdomain}.zendesk.com",
    operations={
        "create_ticket": Operation(
            name="create_ticket",
            description="Open a support ticket for the caller.",
            parameters={
                "type": "object",
                "properties": {
                    "subject": {"type": "string", "description": "One line summary"},
                    "description": {"type": "string", "description": "What the caller needs"},
                    "requester_name": {"type": "string"},
                    "requester_email": {"type": "string", "format": "email"},
                },
                "required": ["subject", "description"],
            },
            method="POST",
            path="/api/v2/tickets.json",
            body={
                "ticket": {
                    "subject": "{subject}",
                    "comment": {"body": "{description}"},
                    "requester": {"name": "{requester_name}", "email": "{requester_email}"},
                }
            },
            response_mapping={"ticket_id": "ticket.id", "status": "ticket.status"},
        ),
        "lookup_ticket": Operation(
            name="lookup_ticket",
            description="Find a ticket by its number and tell its status.",
            parameters={
                "type": "object",
                "properties": {"ticket_id": {"type": "integer", "description": "Ticket number"}},
                "required": ["ticket_id"],
            },
            method="GET",
            path="/api/v2/tickets/{ticket_id}.json",
            response_mapping={
                "ticket_id": "ticket.id",
                "subject": "ticket.subject",
                "status": "ticket.status",
                "updated_at": "ticket.updated_at",
            },
        ),
    },
)
