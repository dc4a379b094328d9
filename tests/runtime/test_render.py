"""The tenant's OpenClaw config rendered from the database (apps/agents/openclaw/render.py):
valid under the pinned schema, secrets only as SecretRefs, deterministic, constant queries."""

from __future__ import annotations

import copy
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.agents.models import Agent, AgentChannel, RoleOverride
from apps.agents.openclaw import render
from apps.agents.openclaw.render import (
    OPENCLAW_DIR,
    account_id,
    canonical_json,
    config_hash,
    render_tenant_config,
    runtime_secrets_env,
    validate_config,
)
from apps.tenants.models import TenantRuntime
from tests.api.agent_factories import make_agent, make_channel, make_install, make_role, make_skill

pytestmark = pytest.mark.django_db

SLACK = {"bot_token": "xoxb-111-222-SlackBotSecretValue", "app_token": "xapp-1-A0-333-SlackAppSecretValue",
         "signing_secret": "0123456789abcdef0123456789abcdef"}
TELEGRAM = {"bot_token": "123456789:TelegramSecretTokenValueAAAA", "webhook_secret": "tg-hook-secret-value"}
PAUSED_TELEGRAM = {"bot_token": "987654321:PausedAgentSecretTokenBBBB"}
GATEWAY_TOKEN = "gateway-token-never-in-the-file-0123456789"


@pytest.fixture
def runtime(tenant_a) -> TenantRuntime:
    return TenantRuntime(tenant=tenant_a, backend="local", port=19123, gateway_token=GATEWAY_TOKEN)


@pytest.fixture
def fleet(tenant_a):
    """Two active agents (Slack + web, Telegram), a paused and a draft one; skills from the
    toolbox, a role (with a tenant override) and the agents themselves."""
    make_skill("weather")
    make_skill("summarize", "1.0.0")
    make_skill("summarize", "1.2.0")  # the role follows the newest approved version
    calendar = make_skill("calendar",
                          configuration={"type": "object", "properties": {"calendar_id": {"type": "string"}}})
    make_role("support", default_skills=["summarize"], default_settings={"tools_profile": "minimal",
                                                                         "identity": {"emoji": "🛟", "theme": "calm"}})
    make_role("ops", default_skills=[])
    weather = make_skill("weather")
    make_install(tenant_a, None, weather)  # Shared Toolbox: everyone gets weather
    helpdesk = make_agent(tenant_a, "Helpdesk", key="helpdesk", role="support", status="active",
                          model_tier="powerful", description="Answers customers in Slack.")
    ops = make_agent(tenant_a, "Ops", key="ops", role="ops", status="active", thinking_mode="low")
    paused = make_agent(tenant_a, "Sleeper", key="sleeper", role="ops", status="paused")
    draft = make_agent(tenant_a, "Drafty", key="drafty", role="ops", status="draft")
    make_install(tenant_a, helpdesk, calendar, config={"calendar_id": "support@acme"})
    make_install(tenant_a, ops, weather, enabled=False)  # ops switches off the toolbox's weather
    slack = make_channel(tenant_a, helpdesk, "Support Slack", channel_type="slack", secrets=SLACK,
                         config={"mode": "socket", "team_id": "T0123", "dm_policy": "allowlist",
                                 "allow_from": ["U2", "U1"]})
    make_channel(tenant_a, helpdesk, "Site chat", channel_type="web", secrets={})
    make_channel(tenant_a, helpdesk, "Old Slack", channel_type="slack", secrets=SLACK, status="disabled")
    telegram = make_channel(tenant_a, ops, "Ops bot", channel_type="telegram", secrets=TELEGRAM,
                            config={"dm_policy": "open"})
    paused_channel = make_channel(tenant_a, paused, "Sleepy bot", channel_type="telegram", secrets=PAUSED_TELEGRAM)
    make_channel(tenant_a, draft, "Draft bot", channel_type="telegram", secrets={"bot_token": "555:DraftSecret"})
    with tenant_context(tenant_a):
        RoleOverride.objects.create(role_id="support", default_settings={"thinking_mode": "high"})
    return {"helpdesk": helpdesk, "ops": ops, "paused": paused, "slack": slack, "telegram": telegram,
            "paused_channel": paused_channel}


def test_the_rendered_config_is_valid_under_the_pinned_schema(tenant_a, runtime, fleet):
    config = render_tenant_config(tenant_a, runtime)
    assert validate_config(config) == []
    assert config["meta"]["lastTouchedVersion"] == "2026.9.6"
    assert config["gateway"] == {"mode": "local", "port": 19123, "bind": "loopback", "auth": {
        "mode": "token", "token": {"source": "env", "provider": "default", "id": "OPENCLAW_GATEWAY_TOKEN"}},
        "http": {"endpoints": {"chatCompletions": {"enabled": True}}}}  # helpdesk has a web chat
    assert config["logging"]["file"].endswith(f"/{tenant_a.schema_name}/logs/openclaw.log")


def test_only_active_agents_run_with_their_resolved_settings(tenant_a, runtime, fleet, settings):
    config = render_tenant_config(tenant_a, runtime)
    agents = config["agents"]
    assert set(agents["entries"]) == {"helpdesk", "ops"}  # paused and draft agents do not run
    assert agents["ownership"] == "explicit"
    assert agents["defaults"]["systemAgent"] == {"agentId": "helpdesk"}  # the oldest active agent
    assert agents["defaults"]["skills"] == []
    assert agents["defaults"]["heartbeat"] == {"every": "0m"}
    helpdesk, ops = agents["entries"]["helpdesk"], agents["entries"]["ops"]
    assert helpdesk["model"]["primary"] == settings.PLATFORM_MODEL_DEFAULTS["tiers"]["powerful"]
    assert helpdesk["model"]["fallbacks"] == settings.PLATFORM_MODEL_DEFAULTS["fallbacks"]
    assert helpdesk["skills"] == ["calendar", "summarize", "weather"]  # agent, role, toolbox
    assert helpdesk["thinkingDefault"] == "high"  # the tenant's role override
    assert helpdesk["tools"] == {"profile": "minimal"}  # the role
    assert helpdesk["identity"] == {"name": "Helpdesk", "emoji": "🛟", "theme": "calm"}
    assert helpdesk["description"] == "Answers customers in Slack."
    assert "default" not in helpdesk
    assert ops["skills"] == []  # weather switched off by the agent itself
    assert ops["thinkingDefault"] == "low"
    assert config["skills"]["entries"] == {
        "calendar": {"enabled": True, "config": {"calendar_id": "support@acme"}},
        "summarize": {"enabled": True},
        "weather": {"enabled": True},
    }
    # The default fallback is an OpenAI model: pin its runtime so the gateway does not fetch codex.
    assert config["models"] == {"providers": {"openai": {"agentRuntime": {"id": "openclaw"}}}}


def test_channels_carry_secret_refs_and_are_bound_to_their_agent(tenant_a, runtime, fleet):
    config = render_tenant_config(tenant_a, runtime)
    slack_id, telegram_id = account_id(fleet["slack"]), account_id(fleet["telegram"])
    slack = config["channels"]["slack"]
    # Every field the schema marks required at the channel root, at OpenClaw's defaults.
    assert {k: slack[k] for k in ("mode", "dmPolicy", "groupPolicy", "postAs", "webhookPath", "userTokenReadOnly")} \
        == {"mode": "socket", "dmPolicy": "pairing", "groupPolicy": "allowlist", "postAs": "bot",
            "webhookPath": "/slack/events", "userTokenReadOnly": True}
    assert set(slack["accounts"]) == {slack_id}  # the disabled Slack channel is left out
    account = slack["accounts"][slack_id]
    hexid = fleet["slack"].pk.hex.upper()
    assert account == {
        "name": "Support Slack", "enabled": True, "mode": "socket", "dmPolicy": "allowlist", "allowFrom": ["U1", "U2"],
        "botToken": {"source": "env", "provider": "default", "id": f"AEGIS_CH_{hexid}_BOT_TOKEN"},
        "appToken": {"source": "env", "provider": "default", "id": f"AEGIS_CH_{hexid}_APP_TOKEN"},
        "signingSecret": {"source": "env", "provider": "default", "id": f"AEGIS_CH_{hexid}_SIGNING_SECRET"},
    }
    telegram = config["channels"]["telegram"]
    assert telegram["dmPolicy"] == "pairing" and telegram["groupPolicy"] == "allowlist"
    assert set(telegram["accounts"]) == {telegram_id}  # not the paused or the draft agent's bot
    assert telegram["accounts"][telegram_id]["allowFrom"] == ["*"]  # "open" DMs need the wildcard
    assert telegram["accounts"][telegram_id]["webhookSecret"]["id"].endswith("_WEBHOOK_SECRET")
    assert config["bindings"] == sorted([
        {"type": "route", "agentId": "helpdesk", "match": {"channel": "slack", "accountId": slack_id}},
        {"type": "route", "agentId": "ops", "match": {"channel": "telegram", "accountId": telegram_id}},
    ], key=lambda b: b["match"]["channel"])
    assert config["plugins"] == {"entries": {"slack": {"enabled": True}}}


def test_no_secret_reaches_the_config_only_the_environment(tenant_a, runtime, fleet):
    text = canonical_json(render_tenant_config(tenant_a, runtime))
    secrets = [*SLACK.values(), *TELEGRAM.values(), *PAUSED_TELEGRAM.values(), GATEWAY_TOKEN]
    assert not [secret for secret in secrets if secret in text]
    assert text.count('"source":"env"') == 6  # gateway token + 3 Slack + 2 Telegram

    env = runtime_secrets_env(tenant_a, runtime)
    slack, telegram = fleet["slack"].pk.hex.upper(), fleet["telegram"].pk.hex.upper()
    assert env == {
        "OPENCLAW_GATEWAY_TOKEN": GATEWAY_TOKEN,
        f"AEGIS_CH_{slack}_BOT_TOKEN": SLACK["bot_token"],
        f"AEGIS_CH_{slack}_APP_TOKEN": SLACK["app_token"],
        f"AEGIS_CH_{slack}_SIGNING_SECRET": SLACK["signing_secret"],
        f"AEGIS_CH_{telegram}_BOT_TOKEN": TELEGRAM["bot_token"],
        f"AEGIS_CH_{telegram}_WEBHOOK_SECRET": TELEGRAM["webhook_secret"],
    }  # the paused agent's bot token is not handed to the gateway


def test_the_hash_changes_only_when_the_content_does(tenant_a, runtime, fleet):
    first = render_tenant_config(tenant_a, runtime)
    again = render_tenant_config(tenant_a, runtime)
    assert config_hash(first) == config_hash(again)
    assert config_hash(first) == config_hash(json.loads(json.dumps(first)))  # key order does not matter
    with tenant_context(tenant_a):
        Agent.objects.filter(pk=fleet["ops"].pk).update(description="")  # a no-op save
        Agent.objects.filter(pk=fleet["ops"].pk).update(status="paused")
    paused = render_tenant_config(tenant_a, runtime)
    assert config_hash(paused) != config_hash(first)
    assert set(paused["agents"]["entries"]) == {"helpdesk"}
    assert "ownership" not in paused["agents"]  # a single agent owns everything by itself
    assert "telegram" not in paused["channels"]  # the paused agent's bot stops with it
    assert [b["agentId"] for b in paused["bindings"]] == ["helpdesk"]
    assert validate_config(paused) == []


def test_rendering_costs_the_same_queries_for_two_or_ten_agents(tenant_a, runtime, fleet):
    with CaptureQueriesContext(connection) as two:
        render_tenant_config(tenant_a, runtime)
    summarize = make_skill("summarize", "1.2.0")
    for n in range(8):
        agent = make_agent(tenant_a, f"Extra {n}", key=f"extra-{n}", role="support" if n % 2 else "ops",
                           status="active")
        make_channel(tenant_a, agent, f"Bot {n}", channel_type="telegram", secrets={"bot_token": f"{n}:SecretXYZ"})
        make_install(tenant_a, agent, summarize, config={})
    with CaptureQueriesContext(connection) as ten:
        config = render_tenant_config(tenant_a, runtime)
    assert len(config["agents"]["entries"]) == 10
    assert len(ten) == len(two), [q["sql"] for q in ten.captured_queries]
    assert validate_config(config) == []


def test_a_tenant_without_agents_renders_a_bare_valid_gateway(tenant_b):
    runtime = TenantRuntime(tenant=tenant_b, backend="local", port=19124, gateway_token="t")
    config = render_tenant_config(tenant_b, runtime)
    assert validate_config(config) == []
    assert config["agents"]["entries"] == {} and "systemAgent" not in config["agents"]["defaults"]
    assert not {"channels", "bindings", "plugins", "skills"} & set(config)


def test_the_docker_backend_binds_inside_its_container(tenant_a, fleet):
    runtime = TenantRuntime(tenant=tenant_a, backend="docker", port=19125, gateway_token="t")
    config = render_tenant_config(tenant_a, runtime)
    assert config["gateway"]["bind"] == "lan"  # published on the host's 127.0.0.1 only
    assert config["logging"]["file"] == "/home/node/.openclaw/logs/openclaw.log"
    assert validate_config(config) == []


# --- The validator: the schema plus the rules only `openclaw config validate` knows ---------------


def example() -> dict:
    return json.loads((OPENCLAW_DIR / "example.config.json").read_text())


def test_the_validated_example_is_valid():
    assert validate_config(example()) == []


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["agents"].pop("ownership"), 'needs ownership "explicit"'),
    (lambda c: c["agents"]["entries"]["ops"].update(default=True), "retired `default` marker"),
    (lambda c: c["agents"]["defaults"]["systemAgent"].update(agentId="ghost"), "unknown agent id 'ghost'"),
    (lambda c: c["bindings"][0].update(agentId="ghost"), "bindings/0: unknown agent id 'ghost'"),
    (lambda c: c["bindings"][1]["match"].update(accountId="nope"), "unknown telegram account 'nope'"),
    (lambda c: c["bindings"].pop(), "channels/telegram/accounts/acme-ops: bound to no agent"),
    (lambda c: c["channels"].update(foochat={}), "unknown channel id 'foochat'"),
    (lambda c: c["agents"]["entries"]["ops"].update(thinkingDefault="extreme"), "agents/entries/ops/thinkingDefault"),
    (lambda c: c["channels"]["telegram"].pop("groupPolicy"), "'groupPolicy' is a required property"),
    (lambda c: c.update(aegis={}), "Additional properties are not allowed"),
    (lambda c: c["skills"]["entries"]["summarize"]["env"].update(X={"source": "env", "provider": "default", "id": "X"}),
     "skills/entries/summarize/env/X"),
])
def test_each_broken_rule_is_reported(change, message):
    config = copy.deepcopy(example())
    change(config)
    errors = validate_config(config)
    assert any(message in error for error in errors), errors


def test_the_schema_is_parsed_once_per_process():
    render.openclaw_validator.cache_clear()
    validate_config(example())
    validate_config(example())
    assert render.openclaw_validator.cache_info().misses == 1


def test_channels_without_secrets_render_without_refs(tenant_a, runtime):
    agent = make_agent(tenant_a, "Quiet", key="quiet", status="active")
    channel = make_channel(tenant_a, agent, "No token yet", channel_type="telegram", secrets={})
    config = render_tenant_config(tenant_a, runtime)
    assert config["channels"]["telegram"]["accounts"][account_id(channel)] == {"name": "No token yet", "enabled": True}
    assert validate_config(config) == []
    with tenant_context(tenant_a):
        assert AgentChannel.objects.count() == 1
