from tests.console_pages import Page

PAGES = [
    Page("tools", "tools:read"),
    Page("tool-new", "tools:write", query="kind=http"),
    Page("tool", "tools:read", object="tool"),
    # Runs the tool and records nothing (as the API's test action); an HTTP tool would reach out,
    # so the sample arguments are invalid: the run stops at the argument check.
    Page(
        "tool-test",
        "tools:write",
        object="tool",
        method="POST",
        data=lambda w: {"arguments": "{}"},
    ),
    Page("tool-delete", "tools:write", object="tool", method="POST"),
    Page("integrations", "integrations:read"),
    Page("integration-new", "integrations:write", query="kind=bearer_token"),
    Page("integration", "integrations:read", object="integration"),
    Page("integration-delete", "integrations:write", object="integration", method="POST"),
]
