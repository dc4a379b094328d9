"""The bench server's URLconf: the production URLs (aegis.urls) plus one baseline view.

`GET /bench/baseline/agents` answers what `GET /api/v1/agents` answers for its first page (25
agents ordered by name, each with its channels and its own skill installs, plus the total) with
ONE SQL query and a JsonResponse: no DRF, no authentication, no serializers. It runs behind the
same middleware, on the same server, workers and database as the API, so the ratio
API req/s : baseline req/s is what the API layer costs on top of the data it reads.

The tenant's schema comes from BENCH_TENANT_SCHEMA, set by bench/api_throughput.py when it starts
the server. Only bench/settings_bench.py selects this URLconf.
"""

from __future__ import annotations

import os
import re

from django.db import connection
from django.http import JsonResponse
from django.urls import path

from aegis import urls as aegis_urls
from apps.agents.models import Agent, AgentChannel, SkillInstallation
from apps.skills.models import Skill

PAGE_SIZE = 25
_SCHEMA = os.environ.get("BENCH_TENANT_SCHEMA", "")
if _SCHEMA and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", _SCHEMA):
    raise ValueError(f"BENCH_TENANT_SCHEMA {_SCHEMA!r} is not a schema name")


def _table(model, schema: str | None) -> str:
    name = connection.ops.quote_name(model._meta.db_table)
    return f"{connection.ops.quote_name(schema)}.{name}" if schema else name


def _agents_page_sql(schema: str) -> str:
    agents, channels = _table(Agent, schema), _table(AgentChannel, schema)
    installs, skills = _table(SkillInstallation, schema), _table(Skill, "public")
    # The page first (the window count is taken before LIMIT: the total, as the API's COUNT),
    # then each of the 25 rows' channels and installs, aggregated to JSON by the server.
    return f"""
        WITH page AS (
            SELECT a.id, a.key, a.name, a.role_key, a.status, a.status_reason, a.model_tier, a.thinking_mode,
                   a.assisted_user, a.description, a.revision, a.created_at, a.updated_at,
                   count(*) OVER () AS total
            FROM {agents} a
            ORDER BY lower(a.name), a.id
            LIMIT %s OFFSET %s
        )
        SELECT page.*,
            COALESCE((SELECT json_agg(json_build_object('id', c.id, 'type', c.type, 'name', c.name,
                                                        'status', c.status) ORDER BY c.name, c.id)
                      FROM {channels} c WHERE c.agent_id = page.id), '[]'::json) AS channels,
            COALESCE((SELECT json_agg(json_build_object('skillId', i.skill_id, 'slug', s.slug, 'name', s.name,
                                                        'version', s.version, 'enabled', i.enabled)
                                      ORDER BY i.created_at, i.id)
                      FROM {installs} i JOIN {skills} s ON s.id = i.skill_id
                      WHERE i.agent_id = page.id), '[]'::json) AS skills
        FROM page
        ORDER BY lower(page.name), page.id
    """  # noqa: S608 (quoted schema and table names; the page bounds are parameters)


def baseline_agents(request):
    with connection.cursor() as cursor:
        cursor.execute(_agents_page_sql(_SCHEMA), [PAGE_SIZE, 0])
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    total = rows[0]["total"] if rows else 0
    data = [{
        "id": row["id"], "key": row["key"], "name": row["name"], "role": row["role_key"], "status": row["status"],
        "statusReason": row["status_reason"], "modelTier": row["model_tier"], "thinkingMode": row["thinking_mode"],
        "assistedUser": row["assisted_user"], "description": row["description"], "revision": row["revision"],
        "channels": row["channels"], "skills": row["skills"], "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    } for row in rows]
    return JsonResponse({"data": data, "pagination": {"page": 1, "pageSize": PAGE_SIZE, "total": total,
                                                      "totalPages": -(-total // PAGE_SIZE)}})


urlpatterns = [
    path("bench/baseline/agents", baseline_agents, name="bench-baseline-agents"),
    *aegis_urls.urlpatterns,
]

handler400 = aegis_urls.handler400
handler403 = aegis_urls.handler403
handler404 = aegis_urls.handler404
handler500 = aegis_urls.handler500
