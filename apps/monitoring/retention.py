"""Pruning old rows in batches: each batch is one short DELETE in its own transaction, so pruning a
large backlog never holds locks for long nor builds one huge transaction (and a crash loses at
most one batch of progress; the next run continues)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction


def delete_older_than(table: str, column: str, cutoff: datetime, *, batch_size: int) -> int:
    """Delete rows of `table` (in the current schema) whose `column` is before `cutoff`, oldest
    first, `batch_size` at a time; returns how many went. `table` and `column` come from code."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    table_sql, column_sql = connection.ops.quote_name(table), connection.ops.quote_name(column)
    sql = (f"DELETE FROM {table_sql} WHERE id IN "  # noqa: S608 (identifiers quoted, values bound)
           f"(SELECT id FROM {table_sql} WHERE {column_sql} < %s ORDER BY {column_sql} LIMIT %s)")
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [cutoff, batch_size])
            deleted = cursor.rowcount
        total += deleted
        if deleted < batch_size:
            return total
