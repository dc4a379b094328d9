"""Accepting an invitation: the one anonymous endpoint of the team area."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from aegis.api.exceptions import ErrorCode
from aegis.api.permissions import anyone
from aegis.api.schema import error_response
from apps.accounts import services
from apps.accounts.api.team_serializers import (
    InviteAcceptSerializer,
    JoinedUserSerializer,
    validated,
)


class InviteAcceptView(APIView):
    # The token is the credential: any Authorization header is ignored rather than checked, so
    # a stale session in the browser cannot make accepting fail.
    authentication_classes = ()
    access = {"post": anyone()}

    @extend_schema(
        summary="Accept an invitation",
        description="Creates the account (User and team membership, in one transaction) for the address the "
                    "invitation was sent to, and returns it; then sign in with POST /api/v1/auth/login. "
                    "The password must satisfy the password validators. Of two concurrent accepts of one "
                    "invitation exactly one succeeds.",
        tags=["auth"],
        auth=[],
        request=InviteAcceptSerializer,
        responses={
            201: JoinedUserSerializer,
            400: error_response(400, ErrorCode.VALIDATION_ERROR, description=(
                "Invalid request: `VALIDATION_ERROR`, e.g. a password the validators refuse, or a `token` no "
                "invitation has (never issued, or replaced by a resend)")),
            403: error_response(403, ErrorCode.TENANT_SUSPENDED, ErrorCode.TENANT_DECOMMISSIONED),
            409: error_response(409, ErrorCode.INVALID_STATE, ErrorCode.CONFLICT, description=(
                "Conflict: `INVALID_STATE` with details.reason `accepted` (sign in instead), `revoked` or "
                "`expired` (ask an administrator for a new invitation); or `CONFLICT` with details.reason "
                "`user_exists`: the address got an account in the meantime")),
        },
        examples=[
            OpenApiExample("Accept", request_only=True,
                           value={"token": "Jq3v0bJ8m1kq2TqG7n3yHfZk9YpQh5cXrW0aL4sD6eE", "name": "Dana Scully",
                                  "password": "a-long-unusual-passphrase"}),
            OpenApiExample("Account created", response_only=True, status_codes=["201"],
                           value={"id": "3c9d7e1a-5b2f-4e8d-9c1a-2b3c4d5e6f70", "email": "dana@acme.example",
                                  "name": "Dana Scully", "role": "tenant_member",
                                  "tenantId": "a1b2c3d4-e5f6-4a1b-8c2d-3e4f5a6b7c8d", "mfaEnabled": False,
                                  "createdAt": "2025-01-02T10:00:00.000000Z"}),
            OpenApiExample("Expired", response_only=True, status_codes=["409"], value={"error": {
                "code": "INVALID_STATE", "message": "This invitation has expired; ask for a new one.",
                "details": {"reason": "expired", "expiredAt": "2025-01-08T09:30:00+00:00"},
                "requestId": "5d0c3f6e2b1a4c9d8e7f6a5b4c3d2e1f"}}),
        ],
    )
    def post(self, request):
        data = validated(InviteAcceptSerializer, request.data)
        user = services.accept_invite(token=data["token"], name=data["name"], password=data["password"],
                                      request=request)
        return Response(JoinedUserSerializer(user).data, status=status.HTTP_201_CREATED)
