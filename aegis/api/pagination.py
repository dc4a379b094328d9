"""The two list shapes of the API.

Page lists:    {"data": [...], "pagination": {"page", "pageSize", "total", "totalPages"}}
Feeds (append-only, newest first, stable under inserts):
               {"data": [...], "pagination": {"next": "<cursor>" | null, "pageSize"}}
"""

from urllib.parse import parse_qs, urlparse

from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response


class PagePagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "pageSize"
    max_page_size = 100

    def get_paginated_response(self, data):
        return Response({
            "data": data,
            "pagination": {
                "page": self.page.number,
                "page_size": self.get_page_size(self.request),
                "total": self.page.paginator.count,
                "total_pages": self.page.paginator.num_pages,
            },
        })

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["data", "pagination"],
            "properties": {
                "data": schema,
                "pagination": {
                    "type": "object",
                    "required": ["page", "pageSize", "total", "totalPages"],
                    "properties": {name: {"type": "integer"} for name in ("page", "pageSize", "total", "totalPages")},
                },
            },
        }


class FeedPagination(CursorPagination):
    """Cursor pagination over (created_at, id), newest first: deep pages cost what the first does."""

    page_size = 50
    page_size_query_param = "pageSize"
    max_page_size = 100
    ordering = ("-created_at", "-id")

    def get_paginated_response(self, data):
        next_link = self.get_next_link()
        cursor = parse_qs(urlparse(next_link).query).get(self.cursor_query_param, [None])[0] if next_link else None
        return Response({"data": data, "pagination": {"next": cursor, "page_size": self.get_page_size(self.request)}})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["data", "pagination"],
            "properties": {
                "data": schema,
                "pagination": {
                    "type": "object",
                    "required": ["next", "pageSize"],
                    "properties": {"next": {"type": "string", "nullable": True}, "pageSize": {"type": "integer"}},
                },
            },
        }
