"""The one resolver of an agent's effective configuration.

Layers, earliest first, later wins:  platform -> tenant -> toolbox -> role -> agent

- Scalars (model tier, thinking mode, tools profile) take the value of the last layer that
  sets one (None means "inherit").
- Mappings (identity) merge key by key, later keys winning.
- Skills are keyed by slug. A later layer's entry replaces the version, merges its config
  over the earlier config (later keys win) and sets `enabled`; so an agent can switch off a
  skill it inherits from the toolbox or its role. Disabled skills stay visible in the result.

Every resolved value records the layer it came from. `merge_layers` is pure (plain data in,
plain data out) so its rules are tested with hypothesis; `effective_config` loads the layers
of one agent from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LAYERS = ("platform", "tenant", "toolbox", "role", "agent")
SCALAR_KEYS = ("model_tier", "thinking_mode", "tools_profile")


@dataclass(frozen=True)
class SkillSetting:
    """One layer's say about one skill."""

    enabled: bool = True
    version: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    skill_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Layer:
    name: str
    model_tier: str | None = None
    thinking_mode: str | None = None
    tools_profile: str | None = None
    identity: Mapping[str, Any] = field(default_factory=dict)
    skills: Mapping[str, SkillSetting] = field(default_factory=dict)


@dataclass(frozen=True)
class Sourced:
    value: Any
    source: str | None  # the layer that set it; None: nobody did


@dataclass(frozen=True)
class ResolvedSkill:
    slug: str
    enabled: bool
    version: str | None
    config: dict[str, Any]
    source: str  # the last layer that touched the skill
    skill_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Resolution:
    scalars: dict[str, Sourced]
    identity: dict[str, Sourced]
    skills: dict[str, ResolvedSkill]

    @property
    def enabled_skills(self) -> list[ResolvedSkill]:
        return [skill for _, skill in sorted(self.skills.items()) if skill.enabled]

    @property
    def disabled_skills(self) -> list[ResolvedSkill]:
        return [skill for _, skill in sorted(self.skills.items()) if not skill.enabled]


def merge_layers(layers: Iterable[Layer]) -> Resolution:
    scalars = {key: Sourced(None, None) for key in SCALAR_KEYS}
    identity: dict[str, Sourced] = {}
    skills: dict[str, ResolvedSkill] = {}
    for layer in layers:
        for key in SCALAR_KEYS:
            value = getattr(layer, key)
            if value is not None:
                scalars[key] = Sourced(value, layer.name)
        for key, value in layer.identity.items():
            identity[key] = Sourced(value, layer.name)
        for slug, setting in layer.skills.items():
            earlier = skills.get(slug)
            skills[slug] = ResolvedSkill(
                slug=slug,
                enabled=setting.enabled,
                version=setting.version or (earlier.version if earlier else None),
                config={**(earlier.config if earlier else {}), **setting.config},
                source=layer.name,
                skill_id=setting.skill_id or (earlier.skill_id if earlier else None),
                name=setting.name or (earlier.name if earlier else None),
            )
    return Resolution(scalars=scalars, identity=identity, skills=skills)


# --- Loading the layers of one agent from the database ---------------------------------------


def _semver_key(version: str) -> tuple:
    core, _, prerelease = version.partition("+")[0].partition("-")
    major, minor, patch = (int(part) for part in core.split("."))
    # A release sorts after its pre-releases (1.0.0-rc.1 < 1.0.0).
    return (major, minor, patch, prerelease == "", prerelease)


def newest_approved(slugs: Iterable[str]) -> dict:
    """The newest approved version of each slug (roles name skills by slug, not version)."""
    from apps.skills.models import Skill

    newest: dict = {}
    for skill in Skill.objects.filter(slug__in=set(slugs), status=Skill.Status.APPROVED):
        current = newest.get(skill.slug)
        if current is None or _semver_key(skill.version) > _semver_key(current.version):
            newest[skill.slug] = skill
    return newest


def _installation_setting(installation) -> SkillSetting:
    skill = installation.skill
    return SkillSetting(enabled=installation.enabled, version=skill.version, config=installation.config,
                        skill_id=str(skill.pk), name=skill.name)


def _settings_layer(name: str, settings_: Mapping[str, Any], skills: Mapping[str, SkillSetting]) -> Layer:
    return Layer(name=name, model_tier=settings_.get("model_tier"), thinking_mode=settings_.get("thinking_mode"),
                 tools_profile=settings_.get("tools_profile"), identity=settings_.get("identity", {}), skills=skills)


def role_defaults(role, override) -> tuple[dict[str, Any], list[str]]:
    """Layer 2 for one tenant: (settings, skill slugs) of `role` after the tenant's override.
    Settings: the override's keys win. Skills: the override's list replaces the platform's,
    unless it is None (inherit)."""
    settings_ = {**role.default_settings, **(override.default_settings if override else {})}
    slugs = override.default_skills if override and override.default_skills is not None else role.default_skills
    return settings_, list(slugs)


def load_layers(agent, tenant, *, toolbox=None, roles=None, overrides=None, approved=None) -> list[Layer]:
    """The five layers of `agent`, read in the current (tenant) schema.

    `toolbox`, `roles`, `overrides` and `approved` (`newest_approved` of every slug the roles
    name) may be passed pre-loaded when resolving many agents (rendering a tenant's whole
    runtime configuration) so the queries are not repeated.
    """
    from django.conf import settings

    from apps.agents.models import RoleOverride, SkillInstallation
    from apps.skills.models import AgentRole

    if toolbox is None:
        toolbox = list(SkillInstallation.objects.filter(agent__isnull=True).select_related("skill"))
    role = roles[agent.role_id] if roles is not None else AgentRole.objects.get(key=agent.role_id)
    if overrides is not None:
        override = overrides.get(agent.role_id)
    else:
        override = RoleOverride.objects.filter(role_id=agent.role_id).first()

    role_settings, role_slugs = role_defaults(role, override)
    role_skills = {
        slug: SkillSetting(version=skill.version, skill_id=str(skill.pk), name=skill.name)
        for slug, skill in (newest_approved(role_slugs) if approved is None
                            else {s: approved[s] for s in role_slugs if s in approved}).items()
    }
    agent_installs = agent.skill_installations.all()  # prefetched by callers that resolve many agents
    return [
        _settings_layer("platform", settings.PLATFORM_AGENT_DEFAULTS, {}),
        Layer(name="tenant", thinking_mode=tenant.model_defaults.get("thinking_default")),
        Layer(name="toolbox", skills={i.skill.slug: _installation_setting(i) for i in toolbox}),
        _settings_layer("role", role_settings, role_skills),
        Layer(name="agent", model_tier=agent.model_tier, thinking_mode=agent.thinking_mode,
              skills={i.skill.slug: _installation_setting(i) for i in agent_installs}),
    ]


def resolve_model(tier: str, tenant) -> Sourced:
    """A model tier -> {primary, fallbacks}: the tenant's modelDefaults, then the platform's."""
    from django.conf import settings

    tenant_defaults = tenant.model_defaults or {}
    platform_defaults = settings.PLATFORM_MODEL_DEFAULTS
    tenant_tier = tenant_defaults.get("tiers", {}).get(tier)
    primary = tenant_tier or platform_defaults["tiers"][tier]
    fallbacks = tenant_defaults.get("fallbacks") or platform_defaults.get("fallbacks", [])
    return Sourced({"primary": primary, "fallbacks": [m for m in fallbacks if m != primary]},
                   "tenant" if tenant_tier else "platform")


def effective_config(agent, tenant, **preloaded) -> dict[str, Any]:
    """What `GET agents/{id}/config` shows and the runtime receives for this agent."""
    resolution = merge_layers(load_layers(agent, tenant, **preloaded))
    tier = resolution.scalars["model_tier"]
    model = resolve_model(tier.value, tenant)
    return {
        "agent_id": agent.key,
        "name": agent.name,
        "role": agent.role_id,
        "model": {"tier": tier.value, "tier_source": tier.source, **model.value, "source": model.source},
        "thinking_mode": {"value": resolution.scalars["thinking_mode"].value,
                          "source": resolution.scalars["thinking_mode"].source},
        "tools_profile": {"value": resolution.scalars["tools_profile"].value,
                          "source": resolution.scalars["tools_profile"].source},
        "identity": {key: {"value": s.value, "source": s.source} for key, s in sorted(resolution.identity.items())},
        "assisted_user": agent.assisted_user,
        "skills": [_skill_view(s) for s in resolution.enabled_skills],
        "disabled_skills": [_skill_view(s) for s in resolution.disabled_skills],
    }


def _skill_view(skill: ResolvedSkill) -> dict[str, Any]:
    return {"slug": skill.slug, "name": skill.name, "version": skill.version, "config": skill.config,
            "source": skill.source, "skill_id": skill.skill_id}
