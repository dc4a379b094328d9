"""/api/v1/platform/dashboard and /api/v1/platform/tenants/... (no trailing slashes)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.tenants.api.views import PlatformDashboardView, PlatformTenantViewSet

router = SimpleRouter(trailing_slash=False)
router.register("tenants", PlatformTenantViewSet, basename="platform-tenant")

urlpatterns = [
    path("dashboard", PlatformDashboardView.as_view(), name="platform-dashboard"),
    *router.urls,
]
