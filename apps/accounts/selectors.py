"""Reads of the team area. Every selector takes the tenant: none can return another's rows.

Orderings are named as on the wire (camelCase, `-` for descending) and always end with the
primary key, so pages are stable when the sort key ties.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import ApiKey, TeamInvite, TeamMember
from apps.tenants.models import Tenant

MEMBER_ORDERINGS = {
    "name": "user__name",
    "email": "user__email",
    "role": "role",
    "status": "status",
    "joinedAt": "joined_at",
    "lastActiveAt": "last_active_at",
}
INVITE_ORDERINGS = {"createdAt": "created_at", "expiresAt": "expires_at", "email": "email"}
API_KEY_ORDERINGS = {"createdAt": "created_at", "name": "name", "lastUsedAt": "last_used_at"}

INVITE_STATUSES = ("pending", "accepted", "revoked", "expired")
API_KEY_STATUSES = ("active", "revoked", "expired")


def ordering_choices(orderings: dict[str, str]) -> list[str]:
    return [prefix + name for name in orderings for prefix in ("", "-")]


def _order(queryset: QuerySet, ordering: str | None, orderings: dict[str, str], default: str) -> QuerySet:
    ordering = ordering or default
    descending = ordering.startswith("-")
    field = orderings[ordering.lstrip("-")]
    if descending:
        return queryset.order_by(f"-{field}", "-pk")
    return queryset.order_by(field, "pk")


def team_members(*, tenant: Tenant, search: str = "", role: str | None = None, status: str | None = None,
                 ordering: str | None = None) -> QuerySet[TeamMember]:
    """Members with their user and inviter joined in: one query per page, whatever its size."""
    queryset = TeamMember.objects.filter(tenant=tenant).select_related("user", "invited_by")
    if search:
        queryset = queryset.filter(Q(user__name__icontains=search) | Q(user__email__icontains=search))
    if role:
        queryset = queryset.filter(role=role)
    if status:
        queryset = queryset.filter(status=status)
    return _order(queryset, ordering, MEMBER_ORDERINGS, "joinedAt")


def invite_status(invite: TeamInvite, *, now: datetime | None = None) -> str:
    if invite.accepted_at is not None:
        return "accepted"
    if invite.revoked_at is not None:
        return "revoked"
    return "expired" if invite.expires_at <= (now or timezone.now()) else "pending"


def _invite_status_q(status: str, now: datetime) -> Q:
    live = Q(accepted_at__isnull=True, revoked_at__isnull=True)
    return {
        "pending": live & Q(expires_at__gt=now),
        "expired": live & Q(expires_at__lte=now),
        "accepted": Q(accepted_at__isnull=False),
        "revoked": Q(revoked_at__isnull=False),
    }[status]


def team_invites(*, tenant: Tenant, status: str | None = None, search: str = "",
                 ordering: str | None = None) -> QuerySet[TeamInvite]:
    queryset = TeamInvite.objects.filter(tenant=tenant).select_related("invited_by")
    if status:
        queryset = queryset.filter(_invite_status_q(status, timezone.now()))
    if search:
        queryset = queryset.filter(email__icontains=search)
    return _order(queryset, ordering, INVITE_ORDERINGS, "-createdAt")


def api_key_status(key: ApiKey, *, now: datetime | None = None) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or timezone.now()):
        return "expired"
    return "active"


def _api_key_status_q(status: str, now: datetime) -> Q:
    unrevoked = Q(revoked_at__isnull=True)
    return {
        "active": unrevoked & (Q(expires_at__isnull=True) | Q(expires_at__gt=now)),
        "expired": unrevoked & Q(expires_at__lte=now),
        "revoked": Q(revoked_at__isnull=False),
    }[status]


def api_keys(*, tenant: Tenant, status: str | None = None, search: str = "",
             ordering: str | None = None) -> QuerySet[ApiKey]:
    queryset = ApiKey.objects.filter(tenant=tenant).select_related("created_by")
    if status:
        queryset = queryset.filter(_api_key_status_q(status, timezone.now()))
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(prefix__startswith=search))
    return _order(queryset, ordering, API_KEY_ORDERINGS, "-createdAt")
