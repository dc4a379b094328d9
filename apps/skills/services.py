"""Marketplace review: a submitted skill version goes pending -> approved | rejected, once.
And the platform's role catalog (layer 2 of an agent's configuration).

Each function locks the row, changes it and writes its audit row in one transaction.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from aegis.domain import Conflict, InvalidState
from apps.audit.services import diff, record
from apps.skills.models import SEMVER_PATTERN, AgentRole, Skill


class SkillReviewError(InvalidState):
    """The skill is not awaiting review (API: 409 INVALID_STATE)."""


def _review(*, skill: Skill, status: str, reviewer, note: str, request, action: str) -> Skill:
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    if skill.status != Skill.Status.PENDING:
        # A decision is final: a changed skill is submitted again as a new version.
        raise SkillReviewError(f"{skill} is already {skill.status}; only pending skills can be reviewed",
                               status=skill.status)
    skill.status = status
    skill.review_note = note
    skill.reviewed_by = reviewer
    skill.reviewed_at = timezone.now()
    skill.save(update_fields=["status", "review_note", "reviewed_by", "reviewed_at", "updated_at"])
    record(action, actor=reviewer, target=skill, request=request,
           changes={"status": {"before": Skill.Status.PENDING, "after": status}, "review_note": note})
    return skill


@transaction.atomic
def approve_skill(*, skill: Skill, reviewer, note: str = "", request=None) -> Skill:
    """Publish a pending skill version: from now on tenants can install it."""
    return _review(skill=skill, status=Skill.Status.APPROVED, reviewer=reviewer, note=note.strip(),
                   request=request, action="skill.approved")


@transaction.atomic
def reject_skill(*, skill: Skill, reviewer, note: str, request=None) -> Skill:
    """Turn a pending skill version down. The note is required: it tells the author why."""
    if not note.strip():
        raise ValidationError({"review_note": "a note explaining the rejection is required"}, code="required")
    return _review(skill=skill, status=Skill.Status.REJECTED, reviewer=reviewer, note=note.strip(),
                   request=request, action="skill.rejected")


# --- The role catalog (layer 2 defaults) ---------------------------------------------------------------

ROLE_FIELDS = ("name", "description", "default_skills", "default_settings")


def _check_default_skills(slugs: list[str]) -> None:
    """Every default skill must name a skill in the marketplace (any version: a role follows the
    newest approved one, so a skill still under review may already be listed)."""
    known = set(Skill.objects.filter(slug__in=slugs).values_list("slug", flat=True).distinct())
    unknown = [slug for slug in slugs if slug not in known]
    if unknown:
        raise ValidationError({"default_skills": [f"No skill with slug {slug!r}." for slug in unknown]},
                              code="unknown_skill")


def _role_snapshot(role: AgentRole) -> dict:
    return {"name": role.name, "description": role.description, "default_skills": list(role.default_skills),
            "default_settings": dict(role.default_settings)}


@transaction.atomic
def create_role(*, key: str, name: str, description: str = "", default_skills: list[str] | None = None,
                default_settings: dict | None = None, actor=None, request=None) -> AgentRole:
    """Add a role to the platform's catalog. Its key is what agents refer to, so it never changes."""
    if AgentRole.objects.filter(key=key).exists():
        raise Conflict(f"A role with key {key!r} already exists.", field="key")
    role = AgentRole(key=key, name=name.strip(), description=description, default_skills=list(default_skills or []),
                     default_settings=default_settings or {})
    role.full_clean()
    _check_default_skills(role.default_skills)
    role.save()
    record("role.created", actor=actor, target=role, request=request, changes={"key": key, **_role_snapshot(role)})
    return role


@transaction.atomic
def update_role(*, role: AgentRole, changes: dict, actor=None, request=None) -> AgentRole:
    """Change a role's name, description or defaults (each replaced as a whole). Every tenant's agents
    of this role follow the new defaults, except where a tenant overrides them."""
    unknown = set(changes) - set(ROLE_FIELDS)
    if unknown:
        raise ValueError(f"not role settings: {sorted(unknown)}")
    role = AgentRole.objects.select_for_update().get(pk=role.pk)
    before = _role_snapshot(role)
    for field, value in changes.items():
        setattr(role, field, value.strip() if field == "name" else value)
    changed = diff(before, _role_snapshot(role))
    if not changed:
        return role
    role.full_clean()
    if "default_skills" in changed:
        _check_default_skills(role.default_skills)
    role.save(update_fields=[*changed, "updated_at"])
    record("role.updated", actor=actor, target=role, request=request, changes=changed)
    return role


# --- Submission (tenant side) ----------------------------------------------------------------------


def _slug_owned_elsewhere(slug: str, tenant) -> bool:
    """A slug belongs to the tenant whose people submitted its live (pending or approved) versions;
    platform skills (no author, or a platform admin's) belong to nobody else. Rejected versions
    claim nothing, so a turned-down submission cannot squat a name. Without this, another tenant's
    approved newer version would take over the marketplace entry and every role following the slug."""
    owners = set(Skill.objects.filter(slug=slug).exclude(status=Skill.Status.REJECTED)
                 .values_list("author__tenant_id", flat=True))
    return bool(owners - {tenant.pk})


@transaction.atomic
def submit_skill(*, tenant, author, actor, name: str, slug: str, version: str, category: str = Skill.Category.OTHER,
                 description: str = "", capabilities: dict | None = None, configuration: dict | None = None,
                 request=None) -> Skill:
    """Submit a new skill, or a new version of one of this tenant's skills, for review (pending).

    `author` is the person accountable (for an API key, its creator; None if that account is gone),
    `actor` who made the call (the audit trail names it)."""
    with connection.cursor() as cursor:
        # One submission per slug at a time: the ownership and duplicate checks cannot race the insert.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"skills.slug:{slug}"])
    if Skill.objects.filter(slug=slug, version=version).exists():
        raise Conflict(f"Version {version} of {slug!r} has already been submitted; submit a new version.",
                       reason="version_exists", slug=slug, version=version)
    if _slug_owned_elsewhere(slug, tenant):
        raise Conflict(f"The slug {slug!r} belongs to another publisher; choose another slug.",
                       reason="slug_taken", slug=slug)
    skill = Skill(name=name.strip(), slug=slug, version=version, category=category, description=description.strip(),
                  capabilities=capabilities or {}, configuration={"type": "object"} if configuration is None
                  else configuration, author=author, status=Skill.Status.PENDING)
    # Field validators (slug, lengths, capabilities' JSON Schema, configuration being a JSON Schema of
    # an object); the semver CHECK here too, so a bad version is a 400 rather than an IntegrityError.
    skill.full_clean(validate_unique=False, validate_constraints=False)
    if not re.match(SEMVER_PATTERN, version):
        raise ValidationError({"version": ["Not a semantic version (e.g. 1.4.0 or 2.0.0-rc.1)."]}, code="semver")
    skill.save(force_insert=True)
    record("skill.submitted", actor=actor, tenant=tenant, target=skill, request=request,
           changes={"slug": slug, "version": version, "name": skill.name, "category": category,
                    "status": Skill.Status.PENDING})
    return skill
