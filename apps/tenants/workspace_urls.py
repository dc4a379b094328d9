"""/api/v1/dashboard, /api/v1/tenant, /api/v1/tenant/usage: the calling tenant's own workspace."""

from django.urls import path

from apps.tenants.api.workspace_views import TenantDashboardView, TenantProfileView, TenantUsageView

urlpatterns = [
    path("dashboard", TenantDashboardView.as_view(), name="tenant-dashboard"),
    path("tenant", TenantProfileView.as_view(), name="tenant-profile"),
    path("tenant/usage", TenantUsageView.as_view(), name="tenant-usage"),
]
