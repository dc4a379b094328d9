"""Demo data for `make run` (`manage.py seed_demo`): idempotent, validated, printed as a summary.

Every object is looked up by its natural key (e-mail, role key, skill slug + version, company
name, agent key, channel name, installed skill) and created only when missing; existing rows
are never modified, so edits made in the console survive a restart and a second run writes
nothing at all. Everything is created in one transaction: a run that fails half-way leaves no
half-seeded tenant behind (PostgreSQL DDL is transactional, so that includes the schemas).

Writes go through the services wherever one exists (tenants, members, skill review, agents,
channels, installs), so the demo data passes the same validation and plan limits, and leaves
the same audit trail and activity feed, as data entered through the API or the console.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command
from django.db import models, transaction
from django_tenants.utils import tenant_context

from apps.accounts import services as accounts
from apps.accounts.models import EncryptedTOTPDevice, Role, User
from apps.agents import services as agents
from apps.agents.models import Agent, AgentChannel, SkillInstallation
from apps.agents.verifiers import LocalChannelVerifier
from apps.audit.services import record
from apps.skills import services as skill_reviews
from apps.skills.models import AgentRole, Skill
from apps.tenants import services as tenants
from apps.tenants.models import Tenant

DEFAULT_ADMIN_EMAIL = "admin@aegis.local"
# A documented, deliberately public default: demo tenant users only exist on dev machines.
DEFAULT_DEMO_PASSWORD = "aegis-demo-password"  # noqa: S105

ROLES = [
    {
        "key": "executive_assistant",
        "name": "Executive assistant",
        "description": "Runs a calendar and an inbox: scheduling, triage, briefings and follow-ups.",
        "default_skills": ["calendar", "email-triage", "web-search"],
        "default_settings": {"model_tier": "balanced", "thinking_mode": "medium", "tools_profile": "messaging",
                             "identity": {"theme": "discreet, organised executive assistant", "emoji": "📅"}},
    },
    {
        "key": "sales",
        "name": "Sales",
        "description": "Qualifies leads, prepares account briefs and keeps the CRM up to date.",
        "default_skills": ["crm-lookup", "email-triage", "web-search"],
        "default_settings": {"model_tier": "balanced", "thinking_mode": "low", "tools_profile": "messaging",
                             "identity": {"theme": "friendly, concise sales development rep", "emoji": "💼"}},
    },
    {
        "key": "support",
        "name": "Support",
        "description": "Answers customer questions from the knowledge base and escalates to humans.",
        "default_skills": ["knowledge-base", "jira"],
        "default_settings": {"model_tier": "fast", "thinking_mode": "low", "tools_profile": "messaging",
                             "identity": {"theme": "patient, precise support agent", "emoji": "🛟"}},
    },
    {
        "key": "engineering",
        "name": "Engineering",
        "description": "Reviews pull requests, triages issues and answers questions about the code base.",
        "default_skills": ["github", "jira", "web-search"],
        "default_settings": {"model_tier": "powerful", "thinking_mode": "high", "tools_profile": "coding",
                             "identity": {"theme": "careful senior engineer", "emoji": "🛠"}},
    },
    {
        "key": "operations",
        "name": "Operations",
        "description": "Watches dashboards and runbooks, files incidents and keeps stakeholders informed.",
        "default_skills": ["jira", "knowledge-base"],
        "default_settings": {"model_tier": "balanced", "thinking_mode": "medium", "tools_profile": "full",
                             "identity": {"theme": "calm incident commander", "emoji": "📟"}},
    },
    {
        "key": "custom",
        "name": "Custom",
        "description": "No defaults: every skill and setting is chosen per agent.",
        "default_skills": [],
        "default_settings": {},
    },
]


def _object_schema(properties: dict, required: list[str] | None = None) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": required or [],
    }


SKILLS = [
    {
        "slug": "calendar", "name": "Calendar", "version": "1.2.0", "category": "productivity",
        "status": "approved",
        "description": "Reads and books meetings in Google Calendar or Microsoft 365, respecting working hours.",
        "capabilities": {"permissions": ["calendar:read", "calendar:write"], "tools": ["list_events", "create_event"],
                         "network": True, "requires_secrets": ["CALENDAR_OAUTH_TOKEN"]},
        "configuration": _object_schema({
            "provider": {"enum": ["google", "microsoft"]},
            "calendar_id": {"type": "string", "maxLength": 200},
            "default_meeting_minutes": {"type": "integer", "minimum": 5, "maximum": 240, "default": 30},
            "working_hours_only": {"type": "boolean", "default": True},
        }, ["provider"]),
    },
    {
        "slug": "email-triage", "name": "Email triage", "version": "2.0.1", "category": "communication",
        "status": "approved",
        "description": "Sorts the inbox into urgent, follow-up and FYI, and drafts replies for review.",
        "capabilities": {"permissions": ["mail:read", "mail:draft"], "tools": ["list_messages", "draft_reply"],
                         "network": True, "requires_secrets": ["MAIL_OAUTH_TOKEN"]},
        "configuration": _object_schema({
            "labels": {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 20},
            "auto_archive_newsletters": {"type": "boolean", "default": False},
            "draft_only": {"type": "boolean", "default": True},
        }),
    },
    {
        "slug": "crm-lookup", "name": "CRM lookup", "version": "1.0.3", "category": "sales",
        "status": "approved",
        "description": "Looks up accounts, contacts and open deals in Salesforce or HubSpot.",
        "capabilities": {"permissions": ["crm:read"], "tools": ["find_account", "find_contact", "list_deals"],
                         "network": True, "requires_secrets": ["CRM_API_TOKEN"]},
        "configuration": _object_schema({
            "provider": {"enum": ["salesforce", "hubspot"]},
            "instance_url": {"type": "string", "format": "uri", "pattern": "^https://"},
        }, ["provider"]),
    },
    {
        "slug": "web-search", "name": "Web search", "version": "3.1.0", "category": "data",
        "status": "approved",
        "description": "Searches the public web and summarises the results with citations.",
        "capabilities": {"permissions": ["web:read"], "tools": ["search", "fetch_page"], "network": True},
        "configuration": _object_schema({
            "max_results": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
            "safe_search": {"enum": ["off", "moderate", "strict"], "default": "moderate"},
        }),
    },
    {
        "slug": "github", "name": "GitHub", "version": "1.4.0", "category": "engineering",
        "status": "approved",
        "description": "Reads repositories, reviews pull requests and comments on issues.",
        "capabilities": {"permissions": ["repo:read", "issues:write"],
                         "tools": ["get_pull_request", "comment", "search_code"],
                         "network": True, "requires_secrets": ["GITHUB_TOKEN"]},
        "configuration": _object_schema({
            "organization": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,39}$"},
            "repositories": {"type": "array", "items": {"type": "string", "maxLength": 100}, "uniqueItems": True},
            "review_style": {"enum": ["brief", "thorough"], "default": "brief"},
        }, ["organization"]),
    },
    {
        "slug": "jira", "name": "Jira", "version": "2.2.0", "category": "engineering",
        "status": "approved",
        "description": "Creates, searches and updates Jira issues.",
        "capabilities": {"permissions": ["issues:read", "issues:write"],
                         "tools": ["search_issues", "create_issue", "transition_issue"],
                         "network": True, "requires_secrets": ["JIRA_API_TOKEN"]},
        "configuration": _object_schema({
            "site_url": {"type": "string", "format": "uri", "pattern": "^https://"},
            "default_project": {"type": "string", "pattern": "^[A-Z][A-Z0-9]{1,9}$"},
        }, ["site_url"]),
    },
    {
        "slug": "knowledge-base", "name": "Knowledge base", "version": "1.0.0", "category": "support",
        "status": "approved",
        "description": "Answers from the company's help-center articles and internal wiki.",
        "capabilities": {"permissions": ["docs:read"], "tools": ["search_articles"], "network": False},
        "configuration": _object_schema({
            "collections": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50},
            "cite_sources": {"type": "boolean", "default": True},
        }),
    },
    # The review queue: submitted by a tenant admin, not installable until approved.
    {
        "slug": "invoice-reader", "name": "Invoice reader", "version": "0.3.0", "category": "operations",
        "status": "pending",
        "description": "Extracts supplier, amounts and due dates from PDF invoices.",
        "capabilities": {"permissions": ["files:read"], "tools": ["extract_invoice"], "network": False},
        "configuration": _object_schema({"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}),
        "author": "alice@acme-corp.example",
    },
    {
        "slug": "shell-runner", "name": "Shell runner", "version": "0.1.0", "category": "security",
        "status": "pending",
        "description": "Runs shell commands on a connected host. Needs a careful security review.",
        "capabilities": {"permissions": ["host:exec"], "tools": ["run_command"], "network": True,
                         "requires_secrets": ["SSH_PRIVATE_KEY"]},
        "configuration": _object_schema({
            "allowed_commands": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        }, ["allowed_commands"]),
        "author": "hank@globex-industries.example",
    },
]

TENANTS = [
    {
        "company_name": "Acme Corp", "plan": "growth", "industry": "Manufacturing", "expected_agent_count": 12,
        "admin": ("alice@acme-corp.example", "Alice Anders"),
        "member": ("bob@acme-corp.example", "Bob Baker"),
        "model_defaults": {"tiers": {"fast": "anthropic/claude-haiku-4-5", "balanced": "anthropic/claude-sonnet-4-5",
                                     "powerful": "anthropic/claude-opus-4-1"},
                           "thinking_default": "medium"},
        "toolbox": {"web-search": {"max_results": 8}, "knowledge-base": {"collections": ["handbook", "it-help"]}},
        "agents": [
            {
                "key": "ea-alice", "name": "Alice's assistant", "role": "executive_assistant", "status": "active",
                "model_tier": "balanced", "thinking_mode": "medium",
                "description": "Keeps Alice's calendar and inbox in order.",
                "assisted_user": {"name": "Alice Anders", "email": "alice@acme-corp.example", "title": "COO",
                                  "timezone": "Europe/Berlin",
                                  "working_hours": {"start": "08:30", "end": "17:30",
                                                    "days": ["mon", "tue", "wed", "thu", "fri"]},
                                  "preferences": {"meeting_buffer_minutes": 10, "language": "en"}},
                "channels": [
                    # Well-formed fake tokens: the offline check passes, so the channel shows connected.
                    {"type": "slack", "name": "Acme Slack", "verify": True,
                     "config": {"mode": "socket", "team_id": "T0ACME001", "dm_policy": "pairing"},
                     "secrets": {"bot_token": "xoxb-1000000001-2000000001-DemoAcmeNotARealToken",
                                 "app_token": "xapp-1-A0DEMOACME1-3000000001-demoacmenotarealtoken"}},
                    {"type": "telegram", "name": "Alice on Telegram",  # never verified: stays pending
                     "config": {"dm_policy": "allowlist", "allow_from": ["@alice_anders"]},
                     "secrets": {"bot_token": "100000001:DemoAcmeNotARealTelegramToken_00001"}},
                ],
                "skills": {"calendar": {"provider": "google", "default_meeting_minutes": 25},
                           "email-triage": {"labels": ["urgent", "follow-up", "fyi"]}},
            },
            {
                "key": "sales-desk", "name": "Sales desk", "role": "sales", "status": "active",
                "model_tier": "fast", "thinking_mode": "low",
                "description": "Qualifies inbound leads from the website chat.",
                "channels": [
                    {"type": "web", "name": "Website chat", "verify": True,
                     "config": {"allowed_origins": ["https://www.acme-corp.example"],
                                "greeting": "Hi! Looking for a quote?"}},
                ],
                "skills": {"crm-lookup": {"provider": "hubspot"},
                           # An agent can switch off a skill it would inherit from the toolbox.
                           "knowledge-base": {"enabled": False}},
            },
            {
                "key": "code-reviewer", "name": "Code reviewer", "role": "engineering", "status": "draft",
                "model_tier": "powerful", "thinking_mode": "high",
                "description": "Reviews pull requests on the platform repositories (being set up).",
                "channels": [],
                "skills": {"github": {"organization": "acme-corp", "repositories": ["platform", "firmware"],
                                      "review_style": "thorough"}},
            },
        ],
    },
    {
        "company_name": "Globex Industries", "plan": "starter", "industry": "Energy", "expected_agent_count": 3,
        "admin": ("hank@globex-industries.example", "Hank Scorpio"),
        "member": ("frank@globex-industries.example", "Frank Grimes"),
        "model_defaults": {},
        "toolbox": {"jira": {"site_url": "https://globex.atlassian.example", "default_project": "OPS"}},
        "agents": [
            {
                "key": "helpdesk", "name": "Helpdesk", "role": "support", "status": "active",
                "model_tier": "fast", "thinking_mode": "low",
                "description": "First-line IT support for Globex staff.",
                "channels": [
                    # A malformed signing secret: verification fails and the channel shows the error.
                    {"type": "slack", "name": "Globex Slack", "verify": True,
                     "config": {"mode": "http", "team_id": "T0GLOBEX1", "dm_policy": "open"},
                     "secrets": {"bot_token": "xoxb-1000000002-2000000002-DemoGlobexNotARealToken",
                                 "signing_secret": "demo-globex-signing-secret"}},
                ],
                "skills": {"knowledge-base": {"collections": ["it-faq"], "cite_sources": True}},
            },
            {
                "key": "ops-watch", "name": "Ops watch", "role": "operations", "status": "paused",
                "model_tier": "balanced", "thinking_mode": "medium",
                "description": "Summarises overnight alerts for the plant operations team.",
                "assisted_user": {"name": "Frank Grimes", "title": "Safety inspector", "timezone": "America/Chicago"},
                "channels": [
                    {"type": "telegram", "name": "Ops on Telegram", "enabled": False,
                     "config": {"webhook_url": "https://aegis.example/hooks/telegram/globex", "dm_policy": "pairing"},
                     "secrets": {"bot_token": "100000002:DemoGlobexNotARealTelegramToken_001",
                                 "webhook_secret": "demo-globex-webhook-secret"}},
                ],
                "skills": {},
            },
        ],
    },
]


@dataclass
class SeedReport:
    """What a run found and created; `created` counts new rows per kind."""

    admin: User | None = None
    admin_created: bool = False
    admin_password: str | None = None  # only when generated by this run; shown once
    admin_totp_url: str | None = None  # only when created by this run; shown once
    created: dict[str, int] = field(default_factory=dict)
    tenants: list[Tenant] = field(default_factory=list)

    def count(self, kind: str, created: bool) -> None:
        self.created[kind] = self.created.get(kind, 0) + int(created)

    @property
    def total_created(self) -> int:
        return sum(self.created.values())


def _ensure(model: type[models.Model], lookup: dict, **values) -> tuple[models.Model, bool]:
    """Return the row matching `lookup`, or create it (validated by full_clean) from lookup + values."""
    existing = model.objects.filter(**lookup).first()
    if existing is not None:
        return existing, False
    obj = model(**{key.split("__")[0]: value for key, value in lookup.items()}, **values)
    obj.full_clean()
    obj.save()
    return obj, True


def _ensure_admin(report: SeedReport) -> User:
    email = os.environ.get("AEGIS_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        if user.role != Role.PLATFORM_ADMIN:
            raise ValueError(f"{email} exists but is a {user.role}, not a platform admin")
        return user
    password = os.environ.get("AEGIS_ADMIN_PASSWORD")
    if password:
        validate_password(password)
    else:
        password = report.admin_password = secrets.token_urlsafe(18)
    user = accounts.create_platform_admin(email=email, password=password, name="Aegis Admin")
    # The console requires a TOTP step; without a device the demo admin could not get in. The
    # ops command enrols it (device, mfa_enabled, audit row); its URI is shown once, below.
    call_command("enroll_totp", email=user.email, name="demo authenticator", stdout=io.StringIO())
    report.admin_totp_url = EncryptedTOTPDevice.objects.get(user=user).config_url
    report.admin_created = True
    return user


def _ensure_tenant(spec: dict, report: SeedReport) -> Tenant:
    tenant = Tenant.objects.filter(company_name__iexact=spec["company_name"]).first()
    created = tenant is None
    if created:
        tenant = tenants.create_tenant(
            company_name=spec["company_name"], admin_email=spec["admin"][0], plan=spec["plan"],
            industry=spec["industry"], expected_agent_count=spec["expected_agent_count"],
            model_defaults=spec["model_defaults"],
        )
    report.count("tenants", created)
    if tenant.status == Tenant.Status.PROVISIONING:
        tenant = tenants.provision(tenant)  # also finishes a tenant whose provisioning was interrupted
    if tenant.status != Tenant.Status.ACTIVE:
        raise ValueError(f"demo tenant {tenant} is {tenant.status}; reactivate it or reset the demo data")
    return tenant


def _ensure_member(tenant: Tenant, email: str, name: str, role: str, password: str, report: SeedReport) -> User:
    user = User.objects.filter(email__iexact=email).first()
    created = user is None
    if created:
        user = accounts.add_member(tenant=tenant, email=email, password=password, name=name, role=role)
    elif user.tenant_id != tenant.pk:
        raise ValueError(f"{email} exists but does not belong to {tenant}")
    report.count("users", created)
    return user


def _ensure_skill(spec: dict, reviewer: User, report: SeedReport) -> Skill:
    """A marketplace entry, submitted and then (when the spec says so) approved through the review service."""
    values = {key: spec[key] for key in ("name", "category", "description", "capabilities", "configuration")}
    author_email = spec.get("author")
    author = User.objects.filter(email__iexact=author_email).first() if author_email else reviewer
    skill, created = _ensure(Skill, {"slug": spec["slug"], "version": spec["version"]},
                             status=Skill.Status.PENDING, author=author, **values)
    if created:
        record("skill.submitted", actor=author, target=skill,
               changes={"slug": skill.slug, "version": skill.version})
        if spec["status"] == Skill.Status.APPROVED:
            skill = skill_reviews.approve_skill(skill=skill, reviewer=reviewer, note="First-party skill (demo data).")
    report.count("skills", created)
    return skill


def _ensure_toolbox_install(tenant: Tenant, skill: Skill, config: dict, installer: User,
                            report: SeedReport) -> None:
    # The Shared Toolbox has no write service yet: validated model write plus its audit row.
    installation, created = _ensure(
        SkillInstallation, {"skill": skill, "agent": None}, enabled=True, config=config, installed_by=installer
    )
    if created:
        record("toolbox.skill_installed", tenant=tenant, actor=installer, target=installation,
               changes={"slug": skill.slug, "version": skill.version, "config": config})
    report.count("skill installations", created)


def _ensure_agent(tenant: Tenant, spec: dict, skills: dict[str, Skill], installer: User,
                  report: SeedReport) -> None:
    """One agent with its channels and skills, written through the agents services (validation,
    plan limits, audit rows and activity entries as if a tenant admin had used the API)."""
    agent = Agent.objects.filter(key=spec["key"]).first()
    agent_created = agent is None
    if agent_created:
        agent = agents.create_agent(
            tenant=tenant, key=spec["key"], name=spec["name"], role=spec["role"],
            status=Agent.Status.DRAFT if spec["status"] == Agent.Status.DRAFT else Agent.Status.ACTIVE,
            model_tier=spec.get("model_tier"), thinking_mode=spec.get("thinking_mode"),
            assisted_user=spec.get("assisted_user", {}), description=spec["description"], actor=installer,
        )
    report.count("agents", agent_created)

    for channel_spec in spec["channels"]:
        created = not AgentChannel.objects.filter(agent=agent, name=channel_spec["name"]).exists()
        if created:
            channel = agents.create_channel(
                tenant=tenant, agent_id=agent.pk, channel_type=channel_spec["type"], name=channel_spec["name"],
                config=channel_spec["config"], secrets=channel_spec.get("secrets", {}), actor=installer,
            )
            if channel_spec.get("verify"):
                # The offline verifier whatever the settings say: demo tokens must never reach Slack.
                agents.verify_channel(tenant=tenant, agent_id=agent.pk, channel_id=channel.pk,
                                      verifier=LocalChannelVerifier(), actor=installer)
            if channel_spec.get("enabled") is False:
                agents.update_channel(tenant=tenant, agent_id=agent.pk, channel_id=channel.pk,
                                      changes={"enabled": False}, actor=installer)
        report.count("channels", created)

    for slug, config in spec["skills"].items():
        config = dict(config)
        enabled = config.pop("enabled", True)
        created = not SkillInstallation.objects.filter(agent=agent, skill=skills[slug]).exists()
        if created:
            agents.install_skill(tenant=tenant, agent_id=agent.pk, skill_id=skills[slug].pk, enabled=enabled,
                                 config=config, actor=installer)
        report.count("skill installations", created)

    # Only a new agent is paused here: an existing one keeps whatever state it was put in since.
    if agent_created and spec["status"] == Agent.Status.PAUSED:
        agents.pause_agent(tenant=tenant, agent_id=agent.pk, actor=installer)


def _ensure_tenant_data(tenant: Tenant, spec: dict, skills: dict[str, Skill], installer: User,
                        report: SeedReport) -> None:
    with tenant_context(tenant):
        for slug, config in spec["toolbox"].items():
            _ensure_toolbox_install(tenant, skills[slug], config, installer, report)
        for agent_spec in spec["agents"]:
            _ensure_agent(tenant, agent_spec, skills, installer, report)


@transaction.atomic
def seed(*, demo_password: str | None = None) -> SeedReport:
    """Create whatever part of the demo data set is missing. Safe to run any number of times."""
    report = SeedReport()
    demo_password = demo_password or os.environ.get("AEGIS_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD

    admin = report.admin = _ensure_admin(report)

    for spec in ROLES:
        role, created = _ensure(AgentRole, {"key": spec["key"]},
                                **{k: v for k, v in spec.items() if k != "key"})
        if created:
            record("role.created", target=role, changes={"key": role.key, "default_skills": role.default_skills})
        report.count("roles", created)

    members: dict[str, User] = {}
    for spec in TENANTS:
        tenant = _ensure_tenant(spec, report)
        report.tenants.append(tenant)
        members[tenant.slug] = _ensure_member(tenant, *spec["admin"], Role.TENANT_ADMIN, demo_password, report)
        _ensure_member(tenant, *spec["member"], Role.TENANT_MEMBER, demo_password, report)

    skills = {spec["slug"]: _ensure_skill(spec, admin, report) for spec in SKILLS}

    for spec, tenant in zip(TENANTS, report.tenants, strict=True):
        _ensure_tenant_data(tenant, spec, skills, members[tenant.slug], report)
    return report


def summary_lines(report: SeedReport) -> list[str]:
    """The human-readable outcome: what exists and how to log in."""
    lines = []
    if report.total_created:
        made = ", ".join(f"{n} {kind}" for kind, n in report.created.items() if n)
        lines.append(f"Demo data: created {made}.")
    else:
        lines.append("Demo data: already complete, nothing changed.")
    admin = report.admin
    lines.append("")
    lines.append("Platform console  http://127.0.0.1:8000/admin/")
    lines.append(f"  platform admin  {admin.email}")
    if report.admin_password:
        lines.append(f"  password        {report.admin_password}   (generated now and shown only this once)")
    elif report.admin_created:
        lines.append("  password        the value of AEGIS_ADMIN_PASSWORD")
    else:
        lines.append("  password        unchanged: shown when this admin was created (or AEGIS_ADMIN_PASSWORD then)")
    if report.admin_totp_url:
        lines.append("  TOTP (required) add this to an authenticator app; shown only this once:")
        lines.append(f"                  {report.admin_totp_url}")
    env_password = bool(os.environ.get("AEGIS_DEMO_PASSWORD"))
    lines.append("")
    lines.append("Tenants (REST API logins; password "
                 + ("$AEGIS_DEMO_PASSWORD" if env_password else f"'{DEFAULT_DEMO_PASSWORD}'") + ")")
    for spec, tenant in zip(TENANTS, report.tenants, strict=True):
        with tenant_context(tenant):
            agents = Agent.objects.count()
            channels = AgentChannel.objects.count()
            installs = SkillInstallation.objects.count()
        lines.append(f"  {tenant.company_name} ({tenant.plan}, schema {tenant.schema_name}): {agents} agents, "
                     f"{channels} channels, {installs} skill installations")
        lines.append(f"    tenant_admin  {spec['admin'][0]}   tenant_member  {spec['member'][0]}")
    approved = Skill.objects.filter(status=Skill.Status.APPROVED).count()
    pending = Skill.objects.filter(status=Skill.Status.PENDING).count()
    lines.append("")
    lines.append(f"Marketplace: {approved} approved, {pending} pending review; "
                 f"{AgentRole.objects.count()} agent roles.")
    return lines


def run(write: Callable[[str], None]) -> SeedReport:
    report = seed()
    for line in summary_lines(report):
        write(line)
    return report
