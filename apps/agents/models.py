"""Tenant-schema models: every row here belongs to the tenant whose schema holds it.

Foreign keys into the public schema (skills, roles, users) use on_delete=DO_NOTHING on purpose:
Django's deletion collector only sees the current schema, so it cannot cascade or protect
across tenants. The database can: those constraints are plain NO ACTION foreign keys, so
PostgreSQL refuses to delete a skill or role that any tenant's rows still reference. The one
actor column, SkillInstallation.installed_by, is ON DELETE SET NULL in the database instead
(migration 0002), like every other actor column: deleting a user must not be blocked by a
skill they once installed in some tenant's schema.
"""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from aegis.crypto import EncryptedJSONField
from aegis.db import AppendOnlyModel, BaseModel, enum_check
from aegis.jsonschema import JSONSchemaValidator, validate_against
from apps.agents.json_schemas import CHANNEL_CONFIG, CHANNEL_SECRETS
from apps.tenants.json_schemas import MODEL_TIERS, THINKING_LEVELS

AGENT_KEY_PATTERN = r"^[a-z0-9_][a-z0-9_-]{0,63}$"  # OpenClaw's agent id pattern


class AgentStatus(models.TextChoices):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ERROR = "error"


ModelTier = models.TextChoices("ModelTier", [(tier.upper(), tier) for tier in MODEL_TIERS])
ThinkingMode = models.TextChoices("ThinkingMode", [(level.upper(), level) for level in THINKING_LEVELS])


class ChannelType(models.TextChoices):
    SLACK = "slack"
    TELEGRAM = "telegram"
    WEB = "web"


class ChannelStatus(models.TextChoices):
    PENDING = "pending"
    CONNECTED = "connected"
    ERROR = "error"
    DISABLED = "disabled"


class ActivityKind(models.TextChoices):
    MESSAGE_RECEIVED = "message_received"
    MESSAGE_SENT = "message_sent"
    SKILL_INVOKED = "skill_invoked"
    ERROR = "error"
    STATUS_CHANGED = "status_changed"
    CONFIG_CHANGED = "config_changed"


class MetricsPeriod(models.TextChoices):
    HOUR = "hour"
    DAY = "day"


class Agent(BaseModel):
    Status = AgentStatus

    ModelTier = ModelTier
    ThinkingMode = ThinkingMode

    key = models.CharField(max_length=64, unique=True, help_text="The agent's id in the OpenClaw runtime.")
    name = models.CharField(max_length=100)
    role = models.ForeignKey(
        "skills.AgentRole", to_field="key", db_column="role_key", on_delete=models.DO_NOTHING, related_name="+",
        db_index=False,  # agents_role_created_idx (role, -created_at) leads with it
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # None inherits from the role, the tenant or the platform (apps/agents/resolver.py).
    model_tier = models.CharField(max_length=10, choices=ModelTier.choices, null=True, blank=True)
    thinking_mode = models.CharField(max_length=10, choices=ThinkingMode.choices, null=True, blank=True)
    assisted_user = models.JSONField(
        default=dict, blank=True, validators=[JSONSchemaValidator("apps.agents.json_schemas.ASSISTED_USER")]
    )
    description = models.TextField(blank=True)
    status_reason = models.TextField(blank=True)
    # Bumped on every write; the API's ETag, so concurrent edits cannot silently overwrite.
    revision = models.PositiveIntegerField(default=1)
    search_vector = models.GeneratedField(
        expression=SearchVector("name", weight="A", config="english")
        + SearchVector("description", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="agents_agent_name_ci_unique"),
            models.CheckConstraint(condition=models.Q(key__regex=AGENT_KEY_PATTERN), name="agents_agent_key_pattern"),
            enum_check("status", AgentStatus, table="agents_agent"),
            enum_check("model_tier", ModelTier, table="agents_agent", nullable=True),
            enum_check("thinking_mode", ThinkingMode, table="agents_agent", nullable=True),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="agents_status_created_idx"),
            models.Index(fields=["role", "-created_at"], name="agents_role_created_idx"),
            models.Index(fields=["-created_at"], name="agents_created_idx"),
            GinIndex(fields=["search_vector"], name="agents_search_idx"),
            GinIndex(fields=["assisted_user"], name="agents_assisted_user_idx", opclasses=["jsonb_path_ops"]),
        ]

    def __str__(self) -> str:
        return self.name


class AgentChannel(BaseModel):
    """Where an agent talks (Slack, Telegram, web chat). Secrets are encrypted in `secrets`;
    `secret_hints` keeps only the last four characters of each, for display."""

    Type = ChannelType

    Status = ChannelStatus

    # Indexed by agents_channel_agent_name_unique and agents_channel_agent_type_idx.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="channels", db_index=False)
    type = models.CharField(max_length=20, choices=Type.choices)
    name = models.CharField(max_length=100)
    config = models.JSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(default=dict, blank=True)
    secret_hints = models.JSONField(default=dict, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    last_error = models.TextField(blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["agent", "name"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "name"], name="agents_channel_agent_name_unique"),
            enum_check("type", ChannelType, table="agents_agentchannel"),
            enum_check("status", ChannelStatus, table="agents_agentchannel"),
        ]
        indexes = [
            models.Index(fields=["agent", "type"], name="agents_channel_agent_type_idx"),
            models.Index(fields=["status"], name="agents_channel_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"

    def clean(self) -> None:
        errors = {}
        if self.type in CHANNEL_CONFIG:
            try:
                validate_against(CHANNEL_CONFIG[self.type], self.config)
            except ValidationError as exc:
                errors["config"] = exc.messages
            secrets = self.secrets or {}
            secret_errors = []
            if not isinstance(secrets, dict):
                secret_errors.append("secrets must be an object of name -> string")
                secrets = {}
            unknown = sorted(set(secrets) - set(CHANNEL_SECRETS[self.type]))
            if unknown:
                secret_errors.append(
                    f"unknown secret(s) for {self.type}: {', '.join(unknown)}; "
                    f"allowed: {', '.join(CHANNEL_SECRETS[self.type]) or 'none'}"
                )
            not_text = sorted(name for name, value in secrets.items() if not isinstance(value, str) or not value)
            if not_text:
                secret_errors.append(f"secret(s) must be non-empty strings: {', '.join(not_text)}")
            if secret_errors:
                errors["secrets"] = secret_errors
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        self.secret_hints = {name: "…" + value[-4:] for name, value in (self.secrets or {}).items() if value}
        super().save(*args, **kwargs)


class SkillInstallation(BaseModel):
    """A skill enabled for one agent, or for the tenant's Shared Toolbox when `agent` is null.
    An agent-level row with enabled=False switches off a skill the agent would inherit."""

    skill = models.ForeignKey("skills.Skill", on_delete=models.DO_NOTHING, related_name="+")
    agent = models.ForeignKey(  # indexed by agents_install_agent_skill_unique (agent, skill)
        Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="skill_installations", db_index=False
    )
    enabled = models.BooleanField(default=True)
    config = models.JSONField(default=dict, blank=True)
    # An actor: the database sets it NULL when the user is deleted (ON DELETE SET NULL, migration
    # 0002; Django 5.2 cannot declare a database-level action, hence DO_NOTHING here).
    installed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # NULLS NOT DISTINCT: the toolbox (agent IS NULL) also holds a skill at most once.
            models.UniqueConstraint(
                fields=["agent", "skill"], name="agents_install_agent_skill_unique", nulls_distinct=False
            ),
        ]

    def __str__(self) -> str:
        return f"{self.skill_id} on {self.agent_id or 'toolbox'}"

    def clean(self) -> None:
        if self.skill_id and self.skill.status != "approved":
            raise ValidationError({"skill": "only approved skills can be installed"})
        if self.skill_id:
            try:
                validate_against(self.skill.configuration or {"type": "object"}, self.config)
            except ValidationError as exc:
                raise ValidationError({"config": exc.messages}) from exc


class RoleOverride(BaseModel):
    """This tenant's changes to a platform role's defaults (layer 2)."""

    role = models.OneToOneField(
        "skills.AgentRole", to_field="key", db_column="role_key", on_delete=models.DO_NOTHING, related_name="+"
    )
    # None keeps the platform's list; a list replaces it.
    default_skills = ArrayField(models.SlugField(max_length=64), null=True, blank=True)
    default_settings = models.JSONField(
        default=dict, blank=True, validators=[JSONSchemaValidator("apps.skills.json_schemas.ROLE_DEFAULT_SETTINGS")]
    )

    def __str__(self) -> str:
        return f"override of {self.role_id}"


class AgentActivity(AppendOnlyModel):
    """What an agent did, newest first. Append-only; pruned by age by the retention task."""

    Kind = ActivityKind

    # Indexed by agents_activity_agent_idx (agent, -created_at, -id).
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="activities", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.ForeignKey(AgentChannel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.CharField(max_length=500)
    payload = models.JSONField(default=dict, blank=True)
    # Tokens and latency for message and skill events; the metrics rollup sums these.
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [enum_check("kind", ActivityKind, table="agents_agentactivity")]
        indexes = [
            models.Index(fields=["agent", "-created_at", "-id"], name="agents_activity_agent_idx"),
            models.Index(fields=["-created_at", "-id"], name="agents_activity_created_idx"),
            models.Index(fields=["kind", "-created_at"], name="agents_activity_kind_idx"),
        ]
        verbose_name_plural = "agent activities"

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary}"


class AgentMetrics(BaseModel):
    """Hourly and daily rollups of AgentActivity per agent."""

    Period = MetricsPeriod

    # Indexed by agents_metrics_bucket_unique (agent, period, period_start).
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="metrics", db_index=False)
    period = models.CharField(max_length=4, choices=Period.choices)
    period_start = models.DateTimeField()
    messages = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    errors = models.PositiveIntegerField(default=0)
    avg_latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["agent", "period", "period_start"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "period", "period_start"], name="agents_metrics_bucket_unique"),
            enum_check("period", MetricsPeriod, table="agents_agentmetrics"),
        ]
        indexes = [models.Index(fields=["period", "period_start"], name="agents_metrics_period_idx")]
        verbose_name_plural = "agent metrics"
