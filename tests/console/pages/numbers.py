from tests.console_pages import Page

PAGES = [
    Page("numbers", "numbers:read"),
    Page("number-buy", "numbers:write"),
    Page(
        "number-buy",
        "numbers:write",
        method="POST",
        data=lambda w: {
            "carrier_account": w.carrier_account.public_id,
            "phone_number": "+14155550177",
        },
    ),
    Page("number-import", "numbers:write"),
    Page(
        "number-import",
        "numbers:write",
        method="POST",
        data=lambda w: {
            "carrier_account": w.twilio_account.public_id,
            "phone_number": "+14155550178",
        },
    ),
    Page("carrier-accounts", "numbers:read"),
    Page("carrier-account-new", "numbers:write"),
    Page(
        "carrier-account-new",
        "numbers:write",
        method="POST",
        data=lambda w: {"kind": "sandbox", "name": "Another sandbox"},
    ),
    Page("number", "numbers:read", object="phone_number"),
    Page(
        "number-assign",
        "numbers:write",
        object="phone_number",
        method="POST",
        data=lambda w: {"agent": "", "friendly_name": "Renamed"},
    ),
    Page("number-release", "numbers:write", object="phone_number", method="POST"),
    Page(
        "number-test-call",
        "numbers:write",
        object="phone_number",
        method="POST",
        data=lambda w: {"script": "Hello"},
    ),
]
