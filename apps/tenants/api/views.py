"""/api/v1/platform/tenants... and /api/v1/platform/dashboard: the platform console's tenant
directory and lifecycle. Platform admins with a TOTP-verified session only.

Thin: the rules (and their audit rows) live in apps.tenants.services, the reads in
apps.tenants.selectors. Platform admins work in the public schema, where every tenant's row is.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from aegis.api.exceptions import ApiError, ErrorCode
from aegis.api.permissions import platform
from aegis.api.schema import error_response
from aegis.api.serializers import validated_body, validated_query
from apps.tenants import selectors, services
from apps.tenants.api.serializers import (
    PlatformDashboardSerializer,
    PlatformTenantCreateSerializer,
    PlatformTenantFilterSerializer,
    PlatformTenantSerializer,
    PlatformTenantUpdateSerializer,
    PlatformTenantUsageSerializer,
    SuspendSerializer,
)
from apps.tenants.models import Tenant

UUID_PATH = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
TAG = "platform-tenants"

TENANT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The tenant's id.")


def _state_error(what: str) -> object:
    return error_response(409, ErrorCode.INVALID_STATE,
                          description=f"Conflict: `INVALID_STATE`, the tenant's status does not allow {what} "
                                      "(`details.status`, `details.allowedFrom`)")


_CREATE_EXAMPLE = {
    "companyName": "Initech",
    "adminEmail": "it@initech.example",
    "plan": "growth",
    "industry": "Software",
    "expectedAgentCount": 12,
    "resourceLimits": {"maxAgents": 40},
    "modelDefaults": {"tiers": {"powerful": "anthropic/claude-opus-4-1"}},
}


@extend_schema_view(
    list=extend_schema(
        summary="List tenants", tags=[TAG], parameters=[PlatformTenantFilterSerializer],
        description="Every tenant, decommissioned ones included (filter by `status`).",
        responses={200: PlatformTenantSerializer(many=True)}),
    create=extend_schema(
        summary="Create a tenant",
        description="Records the tenant in `provisioning` and answers 202 at once; a background task then builds "
                    "its schema and runtime, and the tenant becomes `active` (or `failed`, with `statusReason`: "
                    "retry with POST .../retry-provisioning). Poll GET .../{id} (the `Location` header). "
                    "`resourceLimits` overrides the plan's default limits key by key. A company name (any case), "
                    "slug or domain already in use gives 409 CONFLICT (`details.field`).",
        tags=[TAG], request=PlatformTenantCreateSerializer,
        responses={202: PlatformTenantSerializer, 409: error_response(409, ErrorCode.CONFLICT)},
        examples=[OpenApiExample("New growth tenant", value=_CREATE_EXAMPLE, request_only=True)]),
    retrieve=extend_schema(summary="Get a tenant", tags=[TAG], parameters=[TENANT_ID],
                           responses={200: PlatformTenantSerializer}),
    partial_update=extend_schema(
        summary="Change a tenant's settings",
        description="Only the fields sent change; the audit entry lists each changed field before and after. "
                    "`modelDefaults` and `resourceLimits` are JSON merge patches (RFC 7386: `null` removes a key). "
                    "A new `plan` resets `resourceLimits` to that plan's defaults before applying any "
                    "`resourceLimits` sent. The slug (and so the schema) never changes. A decommissioned tenant "
                    "cannot be changed (409 INVALID_STATE); a company name in use gives 409 CONFLICT.",
        tags=[TAG], parameters=[TENANT_ID], request=PlatformTenantUpdateSerializer,
        responses={200: PlatformTenantSerializer,
                   409: error_response(409, ErrorCode.CONFLICT, ErrorCode.INVALID_STATE)},
        examples=[OpenApiExample("Upgrade with a custom agent cap", request_only=True,
                                 value={"plan": "enterprise", "resourceLimits": {"maxAgents": 400}})]),
    destroy=extend_schema(
        summary="Decommission a tenant",
        description="Step one of deletion, never an instant drop: the tenant stops being served (its users' calls "
                    "get 403 TENANT_DECOMMISSIONED) and its data is kept until `purgeAfter` (the grace period, "
                    "TENANT_DECOMMISSION_GRACE_DAYS), when an operator's purge drops the schema. Answers 202 with "
                    "the tenant in `decommissioned`. Allowed from active, suspended and failed.",
        tags=[TAG], parameters=[TENANT_ID],
        responses={202: PlatformTenantSerializer, 409: _state_error("decommissioning")}),
)
class PlatformTenantViewSet(viewsets.GenericViewSet):
    queryset = Tenant.objects.all()
    serializer_class = PlatformTenantSerializer
    lookup_value_regex = UUID_PATH
    access = {
        "list": platform(),
        "create": platform(),
        "retrieve": platform(),
        "partial_update": platform(),
        "destroy": platform(),
        "suspend": platform(),
        "reactivate": platform(),
        "retry_provisioning": platform(),
        "usage": platform(),
    }

    def get_queryset(self):
        if self.action == "list":
            return selectors.tenants(**validated_query(PlatformTenantFilterSerializer, self.request.query_params))
        return Tenant.objects.all()

    def _actor(self) -> dict:
        return {"actor": self.request.auth.actor, "request": self.request}

    def _detail(self, tenant: Tenant, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.tenant_detail(tenant.pk).get()
        return Response(PlatformTenantSerializer(fresh).data, status=status_code)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PlatformTenantSerializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        data = validated_body(PlatformTenantCreateSerializer, request.data)
        tenant = services.onboard_tenant(**data, **self._actor())
        response = self._detail(tenant, status.HTTP_202_ACCEPTED)
        response["Location"] = request.build_absolute_uri(reverse("platform-tenant-detail", kwargs={"pk": tenant.pk}))
        return response

    def retrieve(self, request, *args, **kwargs):
        return self._detail(self.get_object())

    def partial_update(self, request, *args, **kwargs):
        tenant = self.get_object()
        changes = validated_body(PlatformTenantUpdateSerializer, request.data)
        return self._detail(services.update_tenant(tenant, changes=changes, **self._actor()))

    def destroy(self, request, *args, **kwargs):
        tenant = services.decommission(self.get_object(), **self._actor())
        return self._detail(tenant, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Suspend a tenant",
        description="active -> suspended. The tenant's users and API keys are refused at once with 403 "
                    "TENANT_SUSPENDED, whose `details.reason` is the reason given here.",
        tags=[TAG], parameters=[TENANT_ID], request=SuspendSerializer,
        responses={200: PlatformTenantSerializer, 409: _state_error("suspending (only an active tenant)")},
        examples=[OpenApiExample("Unpaid", value={"reason": "Invoices unpaid since March"}, request_only=True)])
    @action(detail=True, methods=["post"])
    def suspend(self, request, *args, **kwargs):
        tenant = self.get_object()
        reason = validated_body(SuspendSerializer, request.data)["reason"]
        return self._detail(services.suspend(tenant, reason=reason, **self._actor()))

    @extend_schema(summary="Reactivate a suspended tenant", description="suspended -> active.",
                   tags=[TAG], parameters=[TENANT_ID], request=None,
                   responses={200: PlatformTenantSerializer, 409: _state_error("reactivating (only a suspended "
                                                                                "tenant)")})
    @action(detail=True, methods=["post"])
    def reactivate(self, request, *args, **kwargs):
        return self._detail(services.reactivate(self.get_object(), **self._actor()))

    @extend_schema(
        summary="Retry a failed provisioning",
        description="failed -> provisioning, and the background provisioning runs again; answers 202 like "
                    "creation does.",
        tags=[TAG], parameters=[TENANT_ID], request=None,
        responses={202: PlatformTenantSerializer, 409: _state_error("a retry (only a failed tenant)")})
    @action(detail=True, methods=["post"], url_path="retry-provisioning")
    def retry_provisioning(self, request, *args, **kwargs):
        tenant = services.retry_provisioning(self.get_object(), **self._actor())
        return self._detail(tenant, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Get a tenant's usage against its limits",
        description="This calendar month (UTC) of the tenant's agent metrics (daily rollups): tokens, messages, "
                    "errors and cost, with the agents it has now, against `resourceLimits` (`maxAgents`, "
                    "`monthlyTokenBudget`). Read from the tenant's own schema, so a tenant that has none gives 409: "
                    "TENANT_NOT_READY while provisioning (or failed), INVALID_STATE once purged.",
        tags=[TAG], parameters=[TENANT_ID],
        responses={200: PlatformTenantUsageSerializer,
                   409: error_response(409, ErrorCode.TENANT_NOT_READY, ErrorCode.INVALID_STATE)})
    @action(detail=True, methods=["get"])
    def usage(self, request, *args, **kwargs):
        tenant = self.get_object()
        if not selectors.has_workspace(tenant):
            if tenant.purged_at is not None:
                raise ApiError(409, ErrorCode.INVALID_STATE, "This tenant has been purged; its data is gone.",
                               {"status": tenant.status})
            raise ApiError(409, ErrorCode.TENANT_NOT_READY,
                           f"The tenant is {tenant.status}; it has no workspace to measure yet.",
                           {"status": tenant.status})
        return Response(PlatformTenantUsageSerializer(selectors.tenant_usage(tenant)).data)


class PlatformDashboardView(APIView):
    access = {"get": platform()}

    @extend_schema(
        summary="Platform dashboard",
        description="The counts a platform admin looks at first: tenants by status and by plan, agents across "
                    "every active or suspended tenant's schema (one query over all of them), open and "
                    "acknowledged alerts, and tenant runtimes by their newest health sample. Computed on each "
                    "request, in a fixed number of queries whatever the number of tenants.",
        tags=["platform"], responses={200: PlatformDashboardSerializer})
    def get(self, request, *args, **kwargs):
        return Response(PlatformDashboardSerializer(selectors.platform_dashboard()).data)
