"""Every database constraint refuses bad rows at the database level.

Rows are written with QuerySet.update, bulk_create or raw SQL, none of which runs model
validation, so what stops them is PostgreSQL itself. Foreign keys are deferred (checked at
commit); `refused_by` checks them at the end of its block.
"""

import re
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import DatabaseError
from django.db.models import ProtectedError
from django.utils import timezone

from apps.accounts.models import ApiKey, Role, TeamInvite, TeamMember, User
from apps.accounts.services import add_member
from apps.agents.models import Agent, AgentActivity, AgentChannel, AgentMetrics, SkillInstallation
from apps.audit.models import AuditLog
from apps.audit.services import record
from apps.monitoring.models import Alert, ContainerHealth
from apps.skills.models import AgentRole, Skill
from apps.tenants.models import Tenant, TenantRuntime
from tests.dbtools import accepted, execute, fetchall, fetchone, refused_by

pytestmark = pytest.mark.django_db

PUBLIC_ENUMS = [
    ("accounts.User", "role"),
    ("accounts.TeamMember", "role"),
    ("accounts.TeamMember", "status"),
    ("accounts.TeamInvite", "role"),
    ("tenants.Tenant", "status"),
    ("tenants.Tenant", "plan"),
    ("tenants.TenantRuntime", "state"),
    ("tenants.TenantRuntime", "backend"),
    ("skills.Skill", "status"),
    ("skills.Skill", "category"),
    ("monitoring.ContainerHealth", "status"),
    ("monitoring.Alert", "severity"),
    ("monitoring.Alert", "status"),
]
TENANT_ENUMS = [
    ("agents.Agent", "status"),
    ("agents.Agent", "model_tier"),
    ("agents.Agent", "thinking_mode"),
    ("agents.AgentChannel", "type"),
    ("agents.AgentChannel", "status"),
    ("agents.AgentActivity", "kind"),
    ("agents.AgentMetrics", "period"),
]
OUR_APPS = {"accounts", "tenants", "skills", "audit", "monitoring", "agents"}


def now():
    return timezone.now()


@pytest.fixture
def agent_role(db) -> AgentRole:
    return AgentRole.objects.get_or_create(key="support", defaults={"name": "Support"})[0]


@pytest.fixture
def skill(db) -> Skill:
    return Skill.objects.create(name="Calendar", slug="calendar", version="1.0.0", status="approved",
                                reviewed_at=now(), description="Books meetings")


@pytest.fixture
def member(tenant_a) -> User:
    return add_member(tenant=tenant_a, email="member@acme.example", password=None, role=Role.TENANT_MEMBER)


@pytest.fixture
def public_rows(tenant_a, member, skill):
    return {
        "accounts.User": member,
        "accounts.TeamMember": member.membership,
        "accounts.TeamInvite": TeamInvite.objects.create(
            tenant=tenant_a, email="new@acme.example", role="tenant_member", token_hash="h" * 64,
            expires_at=now() + timedelta(days=7)),
        "tenants.Tenant": tenant_a,
        "tenants.TenantRuntime": TenantRuntime.objects.create(tenant=tenant_a, backend="local", gateway_token="t" * 32),
        "skills.Skill": skill,
        "monitoring.ContainerHealth": ContainerHealth.objects.create(tenant=tenant_a, status="healthy",
                                                                     checked_at=now()),
        "monitoring.Alert": Alert.objects.create(tenant=tenant_a, severity="warning", kind="runtime.unhealthy",
                                                 message="runtime slow", dedup_key="acme:runtime"),
    }


@pytest.fixture
def agent(tenant_a, in_tenant, agent_role) -> Agent:
    with in_tenant(tenant_a):
        return Agent.objects.create(key="helper", name="Helper", role=agent_role)


@pytest.fixture
def tenant_rows(tenant_a, in_tenant, agent):
    with in_tenant(tenant_a):
        return {
            "agents.Agent": agent,
            "agents.AgentChannel": AgentChannel.objects.create(agent=agent, type="web", name="site"),
            "agents.AgentActivity": AgentActivity.objects.create(agent=agent, kind="message_sent", summary="hi"),
            "agents.AgentMetrics": AgentMetrics.objects.create(agent=agent, period="hour", period_start=now()),
        }


# --- Enums: a CHECK naming exactly the allowed values --------------------------------------------


def test_every_enum_field_is_covered_here():
    enum_fields = {
        (model._meta.label, field.name)
        for model in apps.get_models()
        if model._meta.app_label in OUR_APPS
        for field in model._meta.concrete_fields
        if field.choices
    }
    assert enum_fields == set(PUBLIC_ENUMS) | set(TENANT_ENUMS)


@pytest.mark.parametrize(("label", "field"), PUBLIC_ENUMS + TENANT_ENUMS)
def test_enum_check_allows_exactly_the_choices(label, field, tenant_a, in_tenant):
    model = apps.get_model(label)
    model_field = model._meta.get_field(field)
    name = f"{model._meta.db_table}_{field}_valid"
    with in_tenant(tenant_a):  # tenant tables resolve to tenant A's schema, public ones to public
        (definition,) = fetchone(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s AND conrelid = %s::regclass",
            [name, model._meta.db_table],
        )
    assert set(re.findall(r"'([^']*)'::", definition)) == {value for value, _ in model_field.choices}
    assert ("IS NULL" in definition) == model_field.null


@pytest.mark.parametrize(("label", "field"), PUBLIC_ENUMS)
def test_public_enum_check_refuses_other_values(label, field, public_rows):
    model = apps.get_model(label)
    with refused_by(f"{model._meta.db_table}_{field}_valid"):
        model.objects.filter(pk=public_rows[label].pk).update(**{field: "zz"})  # short: fits every max_length


@pytest.mark.parametrize(("label", "field"), TENANT_ENUMS)
def test_tenant_enum_check_refuses_other_values(label, field, tenant_rows, tenant_a, in_tenant):
    model = apps.get_model(label)
    with in_tenant(tenant_a), refused_by(f"{model._meta.db_table}_{field}_valid"):
        model.objects.filter(pk=tenant_rows[label].pk).update(**{field: "zz"})  # short: fits every max_length


# --- Users, tenants, memberships, invites ------------------------------------------------------------


def test_user_email_is_unique_case_insensitively(member):
    with refused_by("accounts_user_email_ci_unique"):
        User.objects.bulk_create([User(email="MEMBER@Acme.Example", role=Role.TENANT_MEMBER,
                                       tenant_id=member.tenant_id, password="!")])


def test_company_name_is_unique_case_insensitively(tenant_a):
    with refused_by("tenants_tenant_company_name_ci_unique"):
        Tenant.objects.bulk_create([Tenant(company_name=tenant_a.company_name.upper(), slug="acme-2",
                                           schema_name="t_acme_2", admin_email="x@acme.example")])


def test_tenant_user_needs_a_tenant(db):
    with refused_by("accounts_user_tenant_iff_not_platform_admin"):
        User.objects.bulk_create([User(email="lost@example.com", role=Role.TENANT_MEMBER, tenant=None, password="!")])


def test_platform_admin_has_no_tenant(tenant_a, platform_admin):
    with refused_by("accounts_user_tenant_iff_not_platform_admin"):
        User.objects.bulk_create([User(email="op@example.com", role=Role.PLATFORM_ADMIN, tenant=tenant_a,
                                       password="!")])
    with refused_by("accounts_user_tenant_iff_not_platform_admin"):
        User.objects.filter(pk=platform_admin.pk).update(tenant=tenant_a)


def test_teammember_must_agree_with_its_user(member, tenant_b):
    with refused_by("accounts_teammember_matches_user"):
        TeamMember.objects.filter(user=member).update(role=Role.TENANT_ADMIN)
    with refused_by("accounts_teammember_matches_user"):
        TeamMember.objects.filter(user=member).update(tenant=tenant_b)
    loner = User.objects.create(email="loner@acme.example", role=Role.TENANT_MEMBER, tenant_id=member.tenant_id)
    with refused_by("accounts_teammember_matches_user"):
        TeamMember.objects.bulk_create([TeamMember(user=loner, tenant=tenant_b, role=Role.TENANT_MEMBER)])
    with refused_by("accounts_teammember_matches_user"):
        TeamMember.objects.bulk_create([TeamMember(user=loner, tenant_id=member.tenant_id, role=Role.TENANT_ADMIN)])
    with accepted():
        TeamMember.objects.create(user=loner, tenant_id=member.tenant_id, role=Role.TENANT_MEMBER)


def test_user_role_and_tenant_changes_cascade_to_the_membership(member, tenant_b):
    with accepted():
        User.objects.filter(pk=member.pk).update(role=Role.TENANT_ADMIN)
    assert TeamMember.objects.get(user=member).role == Role.TENANT_ADMIN
    with accepted():
        User.objects.filter(pk=member.pk).update(tenant=tenant_b)
    assert TeamMember.objects.get(user=member).tenant_id == tenant_b.pk
    # A member cannot become a platform admin while a membership still says otherwise.
    with refused_by(None):
        User.objects.filter(pk=member.pk).update(role=Role.PLATFORM_ADMIN, tenant=None)


def test_one_live_invite_per_tenant_and_email(tenant_a, tenant_b):
    def invite(tenant, email, **extra):
        return TeamInvite(tenant=tenant, email=email, role="tenant_member", token_hash=uuid.uuid4().hex,
                          expires_at=now() + timedelta(days=7), **extra)

    first = TeamInvite.objects.bulk_create([invite(tenant_a, "Pat@acme.example")])[0]
    with refused_by("accounts_invite_one_live_per_email"):
        TeamInvite.objects.bulk_create([invite(tenant_a, "pat@ACME.example")])
    with accepted():  # another tenant may invite the same person
        TeamInvite.objects.bulk_create([invite(tenant_b, "pat@acme.example")])
    TeamInvite.objects.filter(pk=first.pk).update(revoked_at=now())
    with accepted():  # once the first is no longer live, a new one may go out
        TeamInvite.objects.bulk_create([invite(tenant_a, "pat@acme.example")])
    with refused_by("accounts_invite_not_accepted_and_revoked"):
        TeamInvite.objects.filter(pk=first.pk).update(accepted_at=now())


def test_tenant_lifecycle_timestamps_are_required(tenant_a):
    with refused_by("tenants_tenant_suspended_has_timestamp"):
        Tenant.objects.filter(pk=tenant_a.pk).update(status="suspended", suspended_at=None)
    with refused_by("tenants_tenant_decommissioned_has_purge_date"):
        Tenant.objects.filter(pk=tenant_a.pk).update(status="decommissioned", purge_after=None)


# --- Skills, alerts --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "1.0", "01.0.0", "1.0.0-", "1.0.0+", "v1.0.0", "1.0.0 ", "1.0.0-01"])
def test_skill_version_must_be_semver(db, version):
    with refused_by("skills_skill_version_semver"):
        Skill.objects.bulk_create([Skill(name="X", slug="x", version=version)])


@pytest.mark.parametrize(
    "version", ["0.0.1", "1.2.3", "10.20.30", "1.0.0-alpha.1", "1.0.0-rc.1+build.5", "2.0.0+sha.ab12"]
)
def test_skill_semver_accepts_valid_versions(db, version):
    with accepted():
        Skill.objects.bulk_create([Skill(name="X", slug="x", version=version)])


def test_skill_slug_and_version_are_unique_together(skill):
    with refused_by("skills_skill_slug_version_unique"):
        Skill.objects.bulk_create([Skill(name="Calendar again", slug="calendar", version="1.0.0")])
    with accepted():
        Skill.objects.bulk_create([Skill(name="Calendar", slug="calendar", version="1.1.0")])


def test_reviewed_skill_needs_review_timestamp(db):
    with refused_by("skills_skill_reviewed_has_timestamp"):
        Skill.objects.bulk_create([Skill(name="X", slug="x", version="1.0.0", status="approved", reviewed_at=None)])


def test_one_unresolved_alert_per_dedup_key(tenant_a):
    def alert(status="open", dedup_key="acme:unreachable", **extra):
        return Alert(tenant=tenant_a, severity="critical", kind="runtime.unreachable", message="down",
                     dedup_key=dedup_key, status=status, **extra)

    first = Alert.objects.bulk_create([alert()])[0]
    with refused_by("monitoring_alert_one_open_per_key"):
        Alert.objects.bulk_create([alert()])
    Alert.objects.filter(pk=first.pk).update(status="acknowledged")
    with refused_by("monitoring_alert_one_open_per_key"):  # acknowledged is not resolved
        Alert.objects.bulk_create([alert()])
    Alert.objects.filter(pk=first.pk).update(status="resolved", resolved_at=now())
    with accepted():
        Alert.objects.bulk_create([alert()])
    with refused_by("monitoring_alert_resolved_has_timestamp"):
        Alert.objects.bulk_create([alert(status="resolved", resolved_at=None, dedup_key="other")])


# --- Tenant-schema tables ----------------------------------------------------------------------------


def test_skill_installed_once_per_agent_and_once_in_the_toolbox(tenant_a, in_tenant, agent, skill):
    with in_tenant(tenant_a):
        SkillInstallation.objects.bulk_create([SkillInstallation(skill=skill, agent=None)])
        with refused_by("agents_install_agent_skill_unique"):  # NULLS NOT DISTINCT: the toolbox too
            SkillInstallation.objects.bulk_create([SkillInstallation(skill=skill, agent=None)])
        with accepted():  # the same skill on an agent is a different row
            SkillInstallation.objects.bulk_create([SkillInstallation(skill=skill, agent=agent)])
        with refused_by("agents_install_agent_skill_unique"):
            SkillInstallation.objects.bulk_create([SkillInstallation(skill=skill, agent=agent)])


def test_agent_metrics_bucket_is_unique(tenant_a, in_tenant, agent):
    start = now().replace(minute=0, second=0, microsecond=0)
    with in_tenant(tenant_a):
        AgentMetrics.objects.create(agent=agent, period="hour", period_start=start)
        with refused_by("agents_metrics_bucket_unique"):
            AgentMetrics.objects.bulk_create([AgentMetrics(agent=agent, period="hour", period_start=start)])
        with accepted():
            AgentMetrics.objects.bulk_create([AgentMetrics(agent=agent, period="day", period_start=start)])


def test_agent_name_is_unique_case_insensitively_within_a_tenant(tenant_a, tenant_b, in_tenant, agent, agent_role):
    with in_tenant(tenant_a), refused_by("agents_agent_name_ci_unique"):
        Agent.objects.bulk_create([Agent(key="helper2", name="HELPER", role=agent_role)])
    with in_tenant(tenant_b), accepted():  # another tenant's schema: no clash
        Agent.objects.bulk_create([Agent(key="helper", name="Helper", role=agent_role)])


@pytest.mark.parametrize("key", ["Helper", "has space", "-lead", "", "dot.ted", "ünicode"])
def test_agent_key_must_match_the_runtime_pattern(tenant_a, in_tenant, agent_role, key):
    with in_tenant(tenant_a), refused_by("agents_agent_key_pattern"):
        Agent.objects.bulk_create([Agent(key=key, name=f"Agent {key}", role=agent_role)])


def test_channel_name_is_unique_per_agent(tenant_a, in_tenant, agent):
    with in_tenant(tenant_a):
        AgentChannel.objects.create(agent=agent, type="web", name="site")
        with refused_by("agents_channel_agent_name_unique"):
            AgentChannel.objects.bulk_create([AgentChannel(agent=agent, type="slack", name="site")])


def test_public_rows_referenced_from_a_tenant_schema_cannot_be_deleted(
    tenant_a, tenant_b, in_tenant, agent, agent_role, skill
):
    with in_tenant(tenant_a):
        SkillInstallation.objects.create(skill=skill, agent=agent)
    # Django's collector cannot see tenant schemas (DO_NOTHING); PostgreSQL's foreign keys can,
    # whichever schema the delete is issued from.
    with refused_by('on table "agents_skillinstallation"'):
        Skill.objects.filter(pk=skill.pk).delete()
    with in_tenant(tenant_b), refused_by('on table "agents_skillinstallation"'):
        skill.delete()
    with refused_by('on table "agents_agent"'):
        AgentRole.objects.filter(pk=agent_role.pk).delete()
    unused = Skill.objects.create(name="Unused", slug="unused", version="1.0.0")
    with accepted():
        unused.delete()


def test_deleting_a_user_clears_installed_by_in_tenant_schemas(tenant_a, in_tenant, agent, skill, member):
    with in_tenant(tenant_a):
        installation = SkillInstallation.objects.create(skill=skill, agent=agent, installed_by=member)
    with accepted():
        member.delete()
    with in_tenant(tenant_a):
        installation.refresh_from_db()
    assert installation.installed_by_id is None


# --- Audit log: append-only ----------------------------------------------------------------------------


@pytest.fixture
def audit_entry(tenant_a, member) -> AuditLog:
    return record("agent.created", actor=member, tenant=tenant_a, changes={"name": "Helper"})


def test_audit_log_rows_cannot_be_updated(audit_entry, platform_admin):
    with refused_by("append-only", exc=DatabaseError):
        AuditLog.objects.filter(pk=audit_entry.pk).update(action="agent.deleted")
    with refused_by("append-only", exc=DatabaseError):
        execute("UPDATE audit_auditlog SET changes = '{}'::jsonb WHERE id = %s", [audit_entry.pk])
    with refused_by("append-only", exc=DatabaseError):  # nor may the actor be swapped for someone else
        AuditLog.objects.filter(pk=audit_entry.pk).update(actor_user=platform_admin)


def test_audit_log_rows_cannot_be_deleted(audit_entry):
    with refused_by("append-only", exc=DatabaseError):
        AuditLog.objects.filter(pk=audit_entry.pk).delete()
    with refused_by("append-only", exc=DatabaseError):
        execute("DELETE FROM audit_auditlog WHERE id = %s", [audit_entry.pk])
    assert AuditLog.objects.filter(pk=audit_entry.pk).exists()


def test_deleting_an_actor_keeps_the_entry_and_its_label(audit_entry, member, tenant_a):
    key = ApiKey.objects.create(tenant=tenant_a, name="ci", prefix="abcd1234", hashed_key="x")
    by_key = record("agent.updated", actor=key, tenant=tenant_a)
    with accepted():
        member.delete()
        key.delete()
    audit_entry.refresh_from_db()
    by_key.refresh_from_db()
    assert (audit_entry.actor_user_id, audit_entry.actor_label) == (None, "member@acme.example")
    assert (by_key.actor_api_key_id, by_key.actor_label) == (None, "api-key:abcd1234")
    assert audit_entry.changes == {"name": "Helper"}


# --- Tenants are never deleted, only decommissioned and purged ------------------------------------------


def test_a_tenant_with_history_is_protected_by_django(tenant_a):
    with pytest.raises(ProtectedError):
        tenant_a.delete()


def test_a_tenant_row_is_never_deleted_whatever_deletes_it(tenant_a):
    bare = Tenant.objects.bulk_create([Tenant(company_name="Bare", slug="bare", schema_name="t_bare",
                                              admin_email="a@bare.example")])[0]
    with refused_by("cannot be deleted: decommission it"):
        Tenant.objects.filter(pk=bare.pk).delete()
    with refused_by("cannot be deleted: decommission it"):
        execute("DELETE FROM tenants_tenant WHERE id = %s", [tenant_a.pk])
    assert fetchall("SELECT count(*) FROM tenants_tenant WHERE id IN (%s, %s)", [bare.pk, tenant_a.pk]) == [(2,)]
