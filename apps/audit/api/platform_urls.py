"""/api/v1/platform/audit-logs."""

from rest_framework.routers import SimpleRouter

from apps.audit.api.views import PlatformAuditLogViewSet

router = SimpleRouter(trailing_slash=False)
router.register("audit-logs", PlatformAuditLogViewSet, basename="platform-audit-log")

urlpatterns = router.urls
