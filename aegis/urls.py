from django.urls import include, path

from apps.monitoring.views import healthz, readyz

from .admin import admin_site

urlpatterns = [
    path("admin/", admin_site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
