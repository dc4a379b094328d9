"""People, memberships, invitations and API keys: every write rule of the team area.

User.role/tenant are the source of truth; TeamMember is kept identical by the database
(composite foreign key, ON UPDATE CASCADE, deferred), so both are always written together here.
Each function is one transaction and writes its audit row inside it (apps.audit.services.record).

Ranks: nobody may grant a role above their own, or change or remove someone who outranks them.
A tenant_admin outranks everyone in the tenant; an API key ranks as a tenant_member (it may
manage members, never admins), so a leaked `team:write` key cannot mint an administrator.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from rest_framework.exceptions import Throttled

from aegis.api.authentication import API_KEY_GENERATOR
from aegis.api.exceptions import ApiError, ErrorCode, conflict
from aegis.api.permissions import API_KEY_SCOPES
from apps.accounts.models import ApiKey, MemberRole, Role, TeamInvite, TeamMember, User
from apps.accounts.sessions import revoke_sessions
from apps.audit.services import diff, record
from apps.tenants.models import Tenant

Actor = User | ApiKey | None  # None: the system itself (management commands, data fixes)

INVITE_RESEND_INTERVAL = timedelta(minutes=1)
API_KEY_MAX_RATE_LIMIT = 10_000  # requests per minute; above this a key is a denial-of-service tool

_RANK = {Role.TENANT_MEMBER: 1, Role.TENANT_ADMIN: 2}
_API_KEY_RANK = _RANK[Role.TENANT_MEMBER]
_SYSTEM_RANK = max(_RANK.values())


# --- People -----------------------------------------------------------------------------------


@transaction.atomic
def add_member(*, tenant, email: str, password: str | None, name: str = "", role: str = Role.TENANT_MEMBER,
               invited_by: User | None = None, actor=None, request=None) -> User:
    """Create a tenant user and their TeamMember row together (seeding, tests, operators)."""
    if role not in (Role.TENANT_ADMIN, Role.TENANT_MEMBER):
        raise ValueError(f"{role!r} is not a tenant role")
    user = User.objects.create_user(email, password, name=name, role=role, tenant=tenant)
    TeamMember.objects.create(tenant=tenant, user=user, role=role, invited_by=invited_by)
    record("team.member_added", actor=actor or invited_by, tenant=tenant, target=user, request=request,
           changes={"email": user.email, "role": role})
    return user


@transaction.atomic
def create_platform_admin(*, email: str, password: str, name: str = "", actor=None) -> User:
    user = User.objects.create_user(email, password, name=name, role=Role.PLATFORM_ADMIN)
    record("user.platform_admin_created", actor=actor, target=user, changes={"email": user.email})
    return user


def _rank(actor: Actor, active_admins: list[TeamMember] | None = None) -> int:
    """The actor's rank; with the locked admin rows at hand, a person counts as an admin only if
    they still are one (a concurrent demotion of the actor has committed before our lock)."""
    if actor is None:
        return _SYSTEM_RANK
    if isinstance(actor, ApiKey):
        return _API_KEY_RANK
    if active_admins is not None and actor.role == Role.TENANT_ADMIN:
        still_admin = any(admin.user_id == actor.pk for admin in active_admins)
        return _RANK[Role.TENANT_ADMIN] if still_admin else _RANK[Role.TENANT_MEMBER]
    return _RANK.get(actor.role, 0)


def _require_may_grant(actor: Actor, role: str, active_admins: list[TeamMember] | None = None) -> None:
    if _RANK[role] > _rank(actor, active_admins):
        raise ApiError(403, ErrorCode.PERMISSION_DENIED,
                       f"You may not grant the {role} role: it is above your own.", {"role": role})


def _require_may_manage(actor: Actor, member: TeamMember, active_admins: list[TeamMember]) -> None:
    if _RANK[member.role] > _rank(actor, active_admins):
        raise ApiError(403, ErrorCode.PERMISSION_DENIED,
                       f"You may not change or remove a {member.role}: they outrank you.")


def _lock_active_admins(tenant_id) -> list[TeamMember]:
    """Lock the tenant's active admin memberships (always in id order, so concurrent callers
    queue instead of deadlocking). A second transaction blocks here until the first commits,
    then re-reads the rows, so two concurrent demotions can never leave the tenant without one."""
    return list(
        TeamMember.objects.select_for_update()
        .filter(tenant_id=tenant_id, role=Role.TENANT_ADMIN, status=TeamMember.Status.ACTIVE)
        .order_by("pk")
    )


def _lock_member(member: TeamMember) -> TeamMember:
    return (TeamMember.objects.select_for_update(of=("self",))
            .select_related("user", "tenant", "invited_by").get(pk=member.pk))


def _require_another_active_admin(member: TeamMember, admins: list[TeamMember], verb: str) -> None:
    if not any(admin.pk != member.pk for admin in admins):
        raise conflict(f"{member.user.email} is the last active tenant_admin and cannot be {verb}; "
                       "make someone else an admin first.", code=ErrorCode.LAST_ADMIN)


@transaction.atomic
def update_member(*, member: TeamMember, role: str | None = None, status: str | None = None, actor: Actor,
                  request=None) -> TeamMember:
    """Change a member's role and/or status (active | suspended)."""
    if role is None and status is None:
        raise ValidationError("Give a role or a status to change.")
    admins = _lock_active_admins(member.tenant_id)
    member = _lock_member(member)
    _require_may_manage(actor, member, admins)
    if role is not None:
        _require_may_grant(actor, role, admins)
    before = {"role": member.role, "status": member.status}
    after = {"role": role or member.role, "status": status or member.status}
    if before == after:
        return member
    was_active_admin = before == {"role": Role.TENANT_ADMIN, "status": TeamMember.Status.ACTIVE}
    stays_active_admin = after == {"role": Role.TENANT_ADMIN, "status": TeamMember.Status.ACTIVE}
    if was_active_admin and not stays_active_admin:
        verb = "suspended" if after["status"] == TeamMember.Status.SUSPENDED else "demoted"
        _require_another_active_admin(member, admins, verb)
    now = timezone.now()
    if after["role"] != before["role"]:
        # User.role is the source of truth; the composite foreign key cascades it to TeamMember.
        User.objects.filter(pk=member.user_id).update(role=after["role"], updated_at=now)
        member.user.role = after["role"]
    member.role, member.status = after["role"], after["status"]
    member.save(update_fields=["role", "status", "updated_at"])
    changes = {"email": member.user.email, **diff(before, after)}
    if after["status"] == TeamMember.Status.SUSPENDED and before["status"] != after["status"]:
        # Refresh tokens stop working now; access tokens are refused by authentication while suspended.
        changes["sessions_revoked"] = revoke_sessions(user=member.user)
    record("team.member_updated", actor=actor, tenant=member.tenant, target=member, request=request,
           changes=changes)
    return member


@transaction.atomic
def remove_member(*, member: TeamMember, actor: Actor, request=None) -> None:
    """Remove a membership: the TeamMember row goes, the User stays (deactivated) so the audit
    trail keeps naming them, and every session of theirs is revoked. They may be invited again."""
    admins = _lock_active_admins(member.tenant_id)
    member = _lock_member(member)
    _require_may_manage(actor, member, admins)
    if member.role == Role.TENANT_ADMIN and member.status == TeamMember.Status.ACTIVE:
        _require_another_active_admin(member, admins, "removed")
    user, tenant, member_id = member.user, member.tenant, str(member.pk)
    snapshot = {"email": user.email, "role": member.role, "status": member.status, "member_id": member_id}
    member.delete()
    now = timezone.now()
    User.objects.filter(pk=user.pk).update(is_active=False, updated_at=now)
    # Refresh tokens stop working now; access tokens are refused by authentication (inactive user).
    snapshot["sessions_revoked"] = revoke_sessions(user=user)
    record("team.member_removed", actor=actor, tenant=tenant, target=user, request=request, changes=snapshot)


# --- Invitations --------------------------------------------------------------------------------


def hash_invite_token(token: str) -> str:
    """Only this digest is stored: the token itself exists in the e-mail alone. A fast hash is
    right here (unlike passwords): the token has 256 random bits, so it cannot be brute-forced."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_invite_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hash_invite_token(token)


# The web app's accept page. The token rides in the fragment, not the query: browsers never send
# a fragment to a server or in a Referer header, so it stays out of access logs.
DEFAULT_INVITE_ACCEPT_URL = "http://localhost:3000/accept-invite#token={token}"


def invite_accept_url(token: str) -> str:
    return getattr(settings, "INVITE_ACCEPT_URL", DEFAULT_INVITE_ACCEPT_URL).format(token=token)


def _normalize_email(email: str) -> str:
    return email.strip().lower()  # as UserManager.create_user stores it


def _require_tenant_role(role: str) -> None:
    if role not in MemberRole.values:
        raise ValidationError({"role": [f"{role!r} is not a tenant role."]})


def _email_owner(*, email: str, tenant: Tenant) -> User | None:
    """Refuse an address that already has an account. Returns the deactivated User of a member
    previously removed from this same tenant: accepting re-activates that account."""
    user = User.objects.filter(email__iexact=email).select_related("membership").first()
    if user is None:
        return None
    if user.tenant_id == tenant.pk and not user.is_active and getattr(user, "membership", None) is None:
        return user
    if user.tenant_id == tenant.pk:
        raise conflict(f"{email} is already a member of this team.", reason="already_member", field="email")
    raise conflict(f"{email} already belongs to an Aegis account; a person can belong to one tenant only.",
                   reason="user_exists", field="email")


def send_invite_email(*, invite: TeamInvite, token: str, inviter: Actor) -> None:
    """Sent inside the invite's transaction, on purpose: if sending fails the invite (or the
    rotated token) rolls back and the caller gets 503; if the commit fails after sending, the
    link's token was never stored and simply does not work."""
    context = {
        "company_name": invite.tenant.company_name,
        "inviter_name": (inviter.name or inviter.email) if isinstance(inviter, User) else "",
        "role_label": "administrator" if invite.role == Role.TENANT_ADMIN else "member",
        "accept_url": invite_accept_url(token),
        "expires_at": invite.expires_at,
        "email": invite.email,
    }
    subject = " ".join(render_to_string("emails/invite_subject.txt", context).split())
    message = EmailMultiAlternatives(subject, render_to_string("emails/invite.txt", context),
                                     settings.DEFAULT_FROM_EMAIL, [invite.email])
    message.attach_alternative(render_to_string("emails/invite.html", context), "text/html")
    try:
        message.send()
    except OSError as exc:  # smtplib.SMTPException and socket errors; logged with this 503 as its cause
        raise ApiError(503, ErrorCode.SERVICE_UNAVAILABLE,
                       "The invitation e-mail could not be sent, so nothing was changed; try again later.") from exc


def _lock_invite(invite: TeamInvite) -> TeamInvite:
    return TeamInvite.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=invite.pk)


def _mark_revoked(invite: TeamInvite, *, now: datetime, actor: Actor, request, reason: str) -> None:
    invite.revoked_at = now
    invite.save(update_fields=["revoked_at", "updated_at"])
    record("team.invite_revoked", actor=actor, tenant=invite.tenant, target=invite, request=request,
           changes={"email": invite.email, "role": invite.role, "reason": reason})


@transaction.atomic
def create_invite(*, tenant: Tenant, email: str, role: str = Role.TENANT_MEMBER, actor: Actor,
                  request=None) -> TeamInvite:
    """Invite an address to the tenant and e-mail it a single-use link. One live invite per
    address: a pending one is a conflict, an expired one is revoked and replaced."""
    email = _normalize_email(email)
    _require_tenant_role(role)
    _require_may_grant(actor, role)
    _email_owner(email=email, tenant=tenant)
    now = timezone.now()
    live = (TeamInvite.objects.select_for_update(of=("self",)).select_related("tenant")
            .filter(tenant=tenant, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True).first())
    if live is not None:
        if live.expires_at > now:
            raise conflict(f"{email} already has a pending invitation; resend or revoke it instead.",
                           reason="invite_pending", invite_id=str(live.pk))
        _mark_revoked(live, now=now, actor=actor, request=request, reason="expired_replaced")
    token, token_hash = _new_invite_token()
    invite = TeamInvite(tenant=tenant, email=email, role=role, token_hash=token_hash,
                        invited_by=actor if isinstance(actor, User) else None,
                        expires_at=now + settings.INVITE_LIFETIME)
    try:
        with transaction.atomic():
            invite.save(force_insert=True)
    except IntegrityError:
        # A concurrent request invited the same address between the check above and this insert.
        raise conflict(f"{email} already has a pending invitation.", reason="invite_pending") from None
    record("team.invite_created", actor=actor, tenant=tenant, target=invite, request=request,
           changes={"email": email, "role": role, "expires_at": invite.expires_at.isoformat()})
    send_invite_email(invite=invite, token=token, inviter=actor)
    return invite


def _require_live(invite: TeamInvite) -> None:
    if invite.accepted_at is not None:
        raise ApiError(409, ErrorCode.INVALID_STATE, "This invitation has already been accepted.",
                       {"reason": "accepted"})
    if invite.revoked_at is not None:
        raise ApiError(409, ErrorCode.INVALID_STATE, "This invitation has been revoked; send a new one.",
                       {"reason": "revoked"})


@transaction.atomic
def resend_invite(*, invite: TeamInvite, actor: Actor, request=None) -> TeamInvite:
    """Issue a new token (the old link stops working) with a fresh expiry, and e-mail it.
    At most once per INVITE_RESEND_INTERVAL per invite (429 otherwise): a live invite's
    updated_at is the time it was last sent, since sending is its only update while live."""
    invite = _lock_invite(invite)
    _require_live(invite)
    now = timezone.now()
    wait = (invite.updated_at + INVITE_RESEND_INTERVAL - now).total_seconds()
    if wait > 0:
        raise Throttled(wait=math.ceil(wait), detail="This invitation was sent less than a minute ago.")
    _email_owner(email=invite.email, tenant=invite.tenant)
    before = invite.expires_at
    token, invite.token_hash = _new_invite_token()
    invite.expires_at = now + settings.INVITE_LIFETIME
    invite.save(update_fields=["token_hash", "expires_at", "updated_at"])
    record("team.invite_resent", actor=actor, tenant=invite.tenant, target=invite, request=request,
           changes={"email": invite.email,
                    "expires_at": {"before": before.isoformat(), "after": invite.expires_at.isoformat()}})
    send_invite_email(invite=invite, token=token, inviter=actor)
    return invite


@transaction.atomic
def revoke_invite(*, invite: TeamInvite, actor: Actor, request=None) -> TeamInvite:
    """Revoke an invite (its link stops working). Revoking a revoked invite changes nothing."""
    invite = _lock_invite(invite)
    if invite.accepted_at is not None:
        raise ApiError(409, ErrorCode.INVALID_STATE,
                       "This invitation has already been accepted; remove the member instead.",
                       {"reason": "accepted"})
    if invite.revoked_at is None:
        _mark_revoked(invite, now=timezone.now(), actor=actor, request=request, reason="revoked")
    return invite


@transaction.atomic
def accept_invite(*, token: str, name: str, password: str, request=None) -> User:
    """Create the invited User and their TeamMember in one transaction.

    The invite row is locked first: of two concurrent accepts, the second waits, then finds
    the invite accepted. Errors: an unknown token is 400 VALIDATION_ERROR on `token` (never
    issued, or replaced by a resend); an accepted, revoked or expired invite is 409
    INVALID_STATE with details.reason `accepted`, `revoked` or `expired`."""
    invite = (TeamInvite.objects.select_for_update(of=("self",)).select_related("tenant", "invited_by")
              .filter(token_hash=hash_invite_token(token)).first())
    if invite is None:
        raise ValidationError({"token": ["This invitation link is not valid; it may have been replaced by a "
                                         "newer invitation."]})
    now = timezone.now()
    if invite.accepted_at is not None:
        raise ApiError(409, ErrorCode.INVALID_STATE, "This invitation has already been accepted; sign in instead.",
                       {"reason": "accepted"})
    if invite.revoked_at is not None:
        raise ApiError(409, ErrorCode.INVALID_STATE, "This invitation has been revoked; ask for a new one.",
                       {"reason": "revoked"})
    if invite.expires_at <= now:
        raise ApiError(409, ErrorCode.INVALID_STATE, "This invitation has expired; ask for a new one.",
                       {"reason": "expired", "expired_at": invite.expires_at.isoformat()})
    tenant = invite.tenant
    if tenant.status == Tenant.Status.SUSPENDED:
        raise ApiError(403, ErrorCode.TENANT_SUSPENDED, "This tenant is suspended; contact support.")
    if tenant.status == Tenant.Status.DECOMMISSIONED:
        raise ApiError(403, ErrorCode.TENANT_DECOMMISSIONED, "This tenant has been decommissioned.")
    returning = _email_owner(email=invite.email, tenant=tenant)
    try:
        validate_password(password, user=User(email=invite.email, name=name))
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    if returning is None:
        user = User.objects.create_user(invite.email, password, name=name, role=invite.role, tenant=tenant)
    else:  # a member removed earlier comes back: same account, new password, the invite's role
        user = returning
        user.name, user.role, user.is_active = name, invite.role, True
        user.failed_login_count, user.locked_until = 0, None
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save()
    member = TeamMember.objects.create(tenant=tenant, user=user, role=invite.role, invited_by=invite.invited_by)
    invite.accepted_at = now
    invite.save(update_fields=["accepted_at", "updated_at"])
    record("team.invite_accepted", actor=user, tenant=tenant, target=invite, request=request,
           changes={"email": user.email, "role": invite.role, "user_id": str(user.pk), "member_id": str(member.pk),
                    "returning_user": returning is not None})
    # The address now has an account, so its invites to other tenants can never be accepted.
    siblings = (TeamInvite.objects.select_for_update(of=("self",)).select_related("tenant")
                .filter(email__iexact=invite.email, accepted_at__isnull=True, revoked_at__isnull=True)
                .exclude(pk=invite.pk).order_by("pk"))
    for sibling in siblings:
        _mark_revoked(sibling, now=now, actor=None, request=None, reason="email_registered")
    return user


# --- API keys ----------------------------------------------------------------------------------


def _clean_scopes(scopes: list[str]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in API_KEY_SCOPES]
    if unknown:
        raise ValidationError({"scopes": [f"Unknown scope {scope!r}." for scope in unknown]})
    if not scopes:
        raise ValidationError({"scopes": ["Give the key at least one scope."]})
    return sorted(set(scopes))


@transaction.atomic
def create_api_key(*, tenant: Tenant, name: str, scopes: list[str], expires_at: datetime | None = None,
                   rate_limit_per_minute: int | None = None, actor: Actor, request=None) -> tuple[ApiKey, str]:
    """Create a key; returns it with the full `prefix.secret`, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["This field may not be blank."]})
    scopes = _clean_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    limit = rate_limit_per_minute
    if limit is None:
        limit = ApiKey._meta.get_field("rate_limit_per_minute").default
    if not 1 <= limit <= API_KEY_MAX_RATE_LIMIT:
        raise ValidationError({"rate_limit_per_minute": [f"Must be between 1 and {API_KEY_MAX_RATE_LIMIT}."]})
    for attempt in range(3):
        raw, prefix, hashed = API_KEY_GENERATOR.generate()
        key = ApiKey(tenant=tenant, name=name, prefix=prefix, hashed_key=hashed, scopes=scopes,
                     expires_at=expires_at, rate_limit_per_minute=limit,
                     created_by=actor if isinstance(actor, User) else None)
        try:
            with transaction.atomic():
                key.save(force_insert=True)
            break
        except IntegrityError:
            if attempt == 2:  # three prefix collisions in a row: something else is wrong
                raise
    record("api_key.created", actor=actor, tenant=tenant, target=key, request=request,
           changes={"name": name, "prefix": prefix, "scopes": scopes, "rate_limit_per_minute": limit,
                    "expires_at": expires_at.isoformat() if expires_at else None})
    return key, raw


@transaction.atomic
def revoke_api_key(*, api_key: ApiKey, actor: Actor, request=None) -> ApiKey:
    """Revoke a key; the next request made with it is refused (401). Idempotent."""
    api_key = ApiKey.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
        record("api_key.revoked", actor=actor, tenant=api_key.tenant, target=api_key, request=request,
               changes={"name": api_key.name, "prefix": api_key.prefix})
    return api_key
