"""Reads of the agents area. They run in the tenant's schema (switched by authentication), so
they can only see the calling tenant's rows.

List querysets load everything a page shows in a fixed number of queries (the page, then one
query per prefetched relation), whatever the page size. The agent list reads plain rows instead
(`summary_rows`): the page with its channels and skill installs aggregated by PostgreSQL, in one
query, without building a model instance per agent, channel, install and skill. Orderings are
named as on the wire (camelCase, `-` for descending; snake_case is accepted too) and end with
the primary key, so pages are stable when the sort key ties.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import F, JSONField, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone

from apps.agents.models import Agent, AgentActivity, AgentChannel, AgentMetrics, SkillInstallation
from apps.skills.models import Skill

# Wire name -> the expressions to sort by, ascending. Each is backed by an index: lower(name)
# by the case-insensitive unique constraint, status and created_at by agents_status_created_idx
# and agents_created_idx.
AGENT_ORDERINGS = {
    "name": (Lower("name"),),
    "createdAt": (F("created_at"),),
    "status": (F("status"), F("created_at")),
}
AGENT_ORDERING_ALIASES = {"created_at": "createdAt"}

# Columns a channel summary needs: never the encrypted secrets (decrypting them costs per row).
CHANNEL_SUMMARY_FIELDS = ("id", "agent_id", "type", "name", "status")
INSTALL_SUMMARY_FIELDS = ("id", "agent_id", "skill_id", "enabled", "created_at", "skill__id", "skill__slug",
                          "skill__name", "skill__version")

# What an agent summary shows (apps.agents.api.serializers.agent_summary), as `summary_rows` reads it.
AGENT_SUMMARY_FIELDS = ("id", "key", "name", "role_id", "status", "status_reason", "model_tier", "thinking_mode",
                        "assisted_user", "description", "revision", "created_at", "updated_at")

METRICS_DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
METRICS_MAX_BUCKETS = {"hour": 24 * 31, "day": 366}
METRICS_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# The dates a metrics window may name: its buckets stay within what datetime can represent (rounding `to`
# up, or stepping the default span back from it) and what a four-digit ISO 8601 year can show.
METRICS_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
METRICS_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def agent_ordering_choices() -> list[str]:
    names = [*AGENT_ORDERINGS, *AGENT_ORDERING_ALIASES]
    return [prefix + name for name in names for prefix in ("", "-")]


def with_relations(queryset: QuerySet[Agent]) -> QuerySet[Agent]:
    """Channel summaries and skill installs (with their skill), prefetched: two extra queries."""
    return queryset.defer("search_vector").prefetch_related(
        Prefetch("channels", queryset=AgentChannel.objects.only(*CHANNEL_SUMMARY_FIELDS).order_by("name", "id")),
        Prefetch("skill_installations",
                 queryset=SkillInstallation.objects.select_related("skill").only(*INSTALL_SUMMARY_FIELDS)
                 .order_by("created_at", "id")),
    )


def _quoted(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _summary_expressions() -> dict[str, RawSQL]:
    """Each agent's channel summaries and own skill installs as one JSON array each, aggregated
    by PostgreSQL. Plain SQL on purpose: the same subqueries written with ArraySubquery and
    JSONObject cost 1.6 ms of CPU per request to build and compile (the whole page query:
    0.3 ms this way) plus a json.loads per element, and jsonb sorts an object's keys. `json`
    keeps them in the order the API shows them (ChannelSummarySerializer, InstallSummarySerializer),
    already camelCase. The outer query reads `agents_agent` under its own name, as every queryset
    of this module does."""
    agents, channels = _quoted(Agent), _quoted(AgentChannel)
    installs, skills = _quoted(SkillInstallation), _quoted(Skill)
    channel_rows = f"""
        SELECT COALESCE(json_agg(json_build_object('id', c.id, 'type', c.type, 'name', c.name, 'status', c.status)
                                 ORDER BY c.name, c.id), '[]')::text
        FROM {channels} c WHERE c.agent_id = {agents}.id"""  # noqa: S608 (quoted table names, no values)
    skill_rows = f"""
        SELECT COALESCE(json_agg(json_build_object('skillId', i.skill_id, 'slug', s.slug, 'name', s.name,
                                                   'version', s.version, 'enabled', i.enabled)
                                 ORDER BY i.created_at, i.id), '[]')::text
        FROM {installs} i JOIN {skills} s ON s.id = i.skill_id WHERE i.agent_id = {agents}.id"""  # noqa: S608
    return {"channel_rows": RawSQL(channel_rows, (), output_field=JSONField()),  # noqa: S611 (no values)
            "skill_rows": RawSQL(skill_rows, (), output_field=JSONField())}  # noqa: S611


def summary_rows(queryset: QuerySet[Agent]) -> QuerySet:
    """The agents as dicts (AGENT_SUMMARY_FIELDS), each with `channel_rows` (id, type, name, status;
    ordered by name) and `skill_rows` (skillId, slug, name, version, enabled; in install order), keys
    as the API shows them: one query per page, without a model instance per agent, channel, install
    and skill. PostgreSQL runs the two subqueries for the page's rows only, also when the page
    query counts all rows (`COUNT(*) OVER ()`, aegis.api.pagination.PagePagination.paginate_counted);
    a plain COUNT leaves them out."""
    return queryset.values(*AGENT_SUMMARY_FIELDS, **_summary_expressions())


def agents(*, search: str = "", status: list[str] | None = None, role: str | None = None,
           ordering: str | None = None) -> QuerySet:
    """The agent list's page rows (`summary_rows`), filtered and ordered."""
    queryset = Agent.objects.all()
    if status:
        queryset = queryset.filter(status__in=status)
    if role:
        queryset = queryset.filter(role_id=role)
    if search:
        query = SearchQuery(search, search_type="websearch", config="english")
        # Full-text match on the generated search_vector (GIN index), or a plain substring of the
        # name for what stemming misses (partial words, names in other languages).
        queryset = queryset.filter(Q(search_vector=query) | Q(name__icontains=search)).annotate(
            rank=SearchRank(F("search_vector"), query))
    if ordering:
        name = AGENT_ORDERING_ALIASES.get(ordering.lstrip("-"), ordering.lstrip("-"))
        descending = ordering.startswith("-")
        keys = [*AGENT_ORDERINGS[name], F("id")]
        queryset = queryset.order_by(*(key.desc() if descending else key.asc() for key in keys))
    elif search:
        queryset = queryset.order_by(F("rank").desc(), Lower("name"), "id")
    else:
        queryset = queryset.order_by(Lower("name"), "id")
    return summary_rows(queryset)


def agent_detail(agent_id: UUID) -> QuerySet[Agent]:
    return with_relations(Agent.objects.filter(pk=agent_id))


def channels(*, agent: Agent) -> QuerySet[AgentChannel]:
    return AgentChannel.objects.filter(agent=agent).order_by("name", "id")


def skill_installations(*, agent: Agent) -> QuerySet[SkillInstallation]:
    return SkillInstallation.objects.filter(agent=agent).select_related("skill").order_by("created_at", "id")


def activity(*, agent_id: UUID | None = None, kinds: list[str] | None = None,
             channel_id: UUID | None = None) -> QuerySet[AgentActivity]:
    """Newest first; the feed paginator orders by (-created_at, -id), which the indexes serve."""
    queryset = AgentActivity.objects.select_related("agent").only(
        "id", "agent_id", "agent__id", "agent__key", "agent__name", "channel_id", "kind", "summary", "payload",
        "tokens_in", "tokens_out", "cost_usd", "latency_ms", "created_at")
    if agent_id is not None:
        queryset = queryset.filter(agent_id=agent_id)
    if kinds:
        queryset = queryset.filter(kind__in=kinds)
    if channel_id is not None:
        queryset = queryset.filter(channel_id=channel_id)
    return queryset


# --- Metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsWindow:
    period: str
    start: datetime  # inclusive, on a bucket boundary
    end: datetime  # exclusive, on a bucket boundary


def floor_to_period(moment: datetime, period: str) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if period == "day" else moment


def metrics_window(*, period: str, start: datetime | None, end: datetime | None,
                   now: datetime | None = None) -> MetricsWindow:
    """The buckets to show: `start` rounded down and `end` rounded up to the period. Without
    bounds: the last 24 hours (hourly) or 30 days (daily), up to and including the current one."""
    step = METRICS_STEP[period]
    if end is None:
        end = floor_to_period(now or timezone.now(), period) + step
    else:
        floored = floor_to_period(end, period)
        end = floored if floored == end else floored + step
    start = floor_to_period(start, period) if start is not None else end - METRICS_DEFAULT_SPAN[period]
    return MetricsWindow(period=period, start=start, end=end)


def metrics_series(*, agent: Agent, window: MetricsWindow) -> dict:
    """Every bucket of the window, zero-filled where no rollup exists, plus totals."""
    rows = {
        row.period_start: row
        for row in AgentMetrics.objects.filter(agent=agent, period=window.period, period_start__gte=window.start,
                                               period_start__lt=window.end)
    }
    step = METRICS_STEP[window.period]
    buckets = []
    moment = window.start
    while moment < window.end:
        row = rows.get(moment)
        buckets.append({
            "period_start": moment,
            "messages": row.messages if row else 0,
            "tokens_in": row.tokens_in if row else 0,
            "tokens_out": row.tokens_out if row else 0,
            "cost_usd": row.cost_usd if row else Decimal("0"),
            "errors": row.errors if row else 0,
            "avg_latency_ms": row.avg_latency_ms if row else None,
        })
        moment += step
    # Average latency over the window weights each bucket by its messages.
    timed = [(b["avg_latency_ms"], b["messages"]) for b in buckets if b["avg_latency_ms"] is not None and b["messages"]]
    weight = sum(messages for _, messages in timed)
    totals = {
        "messages": sum(b["messages"] for b in buckets),
        "tokens_in": sum(b["tokens_in"] for b in buckets),
        "tokens_out": sum(b["tokens_out"] for b in buckets),
        "cost_usd": sum((b["cost_usd"] for b in buckets), Decimal("0")),
        "errors": sum(b["errors"] for b in buckets),
        "avg_latency_ms": round(sum(latency * messages for latency, messages in timed) / weight) if weight else None,
    }
    return {"agent_id": agent.pk, "period": window.period, "from": window.start, "to": window.end,
            "buckets": buckets, "totals": totals}
