"""Writes of the agents area: agents, their channels and their skill installations.

Every function validates, writes, appends its AuditLog row in the same transaction, and, when
the tenant runtime's configuration is affected, queues `runtime_config_changed` for after the
commit. They run in the tenant's schema (switched by authentication) and raise the domain's
errors (aegis.domain) or Django's ValidationError; they know nothing of HTTP beyond Http404
for an object that vanished between the view's lookup and the write.

Concurrency. `Agent.revision` is the agent's ETag. An agent edit reads the row, validates,
then writes with a compare-and-set (`UPDATE ... WHERE id = %s AND revision = %s`, revision + 1):
- with an expected revision (the caller's `If-Match`), a mismatch at read or at write is a
  StaleWrite (412) — the caller decides what to do with the newer state;
- without one, a lost compare-and-set re-reads and re-applies the change (it names only the
  fields it changes), up to CAS_ATTEMPTS times.
Channel and skill-install writes lock the agent row (FOR NO KEY UPDATE: inserts referencing it
still proceed) to serialise the per-agent limits and read-modify-writes such as merging
secrets, and bump the agent's revision: the agent's representation includes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypedDict
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.http import Http404
from django.utils import timezone
from django.utils.text import slugify

from aegis import events
from aegis.domain import Conflict, InvalidState, LimitReached, StaleWrite
from apps.agents.models import Agent, AgentActivity, AgentChannel, SkillInstallation
from apps.agents.signals import send_runtime_config_changed
from apps.agents.verifiers import ChannelVerifier, get_verifier
from apps.audit.services import diff, record
from apps.skills.models import Skill
from apps.tenants.models import Tenant

CAS_ATTEMPTS = 3
KEY_MAX_LENGTH = 64
KEY_BASE_LENGTH = 56  # leaves room for a "-<n>" suffix when the base is taken

AGENT_FIELDS = ("name", "role", "model_tier", "thinking_mode", "assisted_user", "description")

# verb -> (statuses it starts from, status it ends in, audit action)
TRANSITIONS = {
    "pause": (frozenset({Agent.Status.ACTIVE}), Agent.Status.PAUSED, "agent.paused"),
    # Resume also activates a draft: the contract has no separate "activate".
    "resume": (frozenset({Agent.Status.DRAFT, Agent.Status.PAUSED}), Agent.Status.ACTIVE, "agent.resumed"),
}
CREATE_STATUSES = (Agent.Status.DRAFT, Agent.Status.ACTIVE)


class AgentChanges(TypedDict, total=False):
    name: str
    role: str
    model_tier: str | None
    thinking_mode: str | None
    assisted_user: dict
    description: str


class ChannelChanges(TypedDict, total=False):
    name: str
    config: dict
    secrets: dict[str, str | None]  # a None value removes that secret
    enabled: bool


class InstallationChanges(TypedDict, total=False):
    enabled: bool
    config: dict


# --- Helpers --------------------------------------------------------------------------------------


def _user(actor):
    """The actor as a User (for `installed_by`), or None for an API key or the system."""
    from apps.accounts.models import User

    return actor if isinstance(actor, User) else None


def _snapshot(agent: Agent) -> dict[str, Any]:
    return {"key": agent.key, "name": agent.name, "role": agent.role_id, "status": agent.status,
            "model_tier": agent.model_tier, "thinking_mode": agent.thinking_mode,
            "assisted_user": agent.assisted_user, "description": agent.description}


def _load_agent(agent_id: UUID, *, lock: bool = False) -> Agent:
    queryset = Agent.objects.defer("search_vector")
    if lock:
        queryset = queryset.select_for_update(no_key=True)
    try:
        return queryset.get(pk=agent_id)
    except Agent.DoesNotExist:
        raise Http404("No such agent.") from None


def _ensure_name_free(name: str, *, exclude: UUID | None = None) -> None:
    # lower(name) matches the case-insensitive unique index, which serves this lookup.
    clash = Agent.objects.alias(lower_name=Lower("name")).filter(lower_name=name.lower())
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise Conflict(f"An agent named {name!r} already exists.", field="name")


def derive_key(name: str) -> str:
    """The OpenClaw id for a new agent: its name slugified, with -2, -3, ... when taken."""
    base = slugify(name)[:KEY_BASE_LENGTH].strip("-_") or "agent"
    taken = set(Agent.objects.filter(key__startswith=base).values_list("key", flat=True))
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def _clean_agent(agent: Agent) -> None:
    # search_vector is computed by PostgreSQL; it is neither validated nor loaded here.
    agent.full_clean(exclude={"search_vector"})


def _activity(agent: Agent, kind: str, summary: str, payload: dict | None = None) -> None:
    AgentActivity.objects.create(agent=agent, kind=kind, summary=summary[:500], payload=payload or {})


def _changed_runtime(sender: type, tenant: Tenant, agent_id: UUID, reason: str) -> None:
    send_runtime_config_changed(sender=sender, tenant=tenant, agent_id=agent_id, reason=reason)


def _bump_revision(agent: Agent) -> None:
    now = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(revision=F("revision") + 1, updated_at=now)
    agent.revision += 1
    agent.updated_at = now


def _agent_reconfigured(agent: Agent, action: str, *, target: AgentChannel | SkillInstallation, changes: dict,
                        tenant: Tenant, actor, request, summary: str | None = None,
                        payload: dict | None = None) -> None:
    """One of the agent's channels or skill installs changed. The agent's representation includes
    them, so its revision moves; then the audit row, the activity entry (when there is a summary)
    and the runtime reload after commit. Call it before deleting `target`: the audit row needs its id."""
    _bump_revision(agent)
    record(action, actor=actor, tenant=tenant, target=target, request=request, changes=changes)
    if summary is not None:
        _activity(agent, AgentActivity.Kind.CONFIG_CHANGED, summary, payload)
    _changed_runtime(type(target), tenant, agent.pk, action)


# --- Agents ---------------------------------------------------------------------------------------


@transaction.atomic
def create_agent(*, tenant: Tenant, name: str, role: str, key: str | None = None,
                 status: str = Agent.Status.DRAFT, model_tier: str | None = None, thinking_mode: str | None = None,
                 assisted_user: dict | None = None, description: str = "", actor=None, request=None) -> Agent:
    """Create an agent in the tenant's schema, within the tenant's `max_agents` limit."""
    if status not in CREATE_STATUSES:
        raise ValidationError({"status": f"a new agent starts as {' or '.join(CREATE_STATUSES)}"})
    # The tenant row lock serialises agent creation per tenant: the limit check and the key
    # derivation cannot race. NO KEY: rows referencing the tenant (audit entries) still insert.
    limits = (Tenant.objects.select_for_update(no_key=True).filter(pk=tenant.pk)
              .values_list("resource_limits", flat=True).get())
    limit = (limits or {}).get("max_agents")
    if limit is not None:
        current = Agent.objects.count()
        if current >= limit:
            raise LimitReached(f"This tenant's plan allows {limit} agents and it has {current}.",
                               resource="agents", limit=limit, current=current)
    name = name.strip()
    _ensure_name_free(name)
    if key:
        if Agent.objects.filter(key=key).exists():
            raise Conflict(f"An agent with key {key!r} already exists.", field="key")
    else:
        key = derive_key(name)
    agent = Agent(key=key, name=name, role_id=role, status=status, model_tier=model_tier,
                  thinking_mode=thinking_mode, assisted_user=assisted_user or {}, description=description)
    _clean_agent(agent)
    agent.save(force_insert=True)
    record("agent.created", actor=actor, tenant=tenant, target=agent, request=request, changes=_snapshot(agent))
    _changed_runtime(Agent, tenant, agent.pk, "agent.created")
    return agent


class _LostRace(Exception):
    """Someone else wrote the agent between our read and our compare-and-set."""


def _compare_and_set(agent: Agent, fields: dict[str, Any]) -> None:
    now = timezone.now()
    written = Agent.objects.filter(pk=agent.pk, revision=agent.revision).update(
        **fields, revision=F("revision") + 1, updated_at=now)
    if not written:
        raise _LostRace
    agent.revision += 1
    agent.updated_at = now


def _check_precondition(agent: Agent, expected_revision: int | None) -> None:
    if expected_revision is not None and agent.revision != expected_revision:
        raise StaleWrite(f"The agent is at revision {agent.revision}, not {expected_revision}: "
                         "reload it and apply your change again.", current_revision=agent.revision)


def _write_agent(agent_id: UUID, expected_revision: int | None, operation: Callable[[Agent], None]) -> Agent:
    """Run `operation` (validate, compare-and-set, audit) on a fresh read, each attempt in its
    own transaction; see the module docstring for when a lost race retries."""
    for _attempt in range(CAS_ATTEMPTS):
        try:
            with transaction.atomic():
                agent = _load_agent(agent_id)
                _check_precondition(agent, expected_revision)
                operation(agent)
                return agent
        except _LostRace:
            if expected_revision is not None:
                break
    current = Agent.objects.filter(pk=agent_id).values_list("revision", flat=True).first()
    if current is None:
        raise Http404("No such agent.")
    raise StaleWrite("The agent was changed by someone else meanwhile: reload it and apply your change again.",
                     current_revision=current)


def update_agent(*, tenant: Tenant, agent_id: UUID, changes: AgentChanges, expected_revision: int | None = None,
                 actor=None, request=None) -> Agent:
    """Change an agent's settings. A change that changes nothing writes nothing (no revision bump)."""
    unknown = set(changes) - set(AGENT_FIELDS)
    if unknown:
        raise ValueError(f"not agent settings: {sorted(unknown)}")

    def operation(agent: Agent) -> None:
        before = _snapshot(agent)
        for field, value in changes.items():
            if field == "role":
                agent.role_id = value
            else:
                setattr(agent, field, value.strip() if field == "name" else value)
        changed = diff(before, _snapshot(agent))
        if not changed:
            return
        if "name" in changed:
            _ensure_name_free(agent.name, exclude=agent.pk)
        _clean_agent(agent)
        columns = {("role_id" if field == "role" else field): getattr(agent, "role_id" if field == "role" else field)
                   for field in changed}
        _compare_and_set(agent, columns)
        record("agent.updated", actor=actor, tenant=tenant, target=agent, request=request, changes=changed)
        _activity(agent, AgentActivity.Kind.CONFIG_CHANGED, f"Settings changed: {', '.join(changed)}",
                  {"fields": sorted(changed)})
        _changed_runtime(Agent, tenant, agent.pk, "agent.updated")

    return _write_agent(agent_id, expected_revision, operation)


def change_status(*, tenant: Tenant, agent_id: UUID, verb: str, expected_revision: int | None = None,
                  actor=None, request=None) -> Agent:
    """`pause` (active -> paused) or `resume` (draft or paused -> active)."""
    allowed_from, target, action = TRANSITIONS[verb]

    def operation(agent: Agent) -> None:
        if agent.status not in allowed_from:
            raise InvalidState(f"Cannot {verb} an agent that is {agent.status}.", status=agent.status,
                               allowed_from=sorted(allowed_from))
        before = agent.status
        _compare_and_set(agent, {"status": target, "status_reason": ""})
        agent.status, agent.status_reason = target, ""
        record(action, actor=actor, tenant=tenant, target=agent, request=request,
               changes={"status": {"before": before, "after": target}})
        _activity(agent, AgentActivity.Kind.STATUS_CHANGED, f"Status changed from {before} to {target}",
                  {"from": before, "to": target})
        events.publish_agent_status(tenant, agent, before=before)
        _changed_runtime(Agent, tenant, agent.pk, action)

    return _write_agent(agent_id, expected_revision, operation)


def pause_agent(*, tenant: Tenant, agent_id: UUID, expected_revision: int | None = None, actor=None,
                request=None) -> Agent:
    return change_status(tenant=tenant, agent_id=agent_id, verb="pause", expected_revision=expected_revision,
                         actor=actor, request=request)


def resume_agent(*, tenant: Tenant, agent_id: UUID, expected_revision: int | None = None, actor=None,
                 request=None) -> Agent:
    return change_status(tenant=tenant, agent_id=agent_id, verb="resume", expected_revision=expected_revision,
                         actor=actor, request=request)


@transaction.atomic
def delete_agent(*, tenant: Tenant, agent_id: UUID, expected_revision: int | None = None, actor=None,
                 request=None) -> None:
    """Delete an agent with its channels, skill installs, activity and metrics. The audit row
    keeps what it was."""
    agent = Agent.objects.defer("search_vector").select_for_update().filter(pk=agent_id).first()
    if agent is None:
        raise Http404("No such agent.")
    _check_precondition(agent, expected_revision)
    record("agent.deleted", actor=actor, tenant=tenant, target=agent, request=request, changes=_snapshot(agent))
    agent.delete()
    _changed_runtime(Agent, tenant, agent_id, "agent.deleted")


# --- Channels -------------------------------------------------------------------------------------


def _channel_snapshot(channel: AgentChannel) -> dict[str, Any]:
    return {"name": channel.name, "type": channel.type, "config": channel.config, "status": channel.status,
            "secrets_set": sorted(name for name, value in (channel.secrets or {}).items() if value)}


def _ensure_channel_name_free(agent: Agent, name: str, *, exclude: UUID | None = None) -> None:
    clash = AgentChannel.objects.filter(agent=agent, name=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise Conflict(f"This agent already has a channel named {name!r}.", field="name")


def _load_channel(agent: Agent, channel_id: UUID) -> AgentChannel:
    channel = AgentChannel.objects.filter(agent=agent, pk=channel_id).first()
    if channel is None:
        raise Http404("No such channel.")
    return channel


@transaction.atomic
def create_channel(*, tenant: Tenant, agent_id: UUID, channel_type: str, name: str, config: dict | None = None,
                   secrets: Mapping[str, str | None] | None = None, actor=None, request=None) -> AgentChannel:
    """Connect the agent to a channel, within the tenant's `max_channels_per_agent`. It starts
    `pending` until verified."""
    agent = _load_agent(agent_id, lock=True)
    limit = (tenant.resource_limits or {}).get("max_channels_per_agent")
    if limit is not None:
        current = AgentChannel.objects.filter(agent=agent).count()
        if current >= limit:
            raise LimitReached(f"This tenant's plan allows {limit} channels per agent and this agent has {current}.",
                               resource="channels", limit=limit, current=current)
    name = name.strip()
    _ensure_channel_name_free(agent, name)
    channel = AgentChannel(agent=agent, type=channel_type, name=name, config=config or {},
                           secrets={key: value for key, value in (secrets or {}).items() if value is not None})
    channel.full_clean()  # the model validates config against its type's schema and the secret names
    channel.save(force_insert=True)
    _agent_reconfigured(agent, "agent.channel_created", target=channel,
                        changes={"agent_id": str(agent.pk), **_channel_snapshot(channel)},
                        tenant=tenant, actor=actor, request=request,
                        summary=f"Channel {name!r} ({channel_type}) added", payload={"channel_id": str(channel.pk)})
    return channel


@transaction.atomic
def update_channel(*, tenant: Tenant, agent_id: UUID, channel_id: UUID, changes: ChannelChanges, actor=None,
                   request=None) -> AgentChannel:
    """Rename, reconfigure, enable/disable, or set/remove secrets (merged: a null removes one).
    New secrets or settings need a new verification: the channel goes back to `pending`."""
    agent = _load_agent(agent_id, lock=True)
    channel = _load_channel(agent, channel_id)
    before = _channel_snapshot(channel)
    old_secrets = dict(channel.secrets or {})
    if "name" in changes:
        channel.name = changes["name"].strip()
        if channel.name != before["name"]:
            _ensure_channel_name_free(agent, channel.name, exclude=channel.pk)
    if "config" in changes:
        channel.config = changes["config"]
    if "secrets" in changes:
        merged = dict(old_secrets)
        for secret, value in changes["secrets"].items():
            if value is None:
                merged.pop(secret, None)
            else:
                merged[secret] = value
        channel.secrets = merged
    rotated = sorted(name for name in set(old_secrets) | set(channel.secrets)
                     if old_secrets.get(name) != channel.secrets.get(name))
    if changes.get("enabled") is False:
        channel.status = AgentChannel.Status.DISABLED
    elif changes.get("enabled") is True and channel.status == AgentChannel.Status.DISABLED:
        channel.status = AgentChannel.Status.PENDING
    if (rotated or channel.config != before["config"]) and channel.status != AgentChannel.Status.DISABLED:
        channel.status, channel.last_error, channel.verified_at = AgentChannel.Status.PENDING, "", None
    changed = diff(before, _channel_snapshot(channel))
    if rotated:
        changed["secrets_changed"] = rotated  # names only; values never reach the audit trail
    if not changed:
        return channel
    channel.full_clean()
    channel.save()
    _agent_reconfigured(agent, "agent.channel_updated", target=channel, changes=changed,
                        tenant=tenant, actor=actor, request=request, summary=f"Channel {channel.name!r} changed",
                        payload={"channel_id": str(channel.pk), "fields": sorted(changed)})
    return channel


@transaction.atomic
def delete_channel(*, tenant: Tenant, agent_id: UUID, channel_id: UUID, actor=None, request=None) -> None:
    agent = _load_agent(agent_id, lock=True)
    channel = _load_channel(agent, channel_id)
    _agent_reconfigured(agent, "agent.channel_deleted", target=channel,
                        changes={"agent_id": str(agent.pk), **_channel_snapshot(channel)},
                        tenant=tenant, actor=actor, request=request,
                        summary=f"Channel {channel.name!r} removed", payload={"channel_id": str(channel_id)})
    channel.delete()


def verify_channel(*, tenant: Tenant, agent_id: UUID, channel_id: UUID, verifier: ChannelVerifier | None = None,
                   actor=None, request=None) -> AgentChannel:
    """Check the channel's secrets (see apps.agents.verifiers) and record the outcome:
    `connected`, or `error` with `last_error`. The provider is asked outside any transaction;
    the result is written only if the channel did not change meanwhile."""
    channel = _load_channel(_load_agent(agent_id), channel_id)
    if channel.status == AgentChannel.Status.DISABLED:
        raise InvalidState("Enable the channel before verifying it.", status=channel.status)
    result = (verifier or get_verifier()).verify(channel_type=channel.type, config=channel.config,
                                                 secrets=channel.secrets or {})
    now = timezone.now()
    fields = {"status": AgentChannel.Status.CONNECTED if result.ok else AgentChannel.Status.ERROR,
              "last_error": "" if result.ok else result.message[:2000]}
    if result.ok:
        fields["verified_at"] = now
    with transaction.atomic():
        agent = _load_agent(agent_id, lock=True)
        written = AgentChannel.objects.filter(pk=channel.pk, updated_at=channel.updated_at).update(
            **fields, updated_at=now)
        if not written:
            raise Conflict("The channel changed while it was being verified: verify it again.")
        before = channel.status
        for field, value in {**fields, "updated_at": now}.items():
            setattr(channel, field, value)
        _agent_reconfigured(agent, "agent.channel_verified", target=channel,
                            changes={"status": {"before": before, "after": channel.status}, "ok": result.ok,
                                     "error": channel.last_error, "account": dict(result.details)},
                            tenant=tenant, actor=actor, request=request)
    return channel


# --- Skill installations --------------------------------------------------------------------------


def _validate_installation(installation: SkillInstallation) -> None:
    """The install's fields and constraints, then its settings against the skill's own JSON
    Schema — as the runtime receives them: the resolver merges an agent-level install's config
    over the Shared Toolbox's config of the same skill, so that merge is what must validate.
    A disabled install that only switches off an inherited skill carries no settings to check."""
    installation.clean_fields()
    installation.validate_constraints()
    if not installation.enabled and not installation.config:
        return
    inherited = (SkillInstallation.objects.filter(agent__isnull=True, skill__slug=installation.skill.slug)
                 .values_list("config", flat=True).first()) or {}
    SkillInstallation(skill=installation.skill, agent=installation.agent,
                      config={**inherited, **installation.config}).clean()


def _installation_snapshot(installation: SkillInstallation) -> dict[str, Any]:
    skill = installation.skill
    return {"skill_id": str(skill.pk), "slug": skill.slug, "version": skill.version,
            "enabled": installation.enabled, "config": installation.config}


def _load_installation(agent: Agent, skill_id: UUID) -> SkillInstallation:
    installation = SkillInstallation.objects.select_related("skill").filter(agent=agent, skill_id=skill_id).first()
    if installation is None:
        raise Http404("This agent has no install of that skill.")
    return installation


@transaction.atomic
def install_skill(*, tenant: Tenant, agent_id: UUID, skill_id: UUID, enabled: bool = True,
                  config: dict | None = None, actor=None, request=None) -> SkillInstallation:
    """Install an approved skill on one agent, or (`enabled=False`) switch off a skill the agent
    inherits from the Shared Toolbox or its role."""
    agent = _load_agent(agent_id, lock=True)
    skill = Skill.objects.filter(pk=skill_id).first()
    if skill is None:
        raise ValidationError({"skill": "No skill with this id."})
    if skill.status != Skill.Status.APPROVED:
        raise ValidationError({"skill": f"Only approved skills can be installed; this one is {skill.status}."})
    # The resolver keys skills by slug: two versions of one skill on an agent would be ambiguous.
    existing = SkillInstallation.objects.select_related("skill").filter(agent=agent, skill__slug=skill.slug).first()
    if existing is not None:
        raise Conflict(f"This agent already has {existing.skill.slug} {existing.skill.version}: change or remove "
                       "that install instead.", skill_id=str(existing.skill_id), version=existing.skill.version)
    installation = SkillInstallation(skill=skill, agent=agent, enabled=enabled, config=config or {},
                                     installed_by=_user(actor))
    _validate_installation(installation)
    installation.save(force_insert=True)
    verb = "installed" if enabled else "switched off"
    _agent_reconfigured(agent, "agent.skill_installed", target=installation,
                        changes={"agent_id": str(agent.pk), **_installation_snapshot(installation)},
                        tenant=tenant, actor=actor, request=request,
                        summary=f"Skill {skill.slug} {skill.version} {verb}", payload={"skill_id": str(skill.pk)})
    return installation


@transaction.atomic
def update_installation(*, tenant: Tenant, agent_id: UUID, skill_id: UUID, changes: InstallationChanges,
                        actor=None, request=None) -> SkillInstallation:
    """Enable/disable an agent's install or replace its settings."""
    agent = _load_agent(agent_id, lock=True)
    installation = _load_installation(agent, skill_id)
    before = _installation_snapshot(installation)
    if "enabled" in changes:
        installation.enabled = changes["enabled"]
    if "config" in changes:
        installation.config = changes["config"]
    changed = diff(before, _installation_snapshot(installation))
    if not changed:
        return installation
    _validate_installation(installation)
    installation.save()
    _agent_reconfigured(agent, "agent.skill_updated", target=installation, changes=changed,
                        tenant=tenant, actor=actor, request=request,
                        summary=f"Skill {installation.skill.slug} changed",
                        payload={"skill_id": str(skill_id), "fields": sorted(changed)})
    return installation


@transaction.atomic
def uninstall_skill(*, tenant: Tenant, agent_id: UUID, skill_id: UUID, actor=None, request=None) -> None:
    """Remove the agent's own install: the agent goes back to what it inherits, if anything."""
    agent = _load_agent(agent_id, lock=True)
    installation = _load_installation(agent, skill_id)
    _agent_reconfigured(agent, "agent.skill_uninstalled", target=installation,
                        changes={"agent_id": str(agent.pk), **_installation_snapshot(installation)},
                        tenant=tenant, actor=actor, request=request,
                        summary=f"Skill {installation.skill.slug} removed", payload={"skill_id": str(skill_id)})
    installation.delete()
