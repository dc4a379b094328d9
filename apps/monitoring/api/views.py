"""/api/v1/platform/alerts..., /api/v1/platform/health and /api/v1/platform/tenants/{id}/health:
alert handling and runtime health for the platform console (TOTP-verified platform admins).

Thin: transitions (and their audit rows) in apps.monitoring.services, reads in apps.monitoring.selectors.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from aegis.api.exceptions import ErrorCode
from aegis.api.pagination import FeedPagination
from aegis.api.permissions import platform
from aegis.api.schema import error_response
from aegis.api.serializers import validated_query
from apps.monitoring import selectors, services
from apps.monitoring.api.serializers import (
    AlertFilterSerializer,
    FleetHealthFilterSerializer,
    HealthSampleFilterSerializer,
    PlatformAlertSerializer,
    PlatformFleetHealthSerializer,
    PlatformHealthSampleSerializer,
)
from apps.monitoring.models import Alert, ContainerHealth
from apps.tenants.api.views import UUID_PATH
from apps.tenants.models import Tenant

TAG = "platform-monitoring"
ALERT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The alert's id.")


class HealthFeedPagination(FeedPagination):
    """Samples newest first by check time, cursor-paged over monitoring_health_tenant_idx."""

    ordering = ("-checked_at", "-id")


@extend_schema_view(
    list=extend_schema(summary="List alerts", tags=[TAG], parameters=[AlertFilterSerializer],
                       description="All tenants' alerts and platform-wide ones, newest first by default.",
                       responses={200: PlatformAlertSerializer(many=True)}),
)
class PlatformAlertViewSet(viewsets.GenericViewSet):
    queryset = Alert.objects.all()
    serializer_class = PlatformAlertSerializer
    lookup_value_regex = UUID_PATH
    access = {"list": platform(), "acknowledge": platform(), "resolve": platform()}

    def get_queryset(self):
        if self.action == "list":
            filters = validated_query(AlertFilterSerializer, self.request.query_params)
            if "tenant" in filters:
                filters["tenant_id"] = filters.pop("tenant")
            return selectors.alerts(**filters)
        return Alert.objects.all()

    def _detail(self, alert: Alert) -> Response:
        return Response(PlatformAlertSerializer(selectors.alerts().get(pk=alert.pk)).data)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PlatformAlertSerializer(page, many=True).data)

    @extend_schema(
        summary="Acknowledge an alert",
        description="open -> acknowledged: someone is on it. Anything else gives 409 INVALID_STATE.",
        tags=[TAG], parameters=[ALERT_ID], request=None,
        responses={200: PlatformAlertSerializer, 409: error_response(409, ErrorCode.INVALID_STATE)})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        alert = services.acknowledge_alert(alert=self.get_object(), actor=request.auth.actor, request=request)
        return self._detail(alert)

    @extend_schema(
        summary="Resolve an alert",
        description="open or acknowledged -> resolved; its dedup key is free again, so a recurrence opens a new "
                    "alert. A resolved alert gives 409 INVALID_STATE.",
        tags=[TAG], parameters=[ALERT_ID], request=None,
        responses={200: PlatformAlertSerializer, 409: error_response(409, ErrorCode.INVALID_STATE)})
    @action(detail=True, methods=["post"])
    def resolve(self, request, *args, **kwargs):
        alert = services.resolve_alert(alert=self.get_object(), actor=request.auth.actor, request=request)
        return self._detail(alert)


@extend_schema_view(
    list=extend_schema(
        summary="List a tenant's runtime health samples",
        description="Newest first, cursor-paginated (`pagination.next`); `from`/`to` narrow the check time.",
        tags=[TAG], parameters=[
            OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The tenant's id."),
            HealthSampleFilterSerializer],
        responses={200: PlatformHealthSampleSerializer(many=True)}),
)
class TenantHealthViewSet(viewsets.GenericViewSet):
    serializer_class = PlatformHealthSampleSerializer
    pagination_class = HealthFeedPagination
    access = {"list": platform()}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular inspecting the view: no request
            return ContainerHealth.objects.none()
        tenant = get_object_or_404(Tenant, pk=self.kwargs["id"])
        filters = validated_query(HealthSampleFilterSerializer, self.request.query_params)
        return selectors.health_samples(tenant=tenant, since=filters.get("from"), until=filters.get("to"))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PlatformHealthSampleSerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(
        summary="Fleet health: each tenant runtime's newest sample",
        description="One row per tenant that has reported at least once: its newest health sample (one probe "
                    "of the (tenant, checkedAt) index per tenant). Tenants with no sample yet are not listed; "
                    "the dashboard counts them as `unknown`. `status` filters on that newest sample.",
        tags=[TAG], parameters=[FleetHealthFilterSerializer],
        responses={200: PlatformFleetHealthSerializer(many=True)}),
)
class FleetHealthViewSet(viewsets.GenericViewSet):
    serializer_class = PlatformFleetHealthSerializer
    access = {"list": platform()}

    def get_queryset(self):
        return selectors.fleet_health(**validated_query(FleetHealthFilterSerializer, self.request.query_params))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PlatformFleetHealthSerializer(page, many=True).data)
