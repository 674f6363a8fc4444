from tests.console_pages import Page

PAGES = [
    Page("calls", "calls:read"),
    Page(
        "calls",
        "calls:read",
        query="status=completed&outcome=resolved&resolved=true&since=2020-01-01",
        notes="filtered",
    ),
    Page("call", "calls:read", object="call"),
    Page("call-recording", "calls:listen", object="call"),
    Page(
        "call-outcome",
        "calls:write",
        object="call",
        method="POST",
        data=lambda w: {"label": "escalated", "rationale": "Handed over."},
    ),
    Page("call-retag", "calls:write", object="call", method="POST"),
]
