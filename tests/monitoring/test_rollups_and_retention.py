"""Metrics rollups (hourly and daily buckets, idempotent, late events) and retention (health
samples and activity pruned in batches, audit logs kept)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.agents import tasks as agent_tasks
from apps.agents.models import AgentActivity, AgentMetrics
from apps.audit.models import AuditLog
from apps.monitoring import retention
from apps.monitoring import tasks as monitoring_tasks
from apps.monitoring.models import ContainerHealth
from tests.api.agent_factories import make_agent
from tests.api.platform_support import make_sample

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def activity(agent, kind: str, at: datetime, **fields) -> AgentActivity:
    row = AgentActivity.objects.create(agent=agent, kind=kind, summary=kind, **fields)
    AgentActivity.objects.filter(pk=row.pk).update(created_at=at)  # auto_now_add ignores a given value
    return row


def buckets(period: str) -> dict:
    return {(m.agent.key, m.period_start.astimezone(UTC).strftime("%d %H:%M")):
            (m.messages, m.tokens_in, m.tokens_out, m.cost_usd, m.errors, m.avg_latency_ms)
            for m in AgentMetrics.objects.filter(period=period).select_related("agent")}


@pytest.fixture
def agents(tenant_a):
    return make_agent(tenant_a, "Ava"), make_agent(tenant_a, "Bob")


@pytest.fixture
def history(tenant_a, agents):
    ava, bob = agents
    with tenant_context(tenant_a):
        at = NOW.replace(minute=0)
        activity(ava, "message_received", at - timedelta(hours=1, minutes=50), tokens_in=100)
        activity(ava, "message_sent", at - timedelta(hours=1, minutes=49), tokens_out=300, cost_usd=Decimal("0.010"),
                 latency_ms=1200)
        activity(ava, "skill_invoked", at - timedelta(hours=1, minutes=10), latency_ms=401)
        activity(ava, "error", at - timedelta(minutes=50))
        activity(ava, "message_sent", at + timedelta(minutes=5), tokens_out=50, cost_usd=Decimal("0.002"),
                 latency_ms=800)
        activity(bob, "message_received", at - timedelta(minutes=20), tokens_in=10)
        activity(bob, "status_changed", at - timedelta(days=1, hours=2))  # yesterday
    return ava, bob


@pytest.mark.django_db
def test_rollup_sums_hourly_and_daily_buckets(tenant_a, history):
    with tenant_context(tenant_a):
        written = agent_tasks.rollup(NOW - timedelta(days=2))
        assert buckets("hour") == {
            ("ava", "20 08:00"): (2, 100, 300, Decimal("0.010000"), 0, 801),  # mean of 1200 and 401
            ("ava", "20 09:00"): (0, 0, 0, Decimal("0.000000"), 1, None),
            ("ava", "20 10:00"): (1, 0, 50, Decimal("0.002000"), 0, 800),
            ("bob", "20 09:00"): (1, 10, 0, Decimal("0.000000"), 0, None),
            ("bob", "19 08:00"): (0, 0, 0, Decimal("0.000000"), 0, None),
        }
        assert buckets("day") == {
            ("ava", "20 00:00"): (3, 100, 350, Decimal("0.012000"), 1, 800),  # mean of 1200, 401, 800
            ("bob", "20 00:00"): (1, 10, 0, Decimal("0.000000"), 0, None),
            ("bob", "19 00:00"): (0, 0, 0, Decimal("0.000000"), 0, None),
        }
    assert written == {"hour": 5, "day": 3}


@pytest.mark.django_db
def test_rerunning_gives_the_same_numbers_and_rewrites_nothing(tenant_a, history):
    with tenant_context(tenant_a):
        agent_tasks.rollup(NOW - timedelta(days=2))
        first = (buckets("hour"), buckets("day"), list(AgentMetrics.objects.values_list("id", "updated_at")))
        assert agent_tasks.rollup(NOW - timedelta(days=2)) == {"hour": 0, "day": 0}  # unchanged rows untouched
        assert (buckets("hour"), buckets("day"), list(AgentMetrics.objects.values_list("id", "updated_at"))) == first


@pytest.mark.django_db
def test_a_late_event_is_counted_when_its_bucket_is_recomputed(tenant_a, history, settings):
    ava, _ = history
    settings.METRICS_RECOMPUTE_HOURS = 3
    with tenant_context(tenant_a):
        agent_tasks.rollup(agent_tasks.rollup_window(NOW))
        activity(ava, "message_received", NOW.replace(minute=0) - timedelta(hours=1, minutes=55), tokens_in=7)
        agent_tasks.rollup(agent_tasks.rollup_window(NOW))  # the regular run an hour later still covers 08:00
        assert buckets("hour")[("ava", "20 08:00")][:2] == (3, 107)
        assert buckets("day")[("ava", "20 00:00")][:2] == (4, 107)
    assert agent_tasks.rollup_window(NOW) == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_hourly_fan_out_rolls_up_every_tenant_with_data(tenant_a, tenant_b, agents):
    ava, _ = agents
    with tenant_context(tenant_a):
        activity(ava, "message_received", timezone.now(), tokens_in=5)
    assert agent_tasks.rollup_metrics.apply().get() >= 2
    with tenant_context(tenant_a):
        assert AgentMetrics.objects.get(agent=ava, period="hour").tokens_in == 5
    with tenant_context(tenant_b):
        assert not AgentMetrics.objects.exists()
    with pytest.raises(ValueError, match="not an ISO 8601"):
        agent_tasks.rollup_tenant_metrics.apply(args=(str(tenant_a.pk), "yesterday"), throw=True)


@pytest.mark.django_db
def test_activity_older_than_the_retention_is_pruned_in_batches(tenant_a, agents, settings):
    ava, _ = agents
    settings.ACTIVITY_RETENTION_DAYS = 30
    settings.RETENTION_BATCH_SIZE = 2
    with tenant_context(tenant_a):
        for days in range(31, 36):
            activity(ava, "message_sent", timezone.now() - timedelta(days=days))
        kept = activity(ava, "message_sent", timezone.now() - timedelta(days=29))
        AgentMetrics.objects.create(agent=ava, period="day", period_start=timezone.now() - timedelta(days=40),
                                    messages=5)
    with mock.patch.object(retention, "transaction", wraps=retention.transaction) as tx:
        assert agent_tasks.prune_tenant_activity.apply(args=(str(tenant_a.pk),)).get() == 5
    assert tx.atomic.call_count == 3  # 2 + 2 + 1: each batch its own short transaction
    with tenant_context(tenant_a):
        assert list(AgentActivity.objects.values_list("pk", flat=True)) == [kept.pk]
        assert AgentMetrics.objects.count() == 1  # rollups outlive the raw events


@pytest.mark.django_db
def test_health_samples_older_than_the_retention_are_pruned_and_audit_logs_kept(tenant_a, settings):
    settings.HEALTH_RETENTION_DAYS = 14
    settings.RETENTION_BATCH_SIZE = 3
    for days in (15, 16, 17, 18, 20, 30, 13, 1):
        make_sample(tenant_a, checked_at=timezone.now() - timedelta(days=days))
    audit_before = AuditLog.objects.count()

    assert monitoring_tasks.prune_health_samples.apply().get() == 6

    assert ContainerHealth.objects.filter(tenant=tenant_a).count() == 2
    assert AuditLog.objects.count() == audit_before  # never pruned: append-only, no retention setting
    assert monitoring_tasks.prune_health_samples.apply().get() == 0
    assert not hasattr(settings, "AUDIT_RETENTION_DAYS")


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        retention.delete_older_than("monitoring_containerhealth", "checked_at", NOW, batch_size=0)
