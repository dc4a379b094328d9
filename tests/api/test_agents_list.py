"""GET /api/v1/agents: filters, search, ordering, a constant number of queries, 10,000 rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.agents.models import Agent
from tests.api.agent_factories import make_agent, make_channel, make_install, make_role, make_skill

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [agent["name"] for agent in response.json()["data"]]


@pytest.fixture
def member(callers):
    make_role("sales")
    make_role("support")
    return callers["tenant_member"]


@pytest.fixture
def fleet(tenant_a):
    return [
        make_agent(tenant_a, "Zed", role="support", status="active", description="Answers billing questions"),
        make_agent(tenant_a, "ava", role="sales", status="paused", description="Books meetings with prospects"),
        make_agent(tenant_a, "Mia", role="sales", status="active", description="Qualifies inbound leads"),
        make_agent(tenant_a, "Bob", role="support", status="draft", description="Triage of support tickets"),
    ]


def test_default_order_is_by_name_case_insensitively(member, fleet):
    assert names(member.get(URL)) == ["ava", "Bob", "Mia", "Zed"]


@pytest.mark.parametrize(("ordering", "expected"), [
    ("name", ["ava", "Bob", "Mia", "Zed"]),
    ("-name", ["Zed", "Mia", "Bob", "ava"]),
    ("createdAt", ["Zed", "ava", "Mia", "Bob"]),
    ("-createdAt", ["Bob", "Mia", "ava", "Zed"]),
    ("created_at", ["Zed", "ava", "Mia", "Bob"]),
    ("status", ["Zed", "Mia", "Bob", "ava"]),  # active (oldest first), draft, paused
])
def test_ordering(member, fleet, ordering, expected):
    assert names(member.get(URL, {"ordering": ordering})) == expected


def test_unknown_ordering_is_a_validation_error(member, fleet):
    response = member.get(URL, {"ordering": "password"})
    assert response.status_code == 400 and "ordering" in response.json()["error"]["details"]


def test_filters_by_status_and_role(member, fleet):
    assert names(member.get(URL, {"status": "active"})) == ["Mia", "Zed"]
    assert names(member.get(URL, {"status": "active,draft"})) == ["Bob", "Mia", "Zed"]
    assert names(member.get(URL, {"role": "sales"})) == ["ava", "Mia"]
    assert names(member.get(URL, {"role": "sales", "status": "paused"})) == ["ava"]
    invalid = member.get(URL, {"status": "sleeping"})
    assert invalid.status_code == 400 and "status" in invalid.json()["error"]["details"]


def test_search_is_full_text_ranked_with_a_name_fallback(member, fleet, tenant_a):
    make_agent(tenant_a, "Meeting Maven", role="sales", description="Schedules everything")
    # Stemming: "meeting" finds "meetings" in a description; a match in the name (weight A)
    # ranks above one in the description (weight B).
    assert names(member.get(URL, {"search": "meeting"})) == ["Meeting Maven", "ava"]
    assert names(member.get(URL, {"search": "support -billing"})) == ["Bob"]  # web-search syntax
    assert names(member.get(URL, {"search": "Mav"})) == ["Meeting Maven"]  # part of a name
    assert names(member.get(URL, {"search": "meeting", "ordering": "name"})) == ["ava", "Meeting Maven"]


def test_pagination_shape(member, fleet):
    body = member.get(URL, {"pageSize": 3, "page": 2}).json()
    assert [a["name"] for a in body["data"]] == ["Zed"]
    assert body["pagination"] == {"page": 2, "pageSize": 3, "total": 4, "totalPages": 2}


def test_list_items_carry_channel_summaries_and_skill_installs_without_secrets(member, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    make_channel(tenant_a, agent, "Sales Slack")
    make_install(tenant_a, agent, make_skill("crm", "1.2.0"))
    response = member.get(URL)
    item = response.json()["data"][0]
    assert item["channels"] == [{"id": item["channels"][0]["id"], "type": "slack", "name": "Sales Slack",
                                 "status": "pending"}]
    assert item["skills"] == [{"skillId": item["skills"][0]["skillId"], "slug": "crm", "name": "Crm",
                               "version": "1.2.0", "enabled": True}]
    assert b"xoxb-" not in response.content and b"xapp-" not in response.content


def test_the_number_of_queries_does_not_grow_with_the_page_size(member, tenant_a):
    skills = [make_skill(f"skill-{n}", "1.0.0") for n in range(3)]
    for n in range(30):
        agent = make_agent(tenant_a, f"Agent {n:02d}")
        make_channel(tenant_a, agent, "Slack")
        make_channel(tenant_a, agent, "Web", channel_type="web")
        for skill in skills[: n % 3 + 1]:
            make_install(tenant_a, agent, skill)
    member.get(URL, {"pageSize": 5})  # warm-up: one-off lookups (content types, caches)

    counts = {}
    for size in (5, 25):
        with CaptureQueriesContext(connection) as queries:
            response = member.get(URL, {"pageSize": size})
        assert response.status_code == 200 and len(response.json()["data"]) == size
        assert all(item["channels"] and item["skills"] for item in response.json()["data"])
        counts[size] = len(queries)
    assert counts[5] == counts[25], counts
    with CaptureQueriesContext(connection) as queries:
        member.get(URL, {"pageSize": 25, "search": "agent", "status": "draft", "ordering": "-createdAt"})
    assert len(queries) == counts[25]


def test_ten_thousand_agents_stay_paginated(member, tenant_a):
    with tenant_context(tenant_a):
        Agent.objects.bulk_create(
            [Agent(key=f"agent-{n:05d}", name=f"Agent {n:05d}", role_id="sales") for n in range(10_000)],
            batch_size=2_500)
    first = member.get(URL, {"pageSize": 25}).json()
    assert len(first["data"]) == 25
    assert first["pagination"] == {"page": 1, "pageSize": 25, "total": 10_000, "totalPages": 400}
    assert first["data"][0]["name"] == "Agent 00000"
    last = member.get(URL, {"pageSize": 100, "page": 100, "ordering": "-createdAt"}).json()
    assert len(last["data"]) == 100 and last["pagination"]["totalPages"] == 100
    capped = member.get(URL, {"pageSize": 5000}).json()
    assert len(capped["data"]) == 100 and capped["pagination"]["pageSize"] == 100  # max page size
