from django.core.files.uploadedfile import SimpleUploadedFile

from tests.console_pages import Page

PAGES = [
    Page("knowledge", "knowledge:read"),
    Page("knowledge-new", "knowledge:write"),
    Page("knowledge-base", "knowledge:read", object="knowledge_base"),
    Page("knowledge-search", "knowledge:read", object="knowledge_base", query="q=opening+hours"),
    Page(
        "knowledge-upload",
        "knowledge:write",
        object="knowledge_base",
        method="POST",
        data=lambda w: {
            "title": "Prices",
            "file": SimpleUploadedFile("prices.txt", b"A call costs one euro.", "text/plain"),
        },
    ),
    Page("knowledge-base-delete", "knowledge:write", object="knowledge_base", method="POST"),
    Page("document", "knowledge:read", object="document"),
    Page("document-delete", "knowledge:write", object="document", method="POST"),
]
