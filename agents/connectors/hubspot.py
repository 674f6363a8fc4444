"""HubSpot CRM: look up a contact by email or phone (private app access token)."""

from agents.connectors import Connector, Operation
from agents.integrations import CredentialField, IntegrationKind

INTEGRATION = IntegrationKind(
    kind="hubspot",
    label="HubSpot",
    description="A HubSpot private app access token with the crm.objects.contacts.read scope.",
    fields=(CredentialField("access_token", "Private app access token", secret=True),),
    auth=lambda config, secrets: {"Authorization": f"Bearer {secrets['access_token']}"},
)

CONNECTOR = Connector(
    kind="hubspot",
    label="HubSpot",
    integration=INTEGRATION,
    base_url="https://api.hubapi.com",
    operations={
        "lookup_contact": Operation(
            name="lookup_contact",
            description="Find the caller in the CRM by email address or phone number.",
            parameters={
                "type": "object",
                "properties": {
                    "property": {"type": "string", "enum": ["email", "phone"]},
                    "value": {"type": "string", "description": "The email or phone to look for"},
                },
                "required": ["property", "value"],
            },
            method="POST",
            path="/crm/v3/objects/contacts/search",
            body={
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "{property}", "operator": "EQ", "value": "{value}"}
                        ]
                    }
                ],
                "properties": ["firstname", "lastname", "email", "phone", "lifecyclestage"],
                "limit": 1,
            },
            response_mapping={
                "matches": "total",
                "first_name": "results.0.properties.firstname",
                "last_name": "results.0.properties.lastname",
                "email": "results.0.properties.email",
                "phone": "results.0.properties.phone",
                "lifecycle_stage": "results.0.properties.lifecyclestage",
            },
        ),
    },
)
