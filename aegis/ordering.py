"""`?ordering=` for page lists: wire names (camelCase, `-` for descending) mapped to fields or
expressions, always ending with the primary key so pages are stable when the sort key ties."""

from __future__ import annotations

from django.db.models import QuerySet


def ordering_choices(orderings: dict) -> list[str]:
    return [prefix + name for name in orderings for prefix in ("", "-")]


def order(queryset: QuerySet, ordering: str, orderings: dict) -> QuerySet:
    descending = ordering.startswith("-")
    expression = orderings[ordering.lstrip("-")]
    tiebreak = "-pk" if descending else "pk"
    if isinstance(expression, str):
        return queryset.order_by(f"-{expression}" if descending else expression, tiebreak)
    return queryset.order_by(expression.desc() if descending else expression.asc(), tiebreak)
