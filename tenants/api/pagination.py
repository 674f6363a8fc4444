from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Newest first. Cursors are opaque and stable while rows are added."""

    ordering: tuple[str, ...] = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
