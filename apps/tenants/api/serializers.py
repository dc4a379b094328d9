"""Wire shapes of the platform console's tenant endpoints (snake_case here; the renderer and
parser make them camelCase)."""

from __future__ import annotations

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aegis.api.serializers import StrictSerializer
from aegis.ordering import ordering_choices
from apps.agents.models import AgentStatus, ThinkingMode
from apps.monitoring.models import AlertSeverity, HealthStatus
from apps.tenants import selectors
from apps.tenants.models import Tenant

# --- JSON settings: as stored (responses), and as merge patches (requests) ---------------------------------
# apps/tenants/json_schemas.py stays the authority (ranges, formats): the service validates the
# merged result against it. These give the settings their types in the OpenAPI document.


class ModelTiersSerializer(serializers.Serializer):
    fast = serializers.CharField(required=False, help_text="`provider/model`, e.g. `anthropic/claude-haiku-4-5`.")
    balanced = serializers.CharField(required=False, help_text="`provider/model`.")
    powerful = serializers.CharField(required=False, help_text="`provider/model`.")


class ModelDefaultsSerializer(serializers.Serializer):
    """The tenant's model choices; what is missing falls back to the platform's defaults."""

    tiers = ModelTiersSerializer(required=False, help_text="Concrete model of each model tier.")
    fallbacks = serializers.ListField(child=serializers.CharField(), required=False, max_length=5,
                                      help_text="`provider/model` refs tried in order when the primary fails.")
    thinking_default = serializers.ChoiceField(choices=ThinkingMode.choices, required=False)


class ResourceLimitsSerializer(serializers.Serializer):
    """Caps of the tenant's plan (or negotiated ones); a missing key means no cap."""

    max_agents = serializers.IntegerField(required=False)
    max_channels_per_agent = serializers.IntegerField(required=False)
    cpus = serializers.FloatField(required=False, help_text="CPUs of the tenant's runtime container.")
    memory_mb = serializers.IntegerField(required=False)
    pids_limit = serializers.IntegerField(required=False)
    monthly_token_budget = serializers.IntegerField(required=False, help_text="Tokens in + out per calendar month.")
    network = serializers.ChoiceField(choices=["bridge", "internal"], required=False)


class ModelTiersPatchSerializer(StrictSerializer):
    fast = serializers.CharField(required=False, allow_null=True)
    balanced = serializers.CharField(required=False, allow_null=True)
    powerful = serializers.CharField(required=False, allow_null=True)


class ModelDefaultsPatchSerializer(StrictSerializer):
    """A JSON merge patch (RFC 7386): keys given replace, `null` removes, the rest stays."""

    tiers = ModelTiersPatchSerializer(required=False, allow_null=True)
    fallbacks = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True, max_length=5)
    thinking_default = serializers.ChoiceField(choices=ThinkingMode.choices, required=False, allow_null=True)


class ResourceLimitsPatchSerializer(StrictSerializer):
    """A JSON merge patch (RFC 7386) over the current limits (or the plan's defaults): `null` removes a cap."""

    max_agents = serializers.IntegerField(required=False, allow_null=True)
    max_channels_per_agent = serializers.IntegerField(required=False, allow_null=True)
    cpus = serializers.FloatField(required=False, allow_null=True)
    memory_mb = serializers.IntegerField(required=False, allow_null=True)
    pids_limit = serializers.IntegerField(required=False, allow_null=True)
    monthly_token_budget = serializers.IntegerField(required=False, allow_null=True)
    network = serializers.ChoiceField(choices=["bridge", "internal"], required=False, allow_null=True)


def _patch(data) -> dict:
    """Nested validated data as plain dicts, nulls kept (they remove keys in a merge patch)."""
    return {key: _patch(value) if isinstance(value, Mapping) else value for key, value in data.items()}


# --- Tenants -------------------------------------------------------------------------------------------


class PlatformTenantSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "company_name", "slug", "status"]
        read_only_fields = fields


class PlatformTenantSerializer(serializers.ModelSerializer):
    model_defaults = ModelDefaultsSerializer(read_only=True)
    resource_limits = ResourceLimitsSerializer(read_only=True)
    domains = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["id", "company_name", "slug", "schema_name", "admin_email", "status", "status_reason", "plan",
                  "industry", "expected_agent_count", "model_defaults", "resource_limits", "domains",
                  "provisioned_at", "suspended_at", "decommissioned_at", "purge_after", "purged_at", "created_at",
                  "updated_at"]
        read_only_fields = fields
        extra_kwargs = {
            "status_reason": {"help_text": "Why the tenant is suspended or failed; empty otherwise."},
            "purge_after": {"help_text": "For a decommissioned tenant: when its data may be purged."},
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField(),
                                               help_text="Host names routed to the tenant, primary first."))
    def get_domains(self, tenant: Tenant) -> list[str]:
        domains = getattr(tenant, "domain_list", None)
        if domains is None:
            domains = tenant.domains.order_by("-is_primary", "domain")
        return [domain.domain for domain in domains]


SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
HOSTNAME_PATTERN = r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"


class PlatformTenantCreateSerializer(StrictSerializer):
    company_name = serializers.CharField(max_length=200)
    admin_email = serializers.EmailField(max_length=254)
    plan = serializers.ChoiceField(choices=Tenant.Plan.choices, default=Tenant.Plan.STARTER)
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    expected_agent_count = serializers.IntegerField(min_value=0, max_value=100_000, required=False, default=0)
    slug = serializers.RegexField(SLUG_PATTERN, max_length=40, required=False,
                                  error_messages={"invalid": "Lower-case letters and digits, joined by single "
                                                             "hyphens."},
                                  help_text="Derived from the company name when not given. Names the tenant's "
                                            "schema (`t_<slug>`); it never changes.")
    domain = serializers.RegexField(HOSTNAME_PATTERN, max_length=253, required=False,
                                    error_messages={"invalid": "Not a host name."},
                                    help_text="Primary host name; default `<slug>.<TENANT_BASE_DOMAIN>`.")
    model_defaults = ModelDefaultsPatchSerializer(required=False)
    resource_limits = ResourceLimitsPatchSerializer(
        required=False, help_text="Overrides of the plan's default limits, key by key (merge patch).")

    def validate(self, attrs):
        for field in ("model_defaults", "resource_limits"):
            if field in attrs:
                attrs[field] = _patch(attrs[field])
        return attrs


class PlatformTenantUpdateSerializer(StrictSerializer):
    company_name = serializers.CharField(max_length=200, required=False)
    admin_email = serializers.EmailField(max_length=254, required=False)
    plan = serializers.ChoiceField(
        choices=Tenant.Plan.choices, required=False,
        help_text="A new plan resets resourceLimits to its defaults, then applies any resourceLimits given.")
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True)
    expected_agent_count = serializers.IntegerField(min_value=0, max_value=100_000, required=False)
    model_defaults = ModelDefaultsPatchSerializer(required=False, help_text="A JSON merge patch of modelDefaults.")
    resource_limits = ResourceLimitsPatchSerializer(required=False, help_text="A JSON merge patch of resourceLimits.")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one field to change.")
        for field in ("model_defaults", "resource_limits"):
            if field in attrs:
                attrs[field] = _patch(attrs[field])
        return attrs


class SuspendSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=1000, help_text="Shown to the tenant's users with every refusal.")


class PlatformTenantFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Tenant.Status.choices, required=False)
    plan = serializers.ChoiceField(choices=Tenant.Plan.choices, required=False)
    search = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                   help_text="Part of the company name, slug or admin e-mail (case-insensitive).")
    ordering = serializers.ChoiceField(choices=ordering_choices(selectors.TENANT_ORDERINGS), required=False,
                                       help_text="Sort key; `-` for descending. Default -createdAt.")


# --- Usage ---------------------------------------------------------------------------------------------------


class MeterSerializer(serializers.Serializer):
    used = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True, help_text="null: no limit set.")
    remaining = serializers.IntegerField(allow_null=True, help_text="limit - used, never below 0; null: no limit.")
    exceeded = serializers.BooleanField(help_text="used is above the limit.")


class TokenMeterSerializer(MeterSerializer):
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    used = serializers.IntegerField(help_text="tokensIn + tokensOut.")


class PlatformTenantUsageSerializer(serializers.Serializer):
    tenant_id = serializers.UUIDField()
    period_start = serializers.DateTimeField(help_text="Start of the current calendar month (UTC), inclusive.")
    period_end = serializers.DateTimeField(help_text="Start of the next month, exclusive.")
    agents = MeterSerializer(help_text="Agents now, against resourceLimits.maxAgents.")
    tokens = TokenMeterSerializer(help_text="Tokens this month against resourceLimits.monthlyTokenBudget.")
    messages = serializers.IntegerField()
    errors = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=6, coerce_to_string=True)
    resource_limits = ResourceLimitsSerializer()


# --- Dashboard -------------------------------------------------------------------------------------------------


def _counts(name: str, keys, help_text: str = "") -> type[serializers.Serializer]:
    """A serializer of one integer per enum value (every value present, zeros included)."""
    fields = {key: serializers.IntegerField() for key in keys}
    return type(name, (serializers.Serializer,), {**fields, "__doc__": help_text or None})


TenantStatusCountsSerializer = _counts("TenantStatusCountsSerializer", Tenant.Status.values)
TenantPlanCountsSerializer = _counts("TenantPlanCountsSerializer", Tenant.Plan.values,
                                     "Tenants per plan, decommissioned ones left out.")

AgentStatusCountsSerializer = _counts("AgentStatusCountsSerializer", AgentStatus.values)
RuntimeStatusCountsSerializer = _counts("RuntimeStatusCountsSerializer", HealthStatus.values)
AlertSeverityCountsSerializer = _counts("AlertSeverityCountsSerializer", AlertSeverity.values)


class DashboardTenantsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = TenantStatusCountsSerializer()
    by_plan = TenantPlanCountsSerializer()


class DashboardAgentsSerializer(serializers.Serializer):
    """Agents in the schemas of active and suspended tenants."""

    total = serializers.IntegerField()
    by_status = AgentStatusCountsSerializer()


class DashboardAlertsSerializer(serializers.Serializer):
    open = serializers.IntegerField(help_text="Alerts nobody has acknowledged yet.")
    acknowledged = serializers.IntegerField(help_text="Acknowledged, not yet resolved.")
    open_by_severity = AlertSeverityCountsSerializer()


class DashboardRuntimesSerializer(serializers.Serializer):
    """Runtimes of active tenants, by the status of their newest health sample."""

    total = serializers.IntegerField(help_text="Active tenants (one runtime each).")
    unhealthy = serializers.IntegerField(help_text="Newest sample unhealthy or unreachable.")
    unknown = serializers.IntegerField(help_text="No health sample yet.")
    by_status = RuntimeStatusCountsSerializer()


class PlatformDashboardSerializer(serializers.Serializer):
    tenants = DashboardTenantsSerializer()
    agents = DashboardAgentsSerializer()
    alerts = DashboardAlertsSerializer()
    runtimes = DashboardRuntimesSerializer()
    generated_at = serializers.DateTimeField()
