from django.db import models
from django.db.models.functions import Lower
from django_tenants.models import DomainMixin, TenantMixin

from aegis.crypto import EncryptedTextField
from aegis.db import BaseModel, enum_check
from aegis.jsonschema import JSONSchemaValidator


class TenantStatus(models.TextChoices):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    FAILED = "failed"
    DECOMMISSIONED = "decommissioned"


class TenantPlan(models.TextChoices):
    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"


class Tenant(TenantMixin, BaseModel):
    """A customer company. Its agent data lives in its own PostgreSQL schema (`schema_name`).

    Tenant rows are never deleted: decommissioning stops the runtime, and purging drops the
    schema and secrets but keeps this row so the audit trail keeps pointing at something.
    """

    Status = TenantStatus
    Plan = TenantPlan

    company_name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    admin_email = models.EmailField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROVISIONING)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.STARTER)
    industry = models.CharField(max_length=100, blank=True)
    expected_agent_count = models.PositiveIntegerField(default=0)
    model_defaults = models.JSONField(
        default=dict, blank=True, validators=[JSONSchemaValidator("apps.tenants.json_schemas.MODEL_DEFAULTS")]
    )
    resource_limits = models.JSONField(
        default=dict, blank=True, validators=[JSONSchemaValidator("apps.tenants.json_schemas.RESOURCE_LIMITS")]
    )
    status_reason = models.TextField(blank=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    decommissioned_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    # Schemas are created by the provisioning service (cloned from the template), never as a
    # side effect of save(); and never dropped by delete().
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["company_name"]
        constraints = [
            models.UniqueConstraint(Lower("company_name"), name="tenants_tenant_company_name_ci_unique"),
            enum_check("status", TenantStatus, table="tenants_tenant"),
            enum_check("plan", TenantPlan, table="tenants_tenant"),
            models.CheckConstraint(
                condition=~models.Q(status="suspended") | models.Q(suspended_at__isnull=False),
                name="tenants_tenant_suspended_has_timestamp",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="decommissioned") | models.Q(purge_after__isnull=False),
                name="tenants_tenant_decommissioned_has_purge_date",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="tenants_status_created_idx"),
            models.Index(fields=["plan", "-created_at"], name="tenants_plan_created_idx"),
            models.Index(fields=["-created_at"], name="tenants_created_idx"),
        ]

    def __str__(self) -> str:
        return self.company_name


class Domain(DomainMixin, BaseModel):
    """A host name routed to a tenant (django-tenants' domain model)."""

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class RuntimeState(models.TextChoices):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    ERROR = "error"
    REMOVED = "removed"


class RuntimeBackendName(models.TextChoices):
    LOCAL = "local"
    DOCKER = "docker"


class TenantRuntime(BaseModel):
    """The tenant's OpenClaw gateway as Aegis manages it (apps/tenants/runtime/).

    One row per tenant. The gateway token is encrypted at rest; it reaches the gateway as an
    environment variable, never in the rendered config file.
    """

    State = RuntimeState
    Backend = RuntimeBackendName

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="runtime")
    backend = models.CharField(max_length=10, choices=RuntimeBackendName.choices)
    state = models.CharField(max_length=10, choices=RuntimeState.choices, default=RuntimeState.STOPPED)
    port = models.PositiveIntegerField(null=True, blank=True, unique=True)  # loopback port of the gateway
    gateway_token = EncryptedTextField()
    handle = models.CharField(max_length=100, blank=True, help_text="process id or container id")
    config_hash = models.CharField(max_length=64, blank=True, help_text="sha256 of the config last applied")
    config_applied_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            enum_check("state", RuntimeState, table="tenants_tenantruntime"),
            enum_check("backend", RuntimeBackendName, table="tenants_tenantruntime"),
        ]
        indexes = [models.Index(fields=["state"], name="tenants_runtime_state_idx")]

    def __str__(self) -> str:
        return f"runtime of {self.tenant_id} ({self.backend}, {self.state})"
