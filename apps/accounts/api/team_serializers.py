"""Wire shapes of the team area (snake_case here; the renderer/parser make them camelCase).

Secrets never appear in a response: no invite token or hash, no API key hash; the full API
key appears once, in ApiKeyCreatedSerializer, in the response to its creation.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aegis.api.permissions import API_KEY_SCOPES
from aegis.api.serializers import StrictSerializer
from apps.accounts import selectors
from apps.accounts.models import ApiKey, MemberRole, TeamInvite, TeamMember, User
from apps.accounts.services import API_KEY_MAX_RATE_LIMIT


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """Validate request data or query parameters; invalid input raises 400 VALIDATION_ERROR."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return {key: value for key, value in serializer.validated_data.items() if value not in (None, "")}


class UserSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name"]


# --- Team ----------------------------------------------------------------------------------------


class TeamMemberSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    mfa_enabled = serializers.BooleanField(source="user.mfa_enabled", read_only=True)
    last_login_at = serializers.DateTimeField(source="user.last_login", read_only=True, allow_null=True)
    invited_by = UserSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = TeamMember
        fields = ["id", "user_id", "email", "name", "role", "status", "mfa_enabled", "invited_by", "joined_at",
                  "last_active_at", "last_login_at"]
        read_only_fields = fields


class TeamMemberUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=MemberRole.choices, required=False)
    status = serializers.ChoiceField(choices=TeamMember.Status.choices, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give a role or a status to change.")
        return attrs


class TeamFilterSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                   help_text="Part of a member's name or e-mail (case-insensitive).")
    role = serializers.ChoiceField(choices=MemberRole.choices, required=False)
    status = serializers.ChoiceField(choices=TeamMember.Status.choices, required=False)
    ordering = serializers.ChoiceField(choices=selectors.ordering_choices(selectors.MEMBER_ORDERINGS),
                                       required=False, help_text="Sort key; `-` for descending. Default joinedAt.")


# --- Invites ---------------------------------------------------------------------------------------


class InviteSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    invited_by = UserSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = TeamInvite
        fields = ["id", "email", "role", "status", "invited_by", "expires_at", "accepted_at", "revoked_at",
                  "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=selectors.INVITE_STATUSES))
    def get_status(self, invite: TeamInvite) -> str:
        return selectors.invite_status(invite)


class InviteCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=MemberRole.choices, default=MemberRole.TENANT_MEMBER)


class InviteFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=selectors.INVITE_STATUSES, required=False)
    search = serializers.CharField(required=False, allow_blank=True, max_length=254,
                                   help_text="Part of the invited e-mail address.")
    ordering = serializers.ChoiceField(choices=selectors.ordering_choices(selectors.INVITE_ORDERINGS),
                                       required=False, help_text="Sort key; `-` for descending. Default -createdAt.")


class InviteAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=200, help_text="The token from the invitation link.")
    name = serializers.CharField(max_length=200)
    password = serializers.CharField(max_length=200, trim_whitespace=False, write_only=True,
                                     style={"input_type": "password"},
                                     help_text="Checked by the password validators (length, common, numeric).")


class JoinedUserSerializer(serializers.ModelSerializer):
    """The account an accepted invitation created. Sign in with POST /auth/login to get tokens."""

    tenant_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "tenant_id", "mfa_enabled", "created_at"]
        read_only_fields = fields


# --- API keys -------------------------------------------------------------------------------------


class ApiKeySerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    created_by = UserSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "status", "rate_limit_per_minute", "last_used_at", "expires_at",
                  "revoked_at", "created_at", "created_by"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=selectors.API_KEY_STATUSES))
    def get_status(self, key: ApiKey) -> str:
        return selectors.api_key_status(key)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key, `prefix.secret`. Shown this once only.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(
            choices=sorted(API_KEY_SCOPES),
            error_messages={"invalid_choice": "Unknown scope {input!r}."},
        ),
        allow_empty=False,
        max_length=len(API_KEY_SCOPES),
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True,
                                           help_text="When the key stops working; omit for no expiry.")
    rate_limit_per_minute = serializers.IntegerField(required=False, min_value=1, max_value=API_KEY_MAX_RATE_LIMIT,
                                                     help_text="Requests per minute for this key (default 600).")


class ApiKeyFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=selectors.API_KEY_STATUSES, required=False)
    search = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                   help_text="Part of the key's name, or the start of its prefix.")
    ordering = serializers.ChoiceField(choices=selectors.ordering_choices(selectors.API_KEY_ORDERINGS),
                                       required=False, help_text="Sort key; `-` for descending. Default -createdAt.")
