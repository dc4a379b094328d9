from django.db import models

from aegis.db import BaseModel, enum_check


class HealthStatus(models.TextChoices):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNREACHABLE = "unreachable"


class AlertSeverity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class ContainerHealth(BaseModel):
    """One health sample of a tenant's runtime."""

    Status = HealthStatus

    # Indexed by monitoring_health_tenant_idx (tenant, -checked_at).
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="health_samples", db_index=False
    )
    status = models.CharField(max_length=12, choices=Status.choices)
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_mb = models.FloatField(null=True, blank=True)
    uptime_seconds = models.PositiveBigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField(db_index=True)  # retention pruning: DELETE ... WHERE checked_at < cutoff

    class Meta:
        ordering = ["-checked_at"]
        constraints = [enum_check("status", HealthStatus, table="monitoring_containerhealth")]
        indexes = [
            # Latest sample per tenant (fleet view) and a tenant's history.
            models.Index(fields=["tenant", "-checked_at"], name="monitoring_health_tenant_idx"),
            models.Index(fields=["status", "-checked_at"], name="monitoring_health_status_idx"),
        ]
        verbose_name_plural = "container health samples"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.status} at {self.checked_at:%Y-%m-%d %H:%M}"


class Alert(BaseModel):
    Severity = AlertSeverity

    Status = AlertStatus

    # Indexed by monitoring_alert_tenant_idx (tenant, status).
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts", db_index=False
    )
    severity = models.CharField(max_length=10, choices=Severity.choices)
    kind = models.CharField(max_length=50, help_text="e.g. runtime.unhealthy, provisioning.failed")
    message = models.TextField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    acknowledged_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    dedup_key = models.CharField(max_length=200)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            enum_check("severity", AlertSeverity, table="monitoring_alert"),
            enum_check("status", AlertStatus, table="monitoring_alert"),
            # At most one unresolved alert per dedup key: repeats update it instead.
            models.UniqueConstraint(
                fields=["dedup_key"], condition=~models.Q(status="resolved"), name="monitoring_alert_one_open_per_key"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="resolved") | models.Q(resolved_at__isnull=False),
                name="monitoring_alert_resolved_has_timestamp",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="monitoring_alert_status_idx"),
            models.Index(fields=["tenant", "status"], name="monitoring_alert_tenant_idx"),
            models.Index(fields=["severity", "-created_at"], name="monitoring_alert_severity_idx"),
            # The alert list's default order (newest first) and its tenant filter.
            models.Index(fields=["-created_at"], name="monitoring_alert_created_idx"),
            models.Index(fields=["tenant", "-created_at"], name="monitoring_alert_tnew_idx"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.kind}"
