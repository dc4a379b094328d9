"""/api/v1/audit-logs: the caller's tenant's audit trail (no trailing slash)."""

from rest_framework.routers import SimpleRouter

from apps.audit.api.tenant_views import TenantAuditLogViewSet

router = SimpleRouter(trailing_slash=False)
router.register("audit-logs", TenantAuditLogViewSet, basename="tenant-audit-log")

urlpatterns = router.urls
