"""Model building blocks shared by every app: UUID keys, timestamps, enum CHECK constraints."""

import uuid

from django.db import models


class BaseModel(models.Model):
    """UUID primary key plus creation and update timestamps: every mutable table has these."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class AppendOnlyModel(models.Model):
    """For logs that are only ever inserted: no `updated_at`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


def enum_check(field: str, choices: type[models.TextChoices], *, table: str, nullable: bool = False):
    """A CHECK constraint allowing exactly the values of a TextChoices enum.

    The constraint name carries the table so names stay unique across the schema.
    """
    condition = models.Q(**{f"{field}__in": choices.values})
    if nullable:
        condition |= models.Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=f"{table}_{field}_valid")
