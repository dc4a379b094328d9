"""/api/v1/platform/...: the platform console's API (platform admins with a TOTP-verified session).
Each app contributes its own URL module; their paths do not overlap."""

from django.urls import include, path

urlpatterns = [
    path("", include("apps.tenants.urls")),
    path("", include("apps.monitoring.api.urls")),
    path("", include("apps.skills.api.platform_urls")),
    path("", include("apps.audit.api.platform_urls")),
]
