from django.contrib import admin

from aegis.admin import ReadOnlyModelAdmin, admin_site
from apps.monitoring import services
from apps.monitoring.models import Alert, ContainerHealth


@admin.register(Alert, site=admin_site)
class AlertAdmin(ReadOnlyModelAdmin):
    """Alerts are raised by monitoring; operators only acknowledge and resolve them."""

    list_display = ("created_at", "severity", "kind", "tenant", "status", "acknowledged_by", "resolved_by")
    list_filter = ("status", "severity", "tenant")
    search_fields = ("kind", "dedup_key")
    list_select_related = ("tenant", "acknowledged_by", "resolved_by")
    actions = ["acknowledge_alerts", "resolve_alerts"]
    fields = ("severity", "kind", "message", "tenant", "status", "dedup_key", "acknowledged_by", "acknowledged_at",
              "resolved_by", "resolved_at", "created_at", "updated_at")

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge_alerts(self, request, queryset):
        self.apply_to_each(request, queryset, lambda alert: services.acknowledge_alert(
            alert=alert, actor=request.user, request=request), done="acknowledged")

    @admin.action(description="Resolve selected alerts")
    def resolve_alerts(self, request, queryset):
        self.apply_to_each(request, queryset, lambda alert: services.resolve_alert(
            alert=alert, actor=request.user, request=request), done="resolved")


@admin.register(ContainerHealth, site=admin_site)
class ContainerHealthAdmin(ReadOnlyModelAdmin):
    list_display = ("checked_at", "tenant", "status", "cpu_percent", "memory_mb", "uptime_seconds")
    list_filter = ("status", "tenant")
    list_select_related = ("tenant",)
    sortable_by = ()  # a large table: keep the indexed default order (newest first)
    fields = ("tenant", "status", "cpu_percent", "memory_mb", "uptime_seconds", "details", "checked_at")
