"""A tenant's whole OpenClaw configuration, rendered from the database.

`render_tenant_config(tenant, runtime)` builds the `openclaw.json` of the tenant's gateway
(OpenClaw 2026.9.6, see README.md beside this file) from its agents, channels, skills, the
Shared Toolbox and role overrides, each agent resolved by apps.agents.resolver. The rules:

- Only `active` agents are rendered. Draft, paused and errored agents are left out, so the
  gateway does not run them at all (pausing an agent removes it on the next hot reload), and
  so are their channels: an account bound to no agent would have no owner.
- No secret is ever in the config: the gateway token and channel secrets are SecretRefs
  `{"source": "env", "provider": "default", "id": "AEGIS_..."}`; `runtime_secrets_env` gives
  the values, which the backend passes to the gateway's environment only.
- Output is deterministic (sorted keys, sorted lists where order carries no meaning), so
  `config_hash` changes only when the content does.

`validate_config` checks a rendered config against the pinned JSON Schema plus the rules that
only `openclaw config validate` enforces (README section 2), in about 2 ms.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from django_tenants.utils import tenant_context

logger = logging.getLogger(__name__)

OPENCLAW_DIR = Path(__file__).resolve().parent
SCHEMA_PATH = OPENCLAW_DIR / "config.schema.json"
VERSIONS_PATH = OPENCLAW_DIR / "versions.env"

GATEWAY_TOKEN_ENV = "OPENCLAW_GATEWAY_TOKEN"  # noqa: S105 (the variable's name, not a token)
# Aegis channel types rendered under `channels`; `web` is the gateway's own HTTP endpoint.
RENDERED_CHANNELS = ("slack", "telegram")
# Aegis secret name (AgentChannel.secrets, snake_case) -> OpenClaw account field.
CHANNEL_SECRET_FIELDS = {
    "slack": {"bot_token": "botToken", "app_token": "appToken", "signing_secret": "signingSecret"},
    "telegram": {"bot_token": "botToken", "webhook_secret": "webhookSecret"},
}
# Aegis channel config (snake_case) -> OpenClaw account field. team_id is Aegis-only (verification).
CHANNEL_CONFIG_FIELDS = {
    "slack": {"mode": "mode", "dm_policy": "dmPolicy", "group_policy": "groupPolicy", "allow_from": "allowFrom"},
    "telegram": {"webhook_url": "webhookUrl", "dm_policy": "dmPolicy", "allow_from": "allowFrom"},
}
# The channel roots' schema-`required` fields, at their OpenClaw defaults (README: the JSON
# Schema requires what zod would default, so they are rendered explicitly).
CHANNEL_ROOTS = {
    "slack": {"enabled": True, "mode": "socket", "dmPolicy": "pairing", "groupPolicy": "allowlist",
              "postAs": "bot", "webhookPath": "/slack/events", "userTokenReadOnly": True},
    "telegram": {"enabled": True, "dmPolicy": "pairing", "groupPolicy": "allowlist"},
}


class ConfigInvalid(Exception):
    """A rendered config failed validation; `errors` lists the messages."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors[:10]) + (f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""))


# --- Pinned facts -------------------------------------------------------------------------------


@functools.cache
def pinned_versions() -> dict[str, str]:
    """versions.env (plain KEY=VALUE lines): the only place the OpenClaw version is set."""
    pins = {}
    for line in VERSIONS_PATH.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip()
    return pins


@functools.cache
def openclaw_validator():
    """Draft7Validator on the pinned schema, parsed once per process (parsing costs ~50 ms; the
    validator itself is lazy). Built directly: jsonschema.validate()/check_schema() raise
    SchemaError on three JS-only regexes under channels.feishu that Aegis never renders."""
    from jsonschema import Draft7Validator

    with SCHEMA_PATH.open() as f:
        return Draft7Validator(json.load(f))


def secret_ref(env_name: str) -> dict[str, str]:
    return {"source": "env", "provider": "default", "id": env_name}


def account_id(channel) -> str:
    """The OpenClaw account id of an AgentChannel: stable for the channel's life, unique per tenant."""
    return f"ch-{channel.pk.hex}"


def channel_secret_env(channel, secret_name: str) -> str:
    """Env var holding one channel secret, e.g. AEGIS_CH_<32 hex>_BOT_TOKEN (SecretRef id pattern
    ^[A-Z][A-Z0-9_]{0,127}$)."""
    return f"AEGIS_CH_{channel.pk.hex.upper()}_{secret_name.upper()}"


def canonical_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_hash(config: dict) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def to_file_text(config: dict) -> str:
    """What is written to openclaw.json: the same content, readable (and still sorted)."""
    return json.dumps(config, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# --- Loading -------------------------------------------------------------------------------------


def _load(tenant) -> dict[str, Any]:
    """Everything the render needs from the tenant's schema, in a constant number of queries."""
    from apps.agents.models import Agent, AgentChannel, RoleOverride, SkillInstallation
    from apps.agents.resolver import newest_approved
    from apps.skills.models import AgentRole

    agents = list(
        Agent.objects.filter(status=Agent.Status.ACTIVE)
        .defer("search_vector")
        .order_by("created_at", "key")
        .prefetch_related(
            Prefetch("skill_installations", queryset=SkillInstallation.objects.select_related("skill")),
            Prefetch("channels", queryset=AgentChannel.objects.exclude(status=AgentChannel.Status.DISABLED)
                     .order_by("created_at", "id")),
        )
    )
    toolbox = list(SkillInstallation.objects.filter(agent__isnull=True).select_related("skill"))
    role_keys = {agent.role_id for agent in agents}
    roles = {role.key: role for role in AgentRole.objects.filter(key__in=role_keys)} if role_keys else {}
    overrides = {o.role_id: o for o in RoleOverride.objects.filter(role_id__in=role_keys)} if role_keys else {}
    slugs = set()
    for key in role_keys:
        override = overrides.get(key)
        if override is not None and override.default_skills is not None:
            slugs.update(override.default_skills)
        elif key in roles:
            slugs.update(roles[key].default_skills)
    approved = newest_approved(slugs) if slugs else {}
    return {"agents": agents, "toolbox": toolbox, "roles": roles, "overrides": overrides, "approved": approved}


# --- Rendering -----------------------------------------------------------------------------------


def render_tenant_config(tenant, runtime, *, gateway_bind: str | None = None, log_file: str | None = None) -> dict:
    """The tenant's `openclaw.json` as a dict. Reads the tenant's schema (switching to it).

    `gateway_bind` and `log_file` default to what the runtime's backend needs: `loopback` and
    a file in the tenant's runtime folder for the local backend; `lan` (inside the container,
    published on the host's loopback only) and a path in the state volume for Docker.
    """
    from apps.agents.resolver import effective_config, resolve_model

    if gateway_bind is None or log_file is None:
        from apps.tenants.runtime import get_backend

        backend = get_backend(runtime.backend)
        gateway_bind = gateway_bind or backend.gateway_bind
        log_file = log_file or backend.gateway_log_file(runtime)

    with tenant_context(tenant):
        data = _load(tenant)
        resolved = [
            (agent, effective_config(agent, tenant, toolbox=data["toolbox"], roles=data["roles"],
                                     overrides=data["overrides"], approved=data["approved"]))
            for agent in data["agents"]
        ]

    platform = settings.PLATFORM_AGENT_DEFAULTS
    tenant_defaults = tenant.model_defaults or {}
    default_model = resolve_model(platform["model_tier"], tenant).value
    defaults: dict[str, Any] = {
        "model": {"primary": default_model["primary"], "fallbacks": list(default_model["fallbacks"])},
        "thinkingDefault": tenant_defaults.get("thinking_default") or platform["thinking_mode"],
        "skills": [],  # fail closed: an agent sees only the skills Aegis lists for it
        # Heartbeats are full LLM turns billed to the tenant; Aegis does not schedule any.
        "heartbeat": {"every": "0m"},
    }

    entries: dict[str, Any] = {}
    skill_entries: dict[str, dict] = {}
    skill_owner: dict[str, str] = {}
    models_used = {default_model["primary"], *default_model["fallbacks"]}
    accounts: dict[str, dict[str, dict]] = {kind: {} for kind in RENDERED_CHANNELS}
    bindings: list[dict] = []
    web_chat = False

    for agent, effective in resolved:
        entry = _agent_entry(agent, effective)
        entries[agent.key] = entry
        models_used.update([entry["model"]["primary"], *entry["model"]["fallbacks"]])
        for skill in effective["skills"]:
            slug = skill["slug"]
            if slug not in skill_entries:
                skill_entries[slug] = {"enabled": True, **({"config": skill["config"]} if skill["config"] else {})}
                skill_owner[slug] = agent.key
            elif skill_entries[slug].get("config", {}) != skill["config"]:
                # OpenClaw has one config per skill per gateway; the first agent (oldest) wins.
                logger.warning("tenant %s: skill %s is configured differently by agents %s and %s; rendering %s's",
                               tenant.pk, slug, skill_owner[slug], agent.key, skill_owner[slug])
        for channel in agent.channels.all():
            if channel.type == "web":
                web_chat = True
                continue
            if channel.type not in RENDERED_CHANNELS:
                continue
            accounts[channel.type][account_id(channel)] = _account(channel)
            bindings.append({"type": "route", "agentId": agent.key,
                             "match": {"channel": channel.type, "accountId": account_id(channel)}})

    agents_section: dict[str, Any] = {"defaults": defaults, "entries": entries}
    if entries:
        # The oldest active agent answers when nothing else routes (README: systemAgent is
        # the default agent; the legacy `default: true` marker must not be rendered).
        defaults["systemAgent"] = {"agentId": resolved[0][0].key}
    if len(entries) > 1:
        agents_section["ownership"] = "explicit"

    config: dict[str, Any] = {
        "meta": {
            # Without `meta`, a gateway that once wrote the file restores its last-good copy
            # over ours (README: missing-meta-vs-last-good).
            "lastTouchedVersion": pinned_versions()["OPENCLAW_VERSION"],
            "migrations": {"modelPolicyAllowlist": True, "utilityModelSeparation": True},
        },
        "gateway": {
            "mode": "local",
            "port": runtime.port,
            "bind": gateway_bind,
            "auth": {"mode": "token", "token": secret_ref(GATEWAY_TOKEN_ENV)},
        },
        "agents": agents_section,
        # The file log is the record (the shared /tmp/openclaw default would mix tenants); the
        # console (the backend's stdout capture, never rotated) keeps only warnings.
        "logging": {"file": log_file, "consoleLevel": "warn"},
    }
    if web_chat:
        # Aegis's web chat relays through the gateway's OpenAI-compatible endpoint (token auth).
        config["gateway"]["http"] = {"endpoints": {"chatCompletions": {"enabled": True}}}
    channels = {kind: {**CHANNEL_ROOTS[kind], "accounts": accounts[kind]} for kind in RENDERED_CHANNELS
                if accounts[kind]}
    if channels:
        config["channels"] = channels
        config["bindings"] = sorted(bindings, key=lambda b: (b["match"]["channel"], b["match"]["accountId"]))
    if skill_entries:
        config["skills"] = {"entries": skill_entries}
    if "slack" in channels:
        # Slack is an external plugin: without explicit trust it never starts.
        config["plugins"] = {"entries": {"slack": {"enabled": True}}}
    if any(model.startswith("openai/") for model in models_used):
        # Otherwise the gateway tries to install the codex plugin on every start.
        config["models"] = {"providers": {"openai": {"agentRuntime": {"id": "openclaw"}}}}
    return config


def _agent_entry(agent, effective: dict) -> dict:
    identity = {key: item["value"] for key, item in effective["identity"].items()
                if key in ("name", "theme", "emoji", "avatar") and item["value"]}
    identity.setdefault("name", agent.name)
    entry = {
        "name": agent.name,
        "model": {"primary": effective["model"]["primary"], "fallbacks": list(effective["model"]["fallbacks"])},
        "skills": sorted(skill["slug"] for skill in effective["skills"]),
        "identity": identity,
    }
    if agent.description:
        entry["description"] = agent.description
    if effective["thinking_mode"]["value"]:
        entry["thinkingDefault"] = effective["thinking_mode"]["value"]
    if effective["tools_profile"]["value"]:
        entry["tools"] = {"profile": effective["tools_profile"]["value"]}
    return entry


def _account(channel) -> dict:
    account: dict[str, Any] = {"name": channel.name, "enabled": True}
    for source, target in CHANNEL_CONFIG_FIELDS[channel.type].items():
        if source in (channel.config or {}):
            value = channel.config[source]
            account[target] = sorted(set(value)) if target == "allowFrom" else value
    if account.get("dmPolicy") == "open" and "*" not in account.get("allowFrom", []):
        # OpenClaw's "open" DMs require the "*" wildcard in allowFrom; Aegis's "open" means anyone.
        account["allowFrom"] = sorted({*account.get("allowFrom", []), "*"})
    for name, field in CHANNEL_SECRET_FIELDS[channel.type].items():
        if (channel.secrets or {}).get(name):
            account[field] = secret_ref(channel_secret_env(channel, name))
    return account


def runtime_secrets_env(tenant, runtime) -> dict[str, str]:
    """The environment the gateway needs for the SecretRefs of its rendered config: the gateway
    token and the secrets of every rendered channel, decrypted. For the process or container
    environment only; never logged, never written to the config file."""
    from apps.agents.models import Agent, AgentChannel

    env = {GATEWAY_TOKEN_ENV: runtime.gateway_token}
    with tenant_context(tenant):
        channels = (AgentChannel.objects.filter(agent__status=Agent.Status.ACTIVE, type__in=RENDERED_CHANNELS)
                    .exclude(status=AgentChannel.Status.DISABLED).only("id", "type", "secrets"))
        for channel in channels:
            for name in CHANNEL_SECRET_FIELDS[channel.type]:
                value = (channel.secrets or {}).get(name)
                if value:
                    env[channel_secret_env(channel, name)] = value
    return env


# --- Validation ----------------------------------------------------------------------------------


def validate_config(config: dict) -> list[str]:
    """Every problem with `config`, as messages (empty: valid). The pinned JSON Schema first,
    then the rules only `openclaw config validate` knows (README section 2)."""
    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(openclaw_validator().iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    ]
    return errors + _semantic_errors(config)


def _semantic_errors(config: dict) -> list[str]:
    errors = []
    agents = config.get("agents") or {}
    entries = agents.get("entries") or {}
    if len(entries) > 1 and agents.get("ownership") != "explicit":
        errors.append('agents: a roster of two or more agents needs ownership "explicit"')
    for agent_id, entry in entries.items():
        if isinstance(entry, dict) and "default" in entry:
            errors.append(f"agents/entries/{agent_id}: the retired `default` marker must not be rendered")
    system_agent = ((agents.get("defaults") or {}).get("systemAgent") or {}).get("agentId")
    if system_agent is not None and system_agent not in entries:
        errors.append(f"agents/defaults/systemAgent: unknown agent id {system_agent!r}")
    channels = config.get("channels") or {}
    for kind in channels:
        if kind not in RENDERED_CHANNELS and kind not in ("defaults", "modelByChannel"):
            errors.append(f"channels: unknown channel id {kind!r}")
    bound = set()
    for index, binding in enumerate(config.get("bindings") or []):
        match = binding.get("match") or {}
        if binding.get("agentId") not in entries:
            errors.append(f"bindings/{index}: unknown agent id {binding.get('agentId')!r}")
        accounts = ((channels.get(match.get("channel")) or {}).get("accounts")) or {}
        if match.get("accountId") not in accounts:
            errors.append(f"bindings/{index}: unknown {match.get('channel')} account {match.get('accountId')!r}")
        bound.add((match.get("channel"), match.get("accountId")))
    for kind, channel in channels.items():
        for account in (channel or {}).get("accounts") or {}:
            if (kind, account) not in bound:
                # Explicit ownership fails closed: an unbound account's traffic has no agent.
                errors.append(f"channels/{kind}/accounts/{account}: bound to no agent")
    return errors
