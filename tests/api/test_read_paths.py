"""The list read paths that skip model instances and serializers (the agent list, the audit feeds)
give byte for byte what the serializers that document them give.

AgentSerializer, PlatformAuditLogSerializer and TenantAuditLogSerializer still define the
OpenAPI document; apps.agents.api.serializers.agent_summary and apps.audit.api.serializers.entry
build the same items from plain rows (docs/performance.md, API throughput)."""

from __future__ import annotations

import pytest
from django.db.models.functions import Lower
from django_tenants.utils import tenant_context

from aegis.api.renderers import CamelCaseJSONRenderer
from apps.accounts.models import ApiKey
from apps.agents import selectors as agent_selectors
from apps.agents.api.serializers import AgentSerializer, agent_summary
from apps.agents.models import Agent
from apps.audit import selectors as audit_selectors
from apps.audit.api.serializers import PlatformAuditLogSerializer, entry
from apps.audit.api.tenant_serializers import TenantAuditLogSerializer
from apps.audit.models import AuditLog
from apps.audit.services import record
from tests.api.agent_factories import make_agent, make_channel, make_install, make_skill

pytestmark = pytest.mark.django_db


def rendered(data) -> bytes:
    return CamelCaseJSONRenderer().render(data)


def test_agent_summaries_are_the_agent_serializers_output(tenant_a):
    skills = [make_skill("crm", "1.2.0"), make_skill("calendar", "2.0.0", name="Calendar Pro")]
    ava = make_agent(tenant_a, "Ava", status="active", model_tier="fast", thinking_mode="high",
                     assisted_user={"name": "Ann", "time_zone": "Europe/Paris", "preferences": {"reply_style": "x"}},
                     description="Books meetings", status_reason="")
    make_channel(tenant_a, ava, "Sales Slack")
    make_channel(tenant_a, ava, "Web chat", channel_type="web", status="disabled")
    make_install(tenant_a, ava, skills[1])
    make_install(tenant_a, ava, skills[0], enabled=False)
    make_agent(tenant_a, "bob", role="support", status="paused", status_reason="On holiday")  # nothing attached
    make_install(tenant_a, None, skills[0])  # the Shared Toolbox: not an agent's own install

    with tenant_context(tenant_a):
        rows = [agent_summary(row) for row in agent_selectors.agents()]
        agents = agent_selectors.with_relations(Agent.objects.order_by(Lower("name"), "id"))
        expected = AgentSerializer(agents, many=True).data
    assert [row["name"] for row in rows] == ["Ava", "bob"]
    assert len(rows[0]["channels"]) == 2 and len(rows[0]["skills"]) == 2
    assert rendered(rows) == rendered(expected)


def test_feed_entries_are_the_audit_serializers_output(tenant_a, callers):
    person = callers.user("tenant_admin")
    key = callers["api_key:agents:read"].api_key
    record("agent.created", actor=person, tenant=tenant_a, target=tenant_a,
           changes={"model_tier": {"before": None, "after": "fast"}, "config": {"dm_policy": "open"}})
    record("apikey.used", actor=key, tenant=tenant_a)
    record("role.updated", actor=person, changes={"name": {"before": "a", "after": "b"}})  # no tenant
    record("tenant.provisioned", tenant=tenant_a)  # the system
    AuditLog.objects.create(action="agent.deleted", tenant=tenant_a, actor_label=f"api-key:{key.prefix}",
                            ip="2001:db8::1", user_agent="curl/8", request_id="req-1")  # a deleted key
    AuditLog.objects.create(action="agent.deleted", tenant=tenant_a, actor_label="gone@example.com",
                            ip="10.1.2.3")  # a deleted user
    assert ApiKey.objects.filter(pk=key.pk).exists()

    order = ("-created_at", "-id")
    for with_tenant, serializer in ((True, PlatformAuditLogSerializer), (False, TenantAuditLogSerializer)):
        rows = audit_selectors.entry_rows(audit_selectors.audit_logs(), with_tenant=with_tenant).order_by(*order)
        built = [entry(row, with_tenant=with_tenant) for row in rows]
        expected = serializer(audit_selectors.audit_logs().order_by(*order), many=True).data
        assert len(built) >= 6
        assert rendered(built) == rendered(expected)


def page_of(method, queryset, query: str):
    """What a PagePagination method gives for `?query`: the rows and page figures, or the error."""
    from rest_framework.exceptions import NotFound
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from aegis.api.pagination import PagePagination

    paginator = PagePagination()
    request = Request(APIRequestFactory().get(f"/api/v1/agents?{query}"))
    try:
        rows = getattr(paginator, method)(queryset, request)
    except NotFound as exc:
        return "404", str(exc.detail)
    page = paginator.page
    return ([row["id"] for row in rows], page.number, page.paginator.count, page.paginator.num_pages,
            paginator.get_page_size(request))


@pytest.mark.parametrize("query", [
    "", "page=1", "page=2&pageSize=3", "page=3&pageSize=3", "page=4&pageSize=3", "page=99", "page=last&pageSize=3",
    "page=0", "page=-1", "page=x", "page=1.0", "page= 2&pageSize=3", "pageSize=0", "pageSize=500", "pageSize=x"])
def test_counting_pages_by_window_gives_the_same_pages(tenant_a, query):
    for n in range(7):
        make_agent(tenant_a, f"Agent {n}")
    with tenant_context(tenant_a):
        for queryset in (agent_selectors.agents(), agent_selectors.agents(status=["paused"])):  # 7 rows, none
            assert page_of("paginate_counted", queryset, query) == page_of("paginate_queryset", queryset, query)


def test_datetime_text_is_the_datetime_fields_output():
    import datetime as dt
    import zoneinfo

    from django.utils import timezone
    from rest_framework import serializers

    from aegis.api.wire import datetime_text

    field = serializers.DateTimeField()
    values = [dt.datetime(2026, 11, 25, 14, 3, 7, 123456, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
              dt.datetime(2026, 6, 1, 2, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo")), dt.datetime(2026, 6, 1, 2, 0),
              None]
    for zone in (None, "Europe/Paris"):
        with timezone.override(zone) if zone else timezone.override(timezone.get_default_timezone()):
            assert [datetime_text(value) for value in values] == [field.to_representation(value) for value in values]
