from tests.console_pages import Page

PAGES = [
    Page("billing", "billing:read"),
    Page("usage", "billing:read", query="line=1"),
    Page("billing-plan", "billing:read"),
    Page(
        "billing-plan-change",
        "billing:write",
        method="POST",
        data=lambda w: {"plan": "standard"},
    ),
    Page(
        "billing-caps",
        "billing:write",
        method="POST",
        data=lambda w: {"usage_soft_limit": "10", "usage_hard_limit": "20"},
    ),
    Page("invoice", "billing:read", object="invoice"),
    Page("invoice-usage", "billing:read", object="invoice", query="line=1"),
    Page("invoice-csv", "billing:read", object="invoice"),
    Page("invoice-pdf", "billing:read", object="invoice"),
    Page("credit-note-usage", "billing:read", object="credit_note"),
]
