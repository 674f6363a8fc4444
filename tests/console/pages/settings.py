from tests.console_pages import Page

WEBHOOK = {
    "url": "https://93.184.215.14/hooks/changed",
    "description": "",
    "event_types": ["call.completed"],
}

PAGES = [
    Page("settings", None),
    Page("settings-security", None),
    Page("settings-authenticator", None),
    Page("settings-recovery-codes", None),
    Page("settings-tenant", "tenant:read"),
    Page(
        "settings-tenant-rename",
        "tenant:write",
        method="POST",
        data=lambda w: {"name": "Renamed Inc"},
    ),
    Page("api-keys", "api_keys:read"),
    Page("api-key-new", "api_keys:write"),
    Page("api-key-revoke", "api_keys:write", object="api_key", method="POST"),
    Page("webhooks", "webhooks:read"),
    Page("webhook-new", "webhooks:write"),
    Page("webhook", "webhooks:read", object="webhook_endpoint"),
    Page("webhook-edit", "webhooks:write", object="webhook_endpoint"),
    Page(
        "webhook-edit",
        "webhooks:write",
        object="webhook_endpoint",
        method="POST",
        data=lambda w: WEBHOOK,
    ),
    Page("webhook-enable", "webhooks:write", object="webhook_endpoint", method="POST"),
    Page("webhook-disable", "webhooks:write", object="webhook_endpoint", method="POST"),
    Page("webhook-rotate", "webhooks:write", object="webhook_endpoint", method="POST"),
    Page("webhook-delete", "webhooks:write", object="webhook_endpoint", method="POST"),
    Page("webhook-delivery-replay", "webhooks:write", object="webhook_delivery", method="POST"),
    Page("settings-privacy", "privacy:read"),
    Page(
        "settings-privacy-retention",
        "privacy:write",
        method="POST",
        data=lambda w: {
            "recording_retention_days": 30,
            "transcript_retention_days": 180,
            "webhook_body_retention_days": 7,
        },
    ),
    Page(
        "settings-privacy-erase",
        "privacy:write",
        method="POST",
        data=lambda w: {"phone_number": "+15005550142"},
    ),
    Page("audit", "audit:read"),
    Page("audit", "audit:read", query="action=api_key.create&page=2"),
]
