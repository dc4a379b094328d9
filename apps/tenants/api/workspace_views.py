"""/api/v1/dashboard, /api/v1/tenant and /api/v1/tenant/usage: the calling tenant's own
workspace. No ids: the tenant is the one bound to the credential, so another tenant's data
cannot even be named. Thin: rules in apps.tenants.workspace (and the platform's services and
selectors it reuses)."""

from __future__ import annotations

from dataclasses import fields

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from aegis.api.exceptions import ErrorCode
from aegis.api.permissions import admins, members
from aegis.api.schema import error_response, errors
from aegis.api.serializers import validated_body
from apps.tenants import selectors, workspace
from apps.tenants.api.workspace_serializers import (
    TenantDashboardSerializer,
    TenantProfileSerializer,
    TenantProfileUpdateSerializer,
    TenantUsageSerializer,
)

TAG = "tenant"


class TenantDashboardView(APIView):
    access = {"get": members("tenant:read", tenant_schema=True)}

    @extend_schema(
        summary="Tenant dashboard",
        description="Agents by status; messages received and sent today (since 00:00 UTC, from the hourly metrics "
                    "rollups); channels, and how many are connected; the newest health sample of the tenant's "
                    "runtime; this tenant's open alerts. Computed on each request, in a fixed number of queries.",
        tags=[TAG], responses={200: TenantDashboardSerializer})
    def get(self, request, *args, **kwargs):
        return Response(TenantDashboardSerializer(workspace.tenant_dashboard(request.auth.tenant)).data)


class TenantProfileView(APIView):
    access = {
        "get": members("tenant:read"),
        "patch": admins("tenant:write"),
    }

    @extend_schema(summary="Get the tenant's profile", tags=[TAG], responses={200: TenantProfileSerializer})
    def get(self, request, *args, **kwargs):
        return Response(TenantProfileSerializer(request.auth.tenant).data)

    @extend_schema(
        summary="Change the tenant's profile",
        description="`companyName`, `industry`, `expectedAgentCount` and `modelDefaults` (a JSON merge patch, "
                    "validated against its JSON Schema); only the fields sent change and the audit entry lists each "
                    "one before and after. A `modelDefaults` change reconfigures the tenant's runtime. `plan`, "
                    "`resourceLimits`, `status`, `statusReason`, `slug` and `adminEmail` belong to the platform: "
                    "sending one gives 403 PERMISSION_DENIED with `details.fields` naming them. A company name in "
                    "use by another tenant gives 409 CONFLICT.",
        tags=[TAG], request=TenantProfileUpdateSerializer,
        responses={200: TenantProfileSerializer, **errors(400),
                   403: error_response(403, ErrorCode.PERMISSION_DENIED, ErrorCode.TENANT_SUSPENDED,
                                       ErrorCode.TENANT_DECOMMISSIONED),
                   409: error_response(409, ErrorCode.CONFLICT)},
        examples=[OpenApiExample("Faster default model", request_only=True, value={
            "industry": "Logistics", "modelDefaults": {"tiers": {"fast": "openai/gpt-5-mini"},
                                                       "thinkingDefault": "low"}})])
    def patch(self, request, *args, **kwargs):
        changes = validated_body(TenantProfileUpdateSerializer, request.data)
        tenant = workspace.update_profile(tenant=request.auth.tenant, changes=changes, actor=request.auth.actor,
                                          request=request)
        return Response(TenantProfileSerializer(tenant).data)


class TenantUsageView(APIView):
    access = {"get": members("tenant:read", tenant_schema=True)}

    @extend_schema(
        summary="Get the tenant's usage against its limits",
        description="This calendar month (UTC), from the daily metrics rollups: tokens in and out against "
                    "`resourceLimits.monthlyTokenBudget`, messages, errors and cost; the agents it has now against "
                    "`maxAgents`; its channels, and its fullest agent against `maxChannelsPerAgent`. The same "
                    "computation as the platform's GET platform/tenants/{id}/usage.",
        tags=[TAG], responses={200: TenantUsageSerializer})
    def get(self, request, *args, **kwargs):
        tenant = request.auth.tenant
        usage = selectors.tenant_usage(tenant)
        data = {field.name: getattr(usage, field.name) for field in fields(usage)}
        data["channels"] = workspace.channel_usage(tenant)
        return Response(TenantUsageSerializer(data).data)
