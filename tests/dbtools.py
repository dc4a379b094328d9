"""Helpers for tests that talk to PostgreSQL directly (constraints, catalog, plans)."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from django.db import IntegrityError, connection, transaction


def check_deferred() -> None:
    """Run the deferred checks now (Django's foreign keys are DEFERRABLE INITIALLY DEFERRED, so
    inside a test's transaction they would otherwise only fire at a commit that never comes)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@contextmanager
def refused_by(name: str | None, exc: type[Exception] = IntegrityError):
    """The block must be refused by the database, naming `name` (a constraint, trigger or
    table) in the error. Deferred constraints are checked at the end of the block, as at commit.
    The block runs in a savepoint, so the test can go on using the connection afterwards."""
    with pytest.raises(exc) as caught, transaction.atomic():
        yield
        check_deferred()
    if name is not None:
        assert name in str(caught.value), str(caught.value)


@contextmanager
def accepted():
    """The block, deferred checks included, must pass the database."""
    with transaction.atomic():
        yield
        check_deferred()


def fetchall(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def fetchone(sql: str, params=None):
    rows = fetchall(sql, params)
    return rows[0] if rows else None


def execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def plan_of(queryset) -> dict:
    """The PostgreSQL plan (EXPLAIN FORMAT JSON) of the SQL a queryset runs."""
    return json.loads(queryset.explain(format="json"))[0]["Plan"]


def plan_of_sql(sql: str, params=None) -> dict:
    raw = fetchone(f"EXPLAIN (FORMAT JSON) {sql}", params)[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def indexes_used(plan: dict) -> set[str]:
    return {node["Index Name"] for node in plan_nodes(plan) if "Index Name" in node}
