"""Activity feeds (per agent and tenant-wide; newest first, cursor-paginated, filtered) and metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.agents.models import AgentActivity, AgentMetrics
from tests.api.agent_factories import make_agent, make_channel

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def activity(tenant, agent, kind: str, summary: str, *, at: datetime, channel=None, **fields) -> AgentActivity:
    with tenant_context(tenant):
        event = AgentActivity.objects.create(agent=agent, kind=kind, summary=summary, channel=channel, **fields)
        AgentActivity.objects.filter(pk=event.pk).update(created_at=at)  # created_at is auto_now_add
        return event


def summaries(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [event["summary"] for event in response.json()["data"]]


@pytest.fixture
def member(callers):
    return callers["tenant_member"]


@pytest.fixture
def feed(tenant_a):
    ava, bob = make_agent(tenant_a, "Ava"), make_agent(tenant_a, "Bob")
    slack = make_channel(tenant_a, ava, "Slack")
    for minute in range(7):
        kind = "message_received" if minute % 2 == 0 else "message_sent"
        activity(tenant_a, ava, kind, f"ava {minute}", at=T0 + timedelta(minutes=minute), channel=slack,
                 tokens_in=10, cost_usd=Decimal("0.0012"), latency_ms=800, payload={"chars": minute})
    activity(tenant_a, bob, "error", "bob failed", at=T0 + timedelta(minutes=3, seconds=30))
    return {"ava": ava, "bob": bob, "slack": slack}


def test_agent_feed_is_newest_first_and_cursor_paginated(member, feed, tenant_a):
    url = f"/api/v1/agents/{feed['ava'].pk}/activity"
    first = member.get(url, {"pageSize": 3})
    assert summaries(first) == ["ava 6", "ava 5", "ava 4"]
    page = first.json()
    assert page["pagination"]["pageSize"] == 3 and page["pagination"]["next"]
    event = page["data"][0]
    assert event["agent"] == {"id": str(feed["ava"].pk), "key": "ava", "name": "Ava"}
    assert event["channelId"] == str(feed["slack"].pk) and event["costUsd"] == "0.001200"
    assert event["payload"] == {"chars": 6}

    activity(tenant_a, feed["ava"], "message_sent", "ava newest", at=timezone.now())  # arrives meanwhile
    second = member.get(url, {"pageSize": 3, "cursor": page["pagination"]["next"]})
    assert summaries(second) == ["ava 3", "ava 2", "ava 1"]  # no duplicates, no skips
    third = member.get(url, {"pageSize": 3, "cursor": second.json()["pagination"]["next"]})
    assert summaries(third) == ["ava 0"] and third.json()["pagination"]["next"] is None


def test_agent_feed_filters_by_kind_and_channel(member, feed, tenant_a):
    url = f"/api/v1/agents/{feed['ava'].pk}/activity"
    assert summaries(member.get(url, {"kind": "message_sent"})) == ["ava 5", "ava 3", "ava 1"]
    assert len(summaries(member.get(url, {"kind": "message_sent,message_received"}))) == 7
    assert len(summaries(member.get(url, {"channel": str(feed["slack"].pk)}))) == 7
    other = make_channel(tenant_a, feed["ava"], "Other")
    assert summaries(member.get(url, {"channel": str(other.pk)})) == []
    for params, field in (({"kind": "gossip"}, "kind"), ({"channel": "slack"}, "channel")):
        response = member.get(url, params)
        assert response.status_code == 400 and field in response.json()["error"]["details"]


def test_tenant_feed_covers_every_agent_and_filters_by_agent(member, feed):
    assert summaries(member.get("/api/v1/activity", {"pageSize": 4})) == ["ava 6", "ava 5", "ava 4", "bob failed"]
    assert summaries(member.get("/api/v1/activity", {"agent": str(feed["bob"].pk)})) == ["bob failed"]
    assert summaries(member.get("/api/v1/activity", {"kind": "error"})) == ["bob failed"]


def test_another_tenants_feed_is_its_own(callers, feed):
    assert summaries(callers["other_tenant_admin"].get("/api/v1/activity")) == []


def test_an_invalid_cursor_is_refused(member, feed):
    response = member.get("/api/v1/activity", {"cursor": "o=abc"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"


def test_feed_queries_do_not_grow_with_the_page_size(member, feed):
    member.get("/api/v1/activity", {"pageSize": 2})
    counts = []
    for size in (2, 8):
        with CaptureQueriesContext(connection) as queries:
            assert len(summaries(member.get("/api/v1/activity", {"pageSize": size}))) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- Metrics --------------------------------------------------------------------------------------


def bucket(tenant, agent, period: str, start: datetime, **values) -> AgentMetrics:
    with tenant_context(tenant):
        return AgentMetrics.objects.create(agent=agent, period=period, period_start=start, **values)


def test_hourly_metrics_over_an_explicit_window_are_zero_filled(member, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    bucket(tenant_a, agent, "hour", T0, messages=10, tokens_in=100, tokens_out=50, cost_usd=Decimal("0.5"),
           errors=1, avg_latency_ms=400)
    bucket(tenant_a, agent, "hour", T0 + timedelta(hours=2), messages=30, tokens_in=300, tokens_out=150,
           cost_usd=Decimal("1.25"), errors=0, avg_latency_ms=800)
    bucket(tenant_a, agent, "hour", T0 + timedelta(hours=5), messages=99)  # outside the window
    bucket(tenant_a, agent, "day", T0.replace(hour=0), messages=1000)  # another period
    response = member.get(f"/api/v1/agents/{agent.pk}/metrics",
                          {"period": "hour", "from": "2026-03-01T12:30:00Z", "to": "2026-03-01T14:10:00+00:00"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["agentId"], body["period"]) == (str(agent.pk), "hour")
    # from rounds down, to rounds up: 12:00, 13:00, 14:00.
    assert (body["from"], body["to"]) == ("2026-03-01T12:00:00.000000Z", "2026-03-01T15:00:00.000000Z")
    assert [b["periodStart"][11:16] for b in body["buckets"]] == ["12:00", "13:00", "14:00"]
    assert [b["messages"] for b in body["buckets"]] == [10, 0, 30]
    assert body["buckets"][1] == {"periodStart": "2026-03-01T13:00:00.000000Z", "messages": 0, "tokensIn": 0,
                                  "tokensOut": 0, "costUsd": "0.000000", "errors": 0, "avgLatencyMs": None}
    assert body["totals"] == {"messages": 40, "tokensIn": 400, "tokensOut": 200, "costUsd": "1.750000",
                              "errors": 1, "avgLatencyMs": 700}  # (10*400 + 30*800) / 40


def test_default_windows_are_the_last_24_hours_and_the_last_30_days(member, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    this_hour = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    bucket(tenant_a, agent, "hour", this_hour - timedelta(hours=2), messages=7)
    bucket(tenant_a, agent, "day", this_hour.replace(hour=0) - timedelta(days=29), messages=3)
    hourly = member.get(f"/api/v1/agents/{agent.pk}/metrics").json()
    assert hourly["period"] == "hour" and len(hourly["buckets"]) == 24
    assert datetime.fromisoformat(hourly["buckets"][-1]["periodStart"]) == this_hour
    assert hourly["totals"]["messages"] == 7
    daily = member.get(f"/api/v1/agents/{agent.pk}/metrics", {"period": "day"}).json()
    assert len(daily["buckets"]) == 30 and daily["totals"]["messages"] == 3
    assert daily["buckets"][0]["messages"] == 3


@pytest.mark.parametrize(("params", "field"), [
    ({"period": "week"}, "period"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01T00:00:00Z"}, "to"),
    ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),  # > 744 hourly buckets
    ({"period": "day", "from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
])
def test_metrics_query_validation(member, tenant_a, params, field):
    agent = make_agent(tenant_a, "Ava")
    response = member.get(f"/api/v1/agents/{agent.pk}/metrics", params)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]


@pytest.mark.parametrize(("params", "field"), [
    # Rounding up (or the default span back) past datetime's range was a 500 (OverflowError).
    ({"to": "9999-12-31T23:30:00Z"}, "to"),
    ({"period": "day", "to": "9999-12-31T23:30:00Z"}, "to"),
    ({"to": "0001-01-01T00:30:00Z"}, "to"),
    ({"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T05:00:00Z"}, "from"),
    # A year before 1000 was answered with timestamps such as "927-09-08T15:00:00.000000Z", not ISO 8601.
    ({"to": "0927-09-09T14:46:33Z"}, "to"),
    ({"from": "0927-09-09T00:00:00Z", "to": "0927-09-09T05:00:00Z"}, "from"),
    ({"from": "1969-12-31T22:00:00Z", "to": "1970-01-01T02:00:00Z"}, "from"),
    ({"period": "day", "from": "9999-01-01T00:00:00Z", "to": "9999-01-03T00:00:00Z"}, "to"),
])
def test_metrics_window_must_lie_within_supported_dates(member, tenant_a, params, field):
    agent = make_agent(tenant_a, "Ava")
    response = member.get(f"/api/v1/agents/{agent.pk}/metrics", params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and field in error["details"], error


def test_metrics_window_at_the_edges_of_the_supported_dates(member, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    url = f"/api/v1/agents/{agent.pk}/metrics"
    earliest = member.get(url, {"from": "1970-01-01T00:00:00Z", "to": "1970-01-01T02:00:00Z"})
    assert earliest.status_code == 200, earliest.content
    assert earliest.json()["from"] == "1970-01-01T00:00:00.000000Z"
    latest = member.get(url, {"period": "day", "to": "9998-12-31T12:00:00Z"})
    assert latest.status_code == 200, latest.content
    assert latest.json()["to"] == "9999-01-01T00:00:00.000000Z"
