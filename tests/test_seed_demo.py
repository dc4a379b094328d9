"""`seed_demo` and `create_platform_admin`.

seed_demo commits tenants with schemas in real use; here it runs inside the `db` fixture's
transaction, and PostgreSQL DDL is transactional, so its schemas roll back with the test.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from apps.accounts.models import EncryptedTOTPDevice, Role, TeamMember, User
from apps.agents.models import Agent, AgentChannel, SkillInstallation
from apps.skills.models import AgentRole, Skill
from apps.tenants import demo
from apps.tenants.models import Tenant

DEMO_COMPANIES = [spec["company_name"] for spec in demo.TENANTS]


def _row_counts(schema: str) -> dict[str, int]:
    """Exact row count of every table in `schema`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [schema],
        )
        tables = sorted(row[0] for row in cursor.fetchall())
        counts = {}
        quote = connection.ops.quote_name
        for table in tables:  # names from the catalog, quoted
            cursor.execute(f"SELECT count(*) FROM {quote(schema)}.{quote(table)}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    return counts


def _snapshot() -> dict[str, dict[str, int]]:
    schemas = ["public"] + [Tenant.objects.get(company_name=name).schema_name for name in DEMO_COMPANIES]
    return {schema: _row_counts(schema) for schema in schemas}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("AEGIS_ADMIN_EMAIL", "AEGIS_ADMIN_PASSWORD", "AEGIS_DEMO_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_seed_demo_twice_changes_nothing(clean_env, session_tenants, db):
    first = _seed()
    before = _snapshot()
    second = _seed()
    after = _snapshot()

    assert before == after
    assert before["public"]["audit_auditlog"] > 0  # the first run recorded what it created
    assert "created" in first and "nothing changed" in second
    # The generated password is shown once, at creation, and never again.
    admin_line = next(line for line in first.splitlines() if "(generated now and shown only this once)" in line)
    password = admin_line.split()[1]
    assert password not in second
    assert "otpauth://totp/" in first and "otpauth://" not in second
    assert demo.DEFAULT_ADMIN_EMAIL in second
    assert User.objects.get(email=demo.DEFAULT_ADMIN_EMAIL).check_password(password)


def test_seed_demo_creates_the_demo_world(clean_env, session_tenants, db):
    _seed()

    admin = User.objects.get(email=demo.DEFAULT_ADMIN_EMAIL)
    assert admin.role == Role.PLATFORM_ADMIN and admin.tenant is None
    assert EncryptedTOTPDevice.objects.filter(user=admin, confirmed=True).count() == 1
    assert admin.mfa_enabled

    assert set(AgentRole.objects.values_list("key", flat=True)) >= {
        "executive_assistant", "sales", "support", "engineering", "operations", "custom"}
    approved = set(Skill.objects.filter(status="approved").values_list("slug", flat=True))
    assert approved >= {"calendar", "email-triage", "crm-lookup", "web-search", "github", "jira", "knowledge-base"}
    assert Skill.objects.filter(status="pending").count() >= 2
    # Every role's default skills exist in the marketplace.
    for role in AgentRole.objects.all():
        assert set(role.default_skills) <= approved, role.key

    for spec in demo.TENANTS:
        tenant = Tenant.objects.get(company_name=spec["company_name"])
        assert tenant.status == Tenant.Status.ACTIVE and tenant.plan == spec["plan"]
        assert schema_exists(tenant.schema_name)
        roles = dict(TeamMember.objects.filter(tenant=tenant).values_list("user__email", "role"))
        assert roles == {spec["admin"][0]: Role.TENANT_ADMIN, spec["member"][0]: Role.TENANT_MEMBER}
        assert User.objects.get(email=spec["member"][0]).check_password(demo.DEFAULT_DEMO_PASSWORD)

        with tenant_context(tenant):
            assert Agent.objects.count() == len(spec["agents"]) >= 2
            assert AgentChannel.objects.count() == sum(len(a["channels"]) for a in spec["agents"])
            toolbox = SkillInstallation.objects.filter(agent__isnull=True)
            assert {i.skill.slug for i in toolbox} == set(spec["toolbox"])
            assert SkillInstallation.objects.filter(agent__isnull=False).exists()
            # Channel secrets are encrypted at rest and read back in clear.
            channel = AgentChannel.objects.exclude(secrets={}).first()
            with connection.cursor() as cursor:
                cursor.execute("SELECT secrets FROM agents_agentchannel WHERE id = %s", [channel.pk])
                stored = cursor.fetchone()[0]
            clear = next(iter(channel.secrets.values()))
            assert clear not in stored
            assert channel.secret_hints == {name: "…" + value[-4:] for name, value in channel.secrets.items()}
            for installation in SkillInstallation.objects.select_related("skill"):
                installation.full_clean()  # still valid against the skill's schema

    # Channels and agents show each state the console can display.
    acme, globex = (Tenant.objects.get(company_name=name) for name in DEMO_COMPANIES)
    with tenant_context(acme):
        assert dict(AgentChannel.objects.values_list("name", "status")) == {
            "Acme Slack": "connected", "Alice on Telegram": "pending", "Website chat": "connected"}
        assert set(Agent.objects.values_list("status", flat=True)) == {"active", "draft"}
        # An agent-level install may switch off a skill the agent inherits from the toolbox.
        assert SkillInstallation.objects.get(agent__key="sales-desk", skill__slug="knowledge-base").enabled is False
    with tenant_context(globex):
        channels = {c.name: c for c in AgentChannel.objects.all()}
        assert channels["Globex Slack"].status == "error" and "signingSecret" in channels["Globex Slack"].last_error
        assert channels["Ops on Telegram"].status == "disabled"
        assert Agent.objects.get(key="ops-watch").status == "paused"

    # The demo tenants are separate from each other (and from the test suite's own tenants).
    with tenant_context(acme):
        acme_keys = set(Agent.objects.values_list("key", flat=True))
    with tenant_context(globex):
        globex_keys = set(Agent.objects.values_list("key", flat=True))
    assert acme_keys and globex_keys and not acme_keys & globex_keys


def test_seed_demo_takes_credentials_from_the_environment(clean_env, session_tenants, db):
    clean_env.setenv("AEGIS_ADMIN_EMAIL", "ops@example.org")
    clean_env.setenv("AEGIS_ADMIN_PASSWORD", "a-long-operator-password")
    clean_env.setenv("AEGIS_DEMO_PASSWORD", "another-demo-password")
    out = _seed()

    assert User.objects.get(email="ops@example.org").check_password("a-long-operator-password")
    assert not User.objects.filter(email=demo.DEFAULT_ADMIN_EMAIL).exists()
    assert "a-long-operator-password" not in out and "AEGIS_ADMIN_PASSWORD" in out
    assert User.objects.get(email=demo.TENANTS[0]["admin"][0]).check_password("another-demo-password")


def test_seed_demo_completes_a_partly_seeded_database(clean_env, session_tenants, db):
    _seed()
    full = _snapshot()
    acme = Tenant.objects.get(company_name=DEMO_COMPANIES[0])
    with tenant_context(acme):
        AgentChannel.objects.filter(name="Acme Slack").delete()
    Skill.objects.filter(slug="shell-runner").delete()

    out = _seed()

    assert "created 1 skills, 1 channels" in out
    after = _snapshot()["t_acme_corp"]
    # The re-created channel is logged like any new channel; every other table is as before.
    assert after.pop("agents_agentactivity") == full["t_acme_corp"].pop("agents_agentactivity") + 1
    assert after == full["t_acme_corp"]


def test_seed_demo_refuses_a_non_admin_under_the_admin_email(clean_env, tenant_a):
    from apps.accounts.services import add_member

    add_member(tenant=tenant_a, email=demo.DEFAULT_ADMIN_EMAIL, password="x" * 12, role=Role.TENANT_MEMBER)
    with pytest.raises(CommandError, match="not a platform admin"):
        _seed()


def test_create_platform_admin(clean_env, db):
    clean_env.setenv("NEW_ADMIN_PASSWORD", "operator-password-2024")
    out = StringIO()
    call_command("create_platform_admin", email="Ops@Example.org", name="Ops", password_env="NEW_ADMIN_PASSWORD",
                 stdout=out)

    user = User.objects.get(email="ops@example.org")
    assert user.role == Role.PLATFORM_ADMIN and user.tenant is None and user.name == "Ops"
    assert user.check_password("operator-password-2024")
    assert "created" in out.getvalue() and "enroll_totp --email ops@example.org" in out.getvalue()
    assert not EncryptedTOTPDevice.objects.filter(user=user).exists()


def test_create_platform_admin_with_totp(clean_env, db):
    clean_env.setenv("NEW_ADMIN_PASSWORD", "operator-password-2024")
    out = StringIO()
    call_command("create_platform_admin", email="ops@example.org", password_env="NEW_ADMIN_PASSWORD",
                 with_totp=True, stdout=out)
    assert "otpauth://totp/Aegis%3Aops%40example.org?" in out.getvalue()
    assert EncryptedTOTPDevice.objects.filter(user__email="ops@example.org", confirmed=True).count() == 1
    assert User.objects.get(email="ops@example.org").mfa_enabled


def test_create_platform_admin_refuses_duplicates(clean_env, platform_admin):
    clean_env.setenv("NEW_ADMIN_PASSWORD", "operator-password-2024")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_platform_admin", email=platform_admin.email.upper(), password_env="NEW_ADMIN_PASSWORD")
    assert User.objects.filter(email__iexact=platform_admin.email).count() == 1


@pytest.mark.parametrize(
    ("env_value", "message"),
    [(None, "unset or empty"), ("short", "password rejected"), ("password123", "password rejected")],
)
def test_create_platform_admin_rejects_bad_passwords(clean_env, db, env_value, message):
    if env_value is not None:
        clean_env.setenv("NEW_ADMIN_PASSWORD", env_value)
    else:
        clean_env.delenv("NEW_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError, match=message):
        call_command("create_platform_admin", email="ops@example.org", password_env="NEW_ADMIN_PASSWORD")
    assert not User.objects.filter(email="ops@example.org").exists()


def test_create_platform_admin_without_a_terminal_needs_password_env(clean_env, db, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="--password-env"):
        call_command("create_platform_admin", email="ops@example.org")


def test_create_platform_admin_prompts_on_a_terminal(clean_env, db, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "prompted-password-2024")
    call_command("create_platform_admin", email="ops@example.org", stdout=StringIO())
    assert User.objects.get(email="ops@example.org").check_password("prompted-password-2024")
