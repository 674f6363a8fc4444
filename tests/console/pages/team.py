from tests.console_pages import Page

PAGES = [
    Page("team", "members:read"),
    Page(
        "team-invite",
        "members:write",
        method="POST",
        data=lambda w: {"email": "new.person@example.com", "role": "viewer"},
    ),
    Page(
        "team-member-role",
        "members:write",
        object="member",
        method="POST",
        data=lambda w: {"role": "editor"},
    ),
    Page("team-member-remove", "members:write", object="member", method="POST"),
    Page("team-invitation-revoke", "members:write", object="invitation", method="POST"),
]
