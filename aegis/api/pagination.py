"""The two list shapes of the API.

Page lists:    {"data": [...], "pagination": {"page", "pageSize", "total", "totalPages"}}
Feeds (append-only, newest first, stable under inserts):
               {"data": [...], "pagination": {"next": "<cursor>" | null, "pageSize"}}
"""

import re
from urllib.parse import parse_qs, urlparse

from django.core.paginator import Page
from django.db.models import Count, Window
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response

_PLAIN_PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,9}")


def _list_response_schema(items_schema: dict, pagination_properties: dict) -> dict:
    """A list response's OpenAPI schema; every field of its pagination object is always present."""
    return {
        "type": "object",
        "required": ["data", "pagination"],
        "properties": {
            "data": items_schema,
            "pagination": {"type": "object", "required": list(pagination_properties),
                           "properties": pagination_properties},
        },
    }


class PagePagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "pageSize"
    max_page_size = 100

    def paginate_counted(self, queryset, request, view=None) -> list | None:
        """`paginate_queryset` for a `.values()` queryset, the total counted by the page's own query
        (`COUNT(*) OVER ()`, in each row as `page_total`): one query where DRF runs a COUNT and then
        the page. Same pages, totals and errors: a page number that is not a plain positive integer
        (`last`, `0`, `x`), and a page past the end, go through `paginate_queryset` itself."""
        page_size = self.get_page_size(request)
        raw_number = request.query_params.get(self.page_query_param) or "1"
        if not page_size or not _PLAIN_PAGE_NUMBER.fullmatch(raw_number):
            return self.paginate_queryset(queryset, request, view)
        number = int(raw_number)
        offset = (number - 1) * page_size
        rows = list(queryset.annotate(page_total=Window(Count("*")))[offset:offset + page_size])
        if not rows and number > 1:
            return self.paginate_queryset(queryset, request, view)  # past the end: counted, then 404
        self.request = request
        paginator = self.django_paginator_class(queryset, page_size)
        paginator.count = rows[0]["page_total"] if rows else 0  # Paginator.count is a cached_property
        self.page = Page(rows, number, paginator)
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        return rows

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
        return _list_response_schema(
            schema, {name: {"type": "integer"} for name in ("page", "pageSize", "total", "totalPages")})


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
        return _list_response_schema(
            schema, {"next": {"type": "string", "nullable": True}, "pageSize": {"type": "integer"}})
