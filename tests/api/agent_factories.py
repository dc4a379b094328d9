"""Objects the agent-area API tests need: roles and skills (public schema), agents, channels
and skill installs (created in a tenant's schema). Plain functions, no fixtures, so the
authorization matrix's path/body callables can use them too."""

from __future__ import annotations

from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.agents.models import Agent, AgentChannel, SkillInstallation
from apps.skills.models import AgentRole, Skill
from tests.api.matrix import named_path

SLACK_BOT_TOKEN = "xoxb-1234567890-9876543210-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP_TOKEN = "xapp-1-A0123456789-1234567890123-0123456789abcdef0123456789abcdef"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
# The settings schema of the "calendar" skill the install and toolbox tests configure.
CALENDAR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["provider"],
    "properties": {
        "provider": {"enum": ["google", "microsoft"]},
        "calendar": {"type": "string", "maxLength": 200},
        "minutes": {"type": "integer", "minimum": 5, "maximum": 240},
    },
}


def make_role(key: str = "sales", *, default_skills: list[str] | None = None,
              default_settings: dict | None = None) -> AgentRole:
    role, _ = AgentRole.objects.get_or_create(
        key=key, defaults={"name": key.replace("_", " ").title(), "default_skills": default_skills or [],
                           "default_settings": default_settings or {}})
    return role


def make_skill(slug: str = "calendar", version: str = "1.0.0", *, status: str = "approved",
               configuration: dict | None = None, name: str | None = None) -> Skill:
    skill, _ = Skill.objects.get_or_create(
        slug=slug, version=version,
        defaults={"name": name or slug.title(), "status": status, "category": "productivity",
                  "reviewed_at": None if status == "pending" else timezone.now(),
                  "configuration": configuration if configuration is not None else {"type": "object"}})
    return skill


def make_agent(tenant, name: str = "Ava", *, role: str = "sales", **fields) -> Agent:
    make_role(role)
    with tenant_context(tenant):
        key = fields.pop("key", None) or name.lower().replace(" ", "-")
        return Agent.objects.create(name=name, key=key, role_id=role, **fields)


def make_channel(tenant, agent: Agent, name: str = "Sales Slack", *, channel_type: str = "slack",
                 secrets: dict | None = None, **fields) -> AgentChannel:
    with tenant_context(tenant):
        default = {"bot_token": SLACK_BOT_TOKEN, "app_token": SLACK_APP_TOKEN} if channel_type == "slack" else {}
        return AgentChannel.objects.create(agent=agent, name=name, type=channel_type,
                                           secrets=default if secrets is None else secrets, **fields)


def make_install(tenant, agent: Agent | None, skill: Skill, **fields) -> SkillInstallation:
    with tenant_context(tenant):
        return SkillInstallation.objects.create(agent=agent, skill=skill, **fields)


def in_tenant(tenant, function, *args, **kwargs):
    with tenant_context(tenant):
        return function(*args, **kwargs)


# --- Authorization matrix helpers -----------------------------------------------------------------

READERS = frozenset({"tenant_admin", "tenant_member", "api_key:agents:read"})
WRITERS = frozenset({"tenant_admin", "api_key:agents:write"})
ACTIVITY_READERS = frozenset({"tenant_admin", "tenant_member", "api_key:activity:read"})
# Scopes that must not be enough, tried on every row in addition to matrix.CALLERS.
WRONG_SCOPES = ("api_key:agents:read", "api_key:activity:read", "api_key:skills:write")
NOT_FOUND_ELSEWHERE = {"other_tenant_admin": (404,)}  # tenant B's schema has no such row


def matrix_agent(ctx, status: str = "active"):
    """One agent per status in tenant A, created on first use by a row's path or body."""
    cache = ctx.__dict__.setdefault("_matrix_agents", {})
    if status not in cache:
        cache[status] = make_agent(ctx.tenant_a, f"Matrix {status}", status=status)
    return cache[status]


def matrix_channel(ctx):
    if not hasattr(ctx, "_matrix_channel"):
        ctx._matrix_channel = make_channel(ctx.tenant_a, matrix_agent(ctx), "Matrix Slack")
    return ctx._matrix_channel


def matrix_skill(ctx, slug: str = "matrix-skill"):
    return make_skill(slug, "1.0.0")


def matrix_install(ctx):
    if not hasattr(ctx, "_matrix_install"):
        ctx._matrix_install = make_install(ctx.tenant_a, matrix_agent(ctx), matrix_skill(ctx, "installed-skill"))
    return ctx._matrix_install


def agent_path(suffix: str = "", status: str = "active"):
    return named_path(f"agents/{{id}}{suffix} ({status})",
                      lambda ctx: f"/api/v1/agents/{matrix_agent(ctx, status).pk}{suffix}")


def suspended_tenant_test(rows):
    """Every row's endpoint answers 403 TENANT_SUSPENDED once tenant A is suspended, to people
    and API keys alike, before any other check."""
    import json

    import pytest

    from apps.tenants.services import suspend

    cases = [(row, caller) for row in rows for caller in ("tenant_admin", sorted(row.allowed)[-1])]

    @pytest.mark.django_db
    @pytest.mark.parametrize(("row", "caller"), cases, ids=[f"{row.id()} as {caller}" for row, caller in cases])
    def test_suspended_tenant(row, caller, callers):
        path = row.path(callers) if callable(row.path) else row.path
        body = row.body(callers) if callable(row.body) else row.body
        client = callers[caller]
        suspend(callers.tenant_a, reason="Unpaid invoices")
        response = client.generic(row.method, path, data=None if body is None else json.dumps(body),
                                  content_type="application/json")
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "TENANT_SUSPENDED"
        assert response.json()["error"]["details"] == {"reason": "Unpaid invoices"}

    return test_suspended_tenant
