"""Marketplace review: a submitted skill version goes pending -> approved | rejected, once.

Each function locks the row, changes it and writes its audit row in one transaction.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import record
from apps.skills.models import Skill


class SkillReviewError(ValidationError):
    """The skill is not awaiting review."""


def _review(*, skill: Skill, status: str, reviewer, note: str, request, action: str) -> Skill:
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    if skill.status != Skill.Status.PENDING:
        # A decision is final: a changed skill is submitted again as a new version.
        raise SkillReviewError(f"{skill} is already {skill.status}; only pending skills can be reviewed",
                               code="invalid_state")
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
