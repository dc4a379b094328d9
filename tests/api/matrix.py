"""The authorization matrix: one table per area, one row per endpoint, expected status per caller.

A row lists the statuses it expects; callers a row does not name must be refused (401 for
anonymous, 403 or 404 for everyone else). New endpoints join by adding rows:

    ROWS = [
        Row("GET", "/api/v1/team", allowed={"tenant_admin", "tenant_member", "api_key:team:read"}),
        Row("POST", "/api/v1/team/invites", body={...}, allowed={"tenant_admin"}, ok=201),
    ]
    test_matrix = matrix_test(ROWS)

`path` may be a callable `path(ctx) -> str` receiving the Callers object, to build ids of
objects the row needs (created in tenant A; `other_tenant_admin` then proves isolation).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

CALLERS = (
    "anonymous",
    "platform_admin",
    "platform_admin_no_mfa",
    "tenant_admin",
    "tenant_member",
    "other_tenant_admin",
    "api_key:",
)


@dataclass(frozen=True)
class Row:
    method: str
    path: str | Callable
    allowed: frozenset[str] | set[str]
    ok: int = 200
    body: dict | Callable | None = None
    extra_callers: tuple[str, ...] = ()
    refused: dict[str, tuple[int, ...]] = field(default_factory=dict)  # caller -> acceptable refusals

    def id(self) -> str:
        path = self.path if isinstance(self.path, str) else getattr(self.path, "__name__", "path")
        return f"{self.method} {path}"


def named_path(name: str, path: Callable) -> Callable:
    """A row's path callable under `name`, which its test ids show (a closure or lambda would
    otherwise show as "path" or "<lambda>")."""
    path.__name__ = name
    return path


def _refusals(row: Row, caller: str) -> tuple[int, ...]:
    if caller in row.refused:
        return row.refused[caller]
    if caller == "anonymous":
        return (401,)
    return (403, 404)


def matrix_test(rows: list[Row]):
    cases = []
    for row in rows:
        for caller in (*CALLERS, *row.extra_callers, *sorted(row.allowed)):
            if (row, caller) not in cases:
                cases.append((row, caller))

    @pytest.mark.django_db
    @pytest.mark.parametrize(("row", "caller"), cases, ids=[f"{r.id()} as {c}" for r, c in cases])
    def test_matrix(row: Row, caller: str, callers):
        path = row.path(callers) if callable(row.path) else row.path
        body = row.body(callers) if callable(row.body) else row.body
        client = callers[caller]
        response = client.generic(row.method, path, data=None if body is None else json.dumps(body),
                                  content_type="application/json")
        if caller in row.allowed:
            assert response.status_code == row.ok, (caller, response.status_code, response.content[:500])
        else:
            expected = _refusals(row, caller)
            assert response.status_code in expected, (caller, response.status_code, response.content[:500])
            assert "error" in response.json(), response.content[:500]

    return test_matrix
