"""/api/v1/platform/alerts..., /api/v1/platform/health, /api/v1/platform/tenants/{id}/health."""

from rest_framework.routers import SimpleRouter

from apps.monitoring.api.views import FleetHealthViewSet, PlatformAlertViewSet, TenantHealthViewSet
from apps.tenants.api.views import UUID_PATH

router = SimpleRouter(trailing_slash=False)
router.register("alerts", PlatformAlertViewSet, basename="platform-alert")
router.register("health", FleetHealthViewSet, basename="platform-fleet-health")
router.register(rf"tenants/(?P<id>{UUID_PATH})/health", TenantHealthViewSet, basename="platform-tenant-health")

urlpatterns = router.urls
