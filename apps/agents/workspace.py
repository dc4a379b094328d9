"""The tenant-wide layers of an agent's configuration: the Shared Toolbox (layer 1) and this
tenant's overrides of the platform's role defaults (layer 2). Reads and writes, plain functions.

They run in the tenant's schema (switched by authentication), like apps.agents.services. What
they store is what apps.agents.resolver reads; nothing here merges layers for an agent.

Writes validate, write and append their AuditLog row in one transaction, then queue
`runtime_config_changed` for after the commit with `agent_id=None`: a toolbox or role change
can alter every agent of the tenant. Concurrent writers of one toolbox (or one role's override)
are serialised by a transaction-scoped advisory lock, so a replacement is never interleaved
with another and an empty toolbox cannot be "created" twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet

from apps.agents.models import RoleOverride, SkillInstallation
from apps.agents.resolver import newest_approved, role_defaults
from apps.agents.signals import send_runtime_config_changed
from apps.audit.services import diff, record
from apps.skills.models import AgentRole, Skill

TOOLBOX_MAX_SKILLS = 200  # a whole-set PUT: bounded so one request stays one cheap transaction


def _user(actor):
    """The actor as a User (for `installed_by`), or None for an API key or the system."""
    from apps.accounts.models import User

    return actor if isinstance(actor, User) else None


def _lock(name: str) -> None:
    """Serialise writers of `name` in this tenant until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{connection.schema_name}:{name}"])


# --- Shared Toolbox: reads -------------------------------------------------------------------------


def toolbox() -> QuerySet[SkillInstallation]:
    """The tenant's Shared Toolbox (installs with no agent), with their skills, by slug."""
    return (SkillInstallation.objects.filter(agent__isnull=True).select_related("skill")
            .defer("skill__search_vector").order_by("skill__slug", "id"))


# --- Shared Toolbox: the whole-set replacement -----------------------------------------------------------


@dataclass(frozen=True)
class ToolboxEntry:
    skill_id: UUID
    enabled: bool = True
    config: Mapping[str, Any] = field(default_factory=dict)


def _entry_errors(index: int, entry: ToolboxEntry, skill: Skill | None, seen: dict[str, int]) -> dict[str, list]:
    prefix = f"skills.{index}"
    if skill is None:
        return {f"{prefix}.skill_id": ["No skill with this id."]}
    if skill.status != Skill.Status.APPROVED:
        return {f"{prefix}.skill_id": [f"Only approved skills can be installed; {skill.slug} {skill.version} is "
                                       f"{skill.status}."]}
    if skill.slug in seen:
        # The resolver keys skills by slug: two versions of one skill would be ambiguous.
        return {f"{prefix}.skill_id": [f"{skill.slug} is already listed at skills.{seen[skill.slug]}; list one "
                                       "version of each skill."]}
    seen[skill.slug] = index
    if not entry.enabled and not entry.config:
        return {}  # a switched-off entry with no settings has nothing to check
    try:
        # The model's own rule: approved, and settings valid against the skill's JSON Schema.
        SkillInstallation(skill=skill, agent=None, enabled=entry.enabled, config=dict(entry.config)).clean()
    except ValidationError as exc:
        return {f"{prefix}.{'skill_id' if name == 'skill' else name}": messages
                for name, messages in exc.message_dict.items()}
    return {}


def _dependent_install_errors(old: Mapping[str, dict], new: Mapping[str, dict],
                              index_of: Mapping[str, int]) -> dict[str, list]:
    """Agent installs merge their settings over the toolbox's settings of the same skill
    (apps.agents.services validates them that way). A toolbox change must not leave any of them
    invalid, so re-check, with the new toolbox settings, each install of a skill whose toolbox
    settings change or disappear."""
    changed = sorted(slug for slug in set(old) | set(new) if old.get(slug) != new.get(slug))
    if not changed:
        return {}
    errors: dict[str, list] = {}
    installs = (SkillInstallation.objects.filter(agent__isnull=False, skill__slug__in=changed)
                .select_related("skill", "agent").only("enabled", "config", "agent__name", "agent__key",
                                                       "skill__slug", "skill__version", "skill__status",
                                                       "skill__configuration")
                .order_by("agent__name", "id"))
    for install in installs:
        if not install.enabled and not install.config:
            continue
        slug = install.skill.slug
        merged = {**new.get(slug, {}), **install.config}
        try:
            SkillInstallation(skill=install.skill, agent=install.agent, config=merged).clean()
        except ValidationError as exc:
            key = f"skills.{index_of[slug]}.config" if slug in index_of else "skills"
            problems = "; ".join(exc.messages)
            errors.setdefault(key, []).append(
                f"Agent {install.agent.name!r} ({install.agent.key}) installs {slug} with settings that rely on "
                f"the Shared Toolbox's: with this change they would be invalid ({problems}).")
    return errors


def _toolbox_snapshot(rows: Iterable[SkillInstallation]) -> dict[str, dict]:
    return {row.skill.slug: {"skill_id": row.skill_id, "version": row.skill.version, "enabled": row.enabled,
                             "config": row.config} for row in rows}


def _toolbox_audit(before: Mapping[str, dict], after: Mapping[str, dict]) -> dict:
    """Slugs before and after, and what changed per kept skill. Settings values stay out: their
    keys are the skill author's, so the audit's secret redaction cannot recognise a credential."""
    changed = {}
    for slug in sorted(set(before) & set(after)):
        fields = diff({k: before[slug][k] for k in ("version", "enabled")},
                      {k: after[slug][k] for k in ("version", "enabled")})
        if before[slug]["config"] != after[slug]["config"]:
            fields["config"] = "changed"
        if fields:
            changed[slug] = fields
    return {
        "skills": {"before": sorted(before), "after": sorted(after)},
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": changed,
    }


@transaction.atomic
def replace_toolbox(*, tenant, entries: Sequence[ToolboxEntry], actor=None, request=None) -> list[SkillInstallation]:
    """Make the Shared Toolbox exactly `entries`: add, change and remove installs in one
    transaction. Only approved skills, one version per skill, settings valid against each
    skill's JSON Schema; errors name the entry (`skills.2.config`). A replacement that changes
    nothing writes nothing."""
    if len(entries) > TOOLBOX_MAX_SKILLS:
        raise ValidationError({"skills": [f"At most {TOOLBOX_MAX_SKILLS} skills."]})
    _lock("toolbox")
    skills = Skill.objects.defer("search_vector").in_bulk({entry.skill_id for entry in entries})
    errors: dict[str, list] = {}
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        errors.update(_entry_errors(index, entry, skills.get(entry.skill_id), seen))
    if errors:
        raise ValidationError(errors)

    current = {row.skill.slug: row for row in toolbox()}
    before = _toolbox_snapshot(current.values())
    wanted = {skills[entry.skill_id].slug: entry for entry in entries}
    errors = _dependent_install_errors({slug: s["config"] for slug, s in before.items()},
                                       {slug: dict(entry.config) for slug, entry in wanted.items()}, seen)
    if errors:
        raise ValidationError(errors)

    removed = [row.pk for slug, row in current.items() if slug not in wanted]
    if removed:
        SkillInstallation.objects.filter(pk__in=removed).delete()
    added = []
    for slug, entry in wanted.items():
        skill, row = skills[entry.skill_id], current.get(slug)
        if row is None:
            added.append(SkillInstallation(skill=skill, agent=None, enabled=entry.enabled, config=dict(entry.config),
                                           installed_by=_user(actor)))
        elif (row.skill_id, row.enabled, row.config) != (skill.pk, entry.enabled, dict(entry.config)):
            if row.skill_id != skill.pk:
                row.installed_by = _user(actor)  # another version: whoever picked it installed it
            row.skill, row.enabled, row.config = skill, entry.enabled, dict(entry.config)
            row.save(update_fields=["skill", "enabled", "config", "installed_by", "updated_at"])
    if added:
        SkillInstallation.objects.bulk_create(added)

    rows = list(toolbox())
    after = _toolbox_snapshot(rows)
    if after != before:
        record("toolbox.updated", actor=actor, tenant=tenant, request=request, changes=_toolbox_audit(before, after))
        send_runtime_config_changed(sender=SkillInstallation, tenant=tenant, agent_id=None, reason="toolbox.updated")
    return rows


# --- Role catalog with this tenant's overrides ------------------------------------------------------------


@dataclass(frozen=True)
class RoleView:
    """One platform role as this tenant sees it: the platform's defaults, the tenant's override
    (None: none) and the defaults its agents get."""

    role: AgentRole
    override: RoleOverride | None
    default_skills: list[str]  # effective
    default_settings: dict[str, Any]  # effective
    skills: list[Skill]  # the newest approved version of each effective default skill
    unavailable_skills: list[str]  # effective default skills with no approved version (agents get none)

    @property
    def skills_source(self) -> str:
        return "tenant" if self.override is not None and self.override.default_skills is not None else "platform"


def role_views(roles: Sequence[AgentRole]) -> list[RoleView]:
    """The roles given (a page of the catalog) with this tenant's overrides and the skill versions
    their agents get: two queries whatever the number of roles."""
    overrides = {o.role_id: o for o in RoleOverride.objects.filter(role_id__in=[role.key for role in roles])}
    effective = {role.key: role_defaults(role, overrides.get(role.key)) for role in roles}
    newest = newest_approved({slug for _, slugs in effective.values() for slug in slugs}) if roles else {}
    return [
        RoleView(role=role, override=overrides.get(role.key), default_settings=effective[role.key][0],
                 default_skills=effective[role.key][1],
                 skills=[newest[slug] for slug in effective[role.key][1] if slug in newest],
                 unavailable_skills=[slug for slug in effective[role.key][1] if slug not in newest])
        for role in roles
    ]


def _override_snapshot(override: RoleOverride | None) -> dict[str, Any]:
    if override is None:
        return {"default_skills": None, "default_settings": {}}
    skills = list(override.default_skills) if override.default_skills is not None else None
    return {"default_skills": skills, "default_settings": dict(override.default_settings)}


def _check_role_skills(slugs: list[str]) -> None:
    """Each slug once, and each with an approved version (what an agent would install)."""
    approved = newest_approved(slugs)
    errors: dict[str, list] = {}
    for index, slug in enumerate(slugs):
        if slug in slugs[:index]:
            errors[f"default_skills.{index}"] = [f"{slug} is listed more than once."]
        elif slug not in approved:
            errors[f"default_skills.{index}"] = [f"No approved skill with slug {slug!r}."]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def set_role_override(*, tenant, role: AgentRole, changes: Mapping[str, Any], actor=None,
                      request=None) -> RoleOverride | None:
    """Set or clear this tenant's override of `role`'s defaults. Only the keys given change:
    `default_skills` a list of approved skill slugs (replaces the platform's list) or None (inherit
    it); `default_settings` an object valid against ROLE_DEFAULT_SETTINGS (its keys win over the
    platform's) or None/{} (inherit them all). An override that inherits everything is deleted.
    Returns the override, or None when there is none."""
    unknown = set(changes) - {"default_skills", "default_settings"}
    if unknown:
        raise ValueError(f"not role override settings: {sorted(unknown)}")
    _lock(f"role_override:{role.key}")
    override = RoleOverride.objects.filter(role_id=role.key).first()
    before = _override_snapshot(override)
    after = dict(before)
    if "default_skills" in changes:
        slugs = changes["default_skills"]
        if slugs is not None:
            _check_role_skills(list(slugs))
        after["default_skills"] = list(slugs) if slugs is not None else None
    if "default_settings" in changes:
        after["default_settings"] = dict(changes["default_settings"] or {})
    changed = diff(before, after)
    if not changed:
        return override

    if after == _override_snapshot(None):
        action = "role_override.cleared"
        record(action, actor=actor, tenant=tenant, target=override, request=request,
               changes={"role": role.key, **changed})
        override.delete()
        override = None
    else:
        action = "role_override.updated"
        if override is None:
            override = RoleOverride(role=role)
        override.default_skills, override.default_settings = after["default_skills"], after["default_settings"]
        # The field validators: default_settings against ROLE_DEFAULT_SETTINGS, slugs' format.
        override.full_clean(exclude={"role"}, validate_unique=False, validate_constraints=False)
        override.save()
        record(action, actor=actor, tenant=tenant, target=override, request=request,
               changes={"role": role.key, **changed})
    send_runtime_config_changed(sender=RoleOverride, tenant=tenant, agent_id=None, reason=action)
    return override
