"""/api/v1/toolbox and /api/v1/roles[/{key}]: the tenant-wide layers of agent configuration."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.agents.api.toolbox_views import TenantRoleViewSet, ToolboxView

router = SimpleRouter(trailing_slash=False)
router.register("roles", TenantRoleViewSet, basename="tenant-role")

urlpatterns = [
    path("toolbox", ToolboxView.as_view(), name="toolbox"),
    *router.urls,
]
