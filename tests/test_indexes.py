"""Each filter and ordering index is used by the query the API runs for it.

Rows are generated in SQL (generate_series) at realistic proportions, ANALYZEd inside the
test's transaction (the planner then sees the same statistics a production table would give),
and the plan of the queryset is read with EXPLAIN (FORMAT JSON). Everything is rolled back.

The catalog checks at the end keep the index set honest: every foreign key and tenant_id is the
leading column of some index, and no index duplicates another.
"""

import pytest
from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, OuterRef, Subquery

from apps.agents.models import Agent, AgentActivity
from apps.audit.models import AuditLog
from apps.monitoring.models import Alert, ContainerHealth
from apps.skills.models import AgentRole, Skill
from apps.tenants.models import Tenant
from tests.dbtools import execute, fetchall, indexes_used, plan_of

pytestmark = pytest.mark.django_db

PAGE = 50


def settle_gin(*indexes: str) -> None:
    """Merge the GIN indexes' pending lists into the index proper, as autovacuum does in steady
    state. Freshly bulk-inserted rows all sit in the pending list, which every search must scan
    linearly, so the planner rightly prefers a sequential scan until the list is merged."""
    for index in indexes:
        execute("SELECT gin_clean_pending_list(%s::regclass)", [index])


def insert_tenants(count: int) -> list:
    """`count` tenants (no schemas: only their public rows matter here); 2% suspended, 1% failed."""
    execute(
        """
        INSERT INTO tenants_tenant (id, schema_name, created_at, updated_at, company_name, slug, admin_email,
                                    status, plan, industry, expected_agent_count, model_defaults, resource_limits,
                                    status_reason, suspended_at)
        SELECT gen_random_uuid(), 't_bulk_' || g, now() - g * interval '1 hour', now(), 'Bulk Company ' || g,
               'bulk-' || g, 'admin@bulk' || g || '.example',
               CASE WHEN mod(g, 50) = 0 THEN 'suspended' WHEN mod(g, 97) = 0 THEN 'failed' ELSE 'active' END,
               (ARRAY['starter', 'growth', 'enterprise'])[1 + mod(g, 3)], '', 0, '{}', '{}', '',
               CASE WHEN mod(g, 50) = 0 THEN now() END
        FROM generate_series(1, %s) g
        """,
        [count],
    )
    execute("ANALYZE tenants_tenant")
    return [row[0] for row in fetchall("SELECT id FROM tenants_tenant WHERE slug LIKE 'bulk-%%' ORDER BY slug")]


def test_tenant_list_by_status_uses_the_status_index(db):
    insert_tenants(20_000)
    suspended = Tenant.objects.filter(status="suspended").order_by("-created_at")[:PAGE]
    assert "tenants_status_created_idx" in indexes_used(plan_of(suspended))
    newest = Tenant.objects.order_by("-created_at")[:PAGE]
    assert "tenants_created_idx" in indexes_used(plan_of(newest))
    by_plan = Tenant.objects.filter(plan="enterprise").order_by("-created_at")[:PAGE]
    assert indexes_used(plan_of(by_plan)) & {"tenants_plan_created_idx", "tenants_created_idx"}


def test_audit_log_queries_use_their_indexes(db):
    tenants = insert_tenants(50)
    execute(
        """
        INSERT INTO audit_auditlog (id, created_at, actor_label, action, target_type, target_id, changes,
                                    user_agent, request_id, tenant_id)
        SELECT gen_random_uuid(), now() - g * interval '10 minutes', 'user' || mod(g, 100) || '@bulk.example',
               (ARRAY['agent.created', 'agent.updated', 'agent.deleted', 'agent.paused', 'channel.created',
                      'channel.updated', 'skill.installed', 'skill.removed', 'team.member_added', 'team.invited',
                      'apikey.created', 'apikey.revoked', 'tenant.updated', 'auth.login', 'auth.logout',
                      'auth.mfa_verified', 'role.updated', 'toolbox.updated', 'runtime.restarted',
                      'tenant.suspended'])[1 + mod(g, 20)],
               'agents.agent', g::text, '{}', '', '', (%s::uuid[])[1 + mod(g, 50)]
        FROM generate_series(1, 50000) g
        """,
        [tenants],
    )
    execute("ANALYZE audit_auditlog")
    tenant_page = AuditLog.objects.filter(tenant_id=tenants[7]).order_by("-created_at", "-id")[:PAGE]
    assert "audit_tenant_created_idx" in indexes_used(plan_of(tenant_page))
    # Keyset pagination (the admin's and the API's "next page"): same index, no OFFSET scan.
    tenant_next = AuditLog.objects.filter(tenant_id=tenants[7], created_at__lt=F("created_at")).order_by(
        "-created_at", "-id")[:PAGE]
    assert "audit_tenant_created_idx" in indexes_used(plan_of(tenant_next))
    by_action = AuditLog.objects.filter(action="tenant.suspended").order_by("-created_at")[:PAGE]
    assert "audit_action_created_idx" in indexes_used(plan_of(by_action))
    platform_page = AuditLog.objects.order_by("-created_at", "-id")[:PAGE]
    assert "audit_created_idx" in indexes_used(plan_of(platform_page))
    by_target = AuditLog.objects.filter(target_type="agents.agent", target_id="4242")
    assert "audit_target_idx" in indexes_used(plan_of(by_target))


@pytest.fixture
def bulk_skills(db):
    execute(
        """
        INSERT INTO skills_skill (id, created_at, updated_at, name, slug, version, category, status, description,
                                  capabilities, configuration, review_note, reviewed_at)
        SELECT gen_random_uuid(), now() - g * interval '1 hour', now(),
               'Skill ' || g || ' ' || (ARRAY['mailer', 'planner', 'crm', 'ledger', 'monitor', 'translator',
                                             'summarizer', 'scheduler'])[1 + mod(g, 8)],
               'skill-' || g, '1.0.0',
               (ARRAY['productivity', 'communication', 'sales', 'support', 'engineering', 'data', 'operations',
                      'security', 'other'])[1 + mod(g, 9)],
               CASE WHEN mod(g, 10) = 0 THEN 'pending' ELSE 'approved' END,
               'Helps teams with ' || (ARRAY['email', 'meetings', 'invoices', 'tickets', 'deploys', 'reports',
                                             'leads', 'contracts'])[1 + mod(g / 8, 8)]
                 || CASE WHEN mod(g, 1000) = 7 THEN ' on kubernetes clusters' ELSE ' and paperwork' END,
               jsonb_build_object('permissions',
                                  jsonb_build_array('scope_' || chr(97 + mod(g, 26)) || chr(97 + mod(g / 26, 26))
                                                    || ':read'),
                                  'network', mod(g, 2) = 0),
               '{"type": "object"}', '', CASE WHEN mod(g, 10) <> 0 THEN now() END
        FROM generate_series(1, 20000) g
        """
    )
    settle_gin("skills_search_idx", "skills_capabilities_idx")
    execute("ANALYZE skills_skill")


def test_skill_queries_use_their_indexes(bulk_skills):
    # Marketplace search: full text over name (weight A) and description (weight B), ranked.
    query = SearchQuery("kubernetes clusters", search_type="websearch", config="english")
    found = (Skill.objects.filter(status="approved", search_vector=query)
             .annotate(rank=SearchRank(F("search_vector"), query)).order_by("-rank", "name")[:PAGE])
    assert "skills_search_idx" in indexes_used(plan_of(found))
    assert "websearch_to_tsquery" in str(found.query)
    assert len(found) == 20
    # "Skills that need this permission": JSONB containment.
    needing = Skill.objects.filter(capabilities__contains={"permissions": ["scope_hc:read"]})
    assert "skills_capabilities_idx" in indexes_used(plan_of(needing))
    assert needing.count() > 0
    # The review queue and the catalogue by category.
    review_queue = Skill.objects.filter(status="pending").order_by("-created_at")[:PAGE]
    assert "skills_status_created_idx" in indexes_used(plan_of(review_queue))
    by_category = Skill.objects.filter(status="approved", category="security").order_by("name")[:PAGE]
    assert "skills_status_category_idx" in indexes_used(plan_of(by_category))


@pytest.fixture
def role(db) -> AgentRole:
    return AgentRole.objects.get_or_create(key="support", defaults={"name": "Support"})[0]


def insert_agents(count: int, role: AgentRole) -> None:
    execute(
        """
        INSERT INTO agents_agent (id, created_at, updated_at, key, name, status, assisted_user, description,
                                  status_reason, revision, role_key)
        SELECT gen_random_uuid(), now() - g * interval '1 minute', now(), 'agent-' || g, 'Agent ' || g,
               CASE WHEN mod(g, 100) = 0 THEN 'error' WHEN mod(g, 10) = 1 THEN 'paused'
                    WHEN mod(g, 20) = 2 THEN 'draft' ELSE 'active' END, '{}',
               CASE WHEN mod(g, 2000) = 3 THEN 'Handles billing escalations' ELSE 'Answers routine questions' END,
               '', 1, %s
        FROM generate_series(1, %s) g
        """,
        [role.key, count],
    )
    settle_gin("agents_search_idx", "agents_assisted_user_idx")
    execute("ANALYZE agents_agent")


def test_agent_search_uses_the_full_text_gin_index(tenant_a, in_tenant, role):
    with in_tenant(tenant_a):
        insert_agents(20_000, role)
        query = SearchQuery("escalations", search_type="websearch", config="english")
        found = Agent.objects.filter(search_vector=query).order_by("name")
        assert "agents_search_idx" in indexes_used(plan_of(found))
        assert found.count() == 10
        failing = Agent.objects.filter(status="error").order_by("-created_at")[:PAGE]
        assert "agents_status_created_idx" in indexes_used(plan_of(failing))


def test_agent_activity_feed_uses_the_per_agent_index(tenant_a, in_tenant, role):
    with in_tenant(tenant_a):
        insert_agents(200, role)
        execute(
            """
            INSERT INTO agents_agentactivity (id, created_at, kind, summary, payload, tokens_in, tokens_out,
                                              cost_usd, agent_id)
            SELECT gen_random_uuid(), now() - g * interval '5 seconds',
                   (ARRAY['message_received', 'message_sent', 'skill_invoked', 'error', 'status_changed'])
                     [1 + mod(g, 5)],
                   'event ' || g, '{}', 10, 20, 0.0001, a.ids[1 + mod(g, 200)]
            FROM generate_series(1, 50000) g, (SELECT array_agg(id) AS ids FROM agents_agent) a
            """
        )
        execute("ANALYZE agents_agentactivity")
        agent_id = fetchall("SELECT id FROM agents_agent WHERE key = 'agent-17'")[0][0]
        feed = AgentActivity.objects.filter(agent_id=agent_id).order_by("-created_at", "-id")[:PAGE]
        assert "agents_activity_agent_idx" in indexes_used(plan_of(feed))
        errors = AgentActivity.objects.filter(kind="error").order_by("-created_at")[:PAGE]
        assert "agents_activity_kind_idx" in indexes_used(plan_of(errors))
        tenant_feed = AgentActivity.objects.order_by("-created_at", "-id")[:PAGE]
        assert "agents_activity_created_idx" in indexes_used(plan_of(tenant_feed))


def test_alert_queues_use_their_indexes(db):
    tenants = insert_tenants(200)
    execute(
        """
        INSERT INTO monitoring_alert (id, created_at, updated_at, severity, kind, message, status, resolved_at,
                                      dedup_key, tenant_id)
        SELECT gen_random_uuid(), now() - g * interval '3 minutes', now(),
               CASE WHEN mod(g, 20) = 0 THEN 'critical' WHEN mod(g, 3) = 0 THEN 'warning' ELSE 'info' END,
               'runtime.unhealthy', 'runtime unhealthy', CASE WHEN g <= 100 THEN 'open' ELSE 'resolved' END,
               CASE WHEN g > 100 THEN now() END, 'runtime:' || g, (%s::uuid[])[1 + mod(g, 200)]
        FROM generate_series(1, 20000) g
        """,
        [tenants],
    )
    execute("ANALYZE monitoring_alert")
    open_alerts = Alert.objects.filter(status="open").order_by("-created_at")[:PAGE]
    assert "monitoring_alert_status_idx" in indexes_used(plan_of(open_alerts))
    tenant_open = Alert.objects.filter(tenant_id=tenants[3], status="open")
    assert "monitoring_alert_tenant_idx" in indexes_used(plan_of(tenant_open))
    critical = Alert.objects.filter(severity="critical").order_by("-created_at")[:PAGE]
    # Either walks the severity index, or the newest-first index filtering on severity (with
    # critical alerts at 5%, the planner may find 25 of them quickly that way): both avoid a sort.
    assert indexes_used(plan_of(critical)) & {"monitoring_alert_severity_idx", "monitoring_alert_created_idx"}


def test_container_health_latest_per_tenant_uses_the_tenant_index(db):
    tenants = insert_tenants(200)
    execute(
        """
        INSERT INTO monitoring_containerhealth (id, created_at, updated_at, status, cpu_percent, memory_mb,
                                                uptime_seconds, details, checked_at, tenant_id)
        SELECT gen_random_uuid(), now(), now(),
               CASE WHEN mod(g, 50) = 0 THEN 'unhealthy' ELSE 'healthy' END, 12.5, 512, g, '{}',
               now() - (g / 200) * interval '1 minute', (%s::uuid[])[1 + mod(g, 200)]
        FROM generate_series(1, 50000) g
        """,
        [tenants],
    )
    execute("ANALYZE monitoring_containerhealth")
    latest_one = ContainerHealth.objects.filter(tenant_id=tenants[0]).order_by("-checked_at")[:1]
    assert "monitoring_health_tenant_idx" in indexes_used(plan_of(latest_one))
    # The fleet view: each tenant with its newest sample, one index probe per tenant.
    latest = ContainerHealth.objects.filter(tenant=OuterRef("pk")).order_by("-checked_at")
    fleet = Tenant.objects.filter(slug__startswith="bulk-").annotate(
        health=Subquery(latest.values("status")[:1]), checked_at=Subquery(latest.values("checked_at")[:1]))
    assert "monitoring_health_tenant_idx" in indexes_used(plan_of(fleet))
    assert len(fleet) == 200
    unhealthy = ContainerHealth.objects.filter(status="unhealthy").order_by("-checked_at")[:PAGE]
    assert "monitoring_health_status_idx" in indexes_used(plan_of(unhealthy))


# --- The index set itself -------------------------------------------------------------------------------------

APP_TABLE_PREFIXES = ("accounts_", "tenants_", "skills_", "audit_", "monitoring_", "agents_")


def schemas_to_check():
    return ["public", settings.TENANT_TEMPLATE_SCHEMA]


@pytest.mark.parametrize("schema", schemas_to_check())
def test_every_foreign_key_and_tenant_id_leads_an_index(db, schema):
    uncovered = fetchall(
        """
        SELECT t.relname, a.attname
        FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = %s AND t.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.attname = 'tenant_id' OR EXISTS (
                SELECT 1 FROM pg_constraint c
                WHERE c.conrelid = t.oid AND c.contype = 'f' AND c.conkey[1] = a.attnum))
          AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indkey[0] = a.attnum)
        ORDER BY 1, 2
        """,
        [schema],
    )
    assert uncovered == []


@pytest.mark.parametrize("schema", schemas_to_check())
def test_no_index_duplicates_or_prefixes_another(db, schema):
    # A plain single-column btree index is redundant when another index starts with the same
    # column and operator class; unique indexes enforce something and stay.
    redundant = fetchall(
        """
        SELECT t.relname, a.relname, b.relname
        FROM pg_index ia JOIN pg_class a ON a.oid = ia.indexrelid
        JOIN pg_class t ON t.oid = ia.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_index ib ON ib.indrelid = ia.indrelid AND ib.indexrelid <> ia.indexrelid
        JOIN pg_class b ON b.oid = ib.indexrelid
        WHERE n.nspname = %s AND ia.indnatts = 1 AND NOT ia.indisunique AND ia.indpred IS NULL
          AND ia.indexprs IS NULL
          AND ib.indpred IS NULL AND a.relam = b.relam
          AND ia.indkey[0] = ib.indkey[0] AND ia.indclass[0] = ib.indclass[0]
          AND (ib.indnatts > 1 OR ia.indexrelid > ib.indexrelid)  -- longer, or an exact duplicate (once)
        ORDER BY 1, 2
        """,
        [schema],
    )
    assert [row for row in redundant if row[0].startswith(APP_TABLE_PREFIXES)] == []
