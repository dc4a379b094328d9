from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models

from aegis.db import BaseModel, enum_check
from aegis.jsonschema import JSONSchemaValidator, validate_is_json_schema

# Semantic Versioning 2.0.0, the official regular expression.
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class SkillStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class SkillCategory(models.TextChoices):
    PRODUCTIVITY = "productivity"
    COMMUNICATION = "communication"
    SALES = "sales"
    SUPPORT = "support"
    ENGINEERING = "engineering"
    DATA = "data"
    OPERATIONS = "operations"
    SECURITY = "security"
    OTHER = "other"


class Skill(BaseModel):
    """A marketplace entry: one version of a skill. Only approved versions can be installed."""

    Status = SkillStatus
    Category = SkillCategory

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=64, db_index=False)  # skills_skill_slug_version_unique leads with it
    version = models.CharField(max_length=64)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.OTHER)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    description = models.TextField(blank=True)
    author = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="authored_skills"
    )
    capabilities = models.JSONField(
        default=dict, blank=True, validators=[JSONSchemaValidator("apps.skills.json_schemas.CAPABILITIES")]
    )
    # A JSON Schema describing the skill's settings; installations are validated against it.
    configuration = models.JSONField(default=dict, blank=True, validators=[validate_is_json_schema])
    review_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="reviewed_skills"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("name", weight="A", config="english")
        + SearchVector("description", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="skills_skill_slug_version_unique"),
            enum_check("status", SkillStatus, table="skills_skill"),
            enum_check("category", SkillCategory, table="skills_skill"),
            models.CheckConstraint(
                condition=models.Q(version__regex=SEMVER_PATTERN), name="skills_skill_version_semver"
            ),
            models.CheckConstraint(
                condition=models.Q(status="pending") | models.Q(reviewed_at__isnull=False),
                name="skills_skill_reviewed_has_timestamp",
            ),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="skills_search_idx"),
            GinIndex(fields=["capabilities"], name="skills_capabilities_idx", opclasses=["jsonb_path_ops"]),
            models.Index(fields=["status", "category", "name"], name="skills_status_category_idx"),
            models.Index(fields=["status", "-created_at"], name="skills_status_created_idx"),
            models.Index(fields=["status", "name"], name="skills_status_name_idx"),  # marketplace default order
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class AgentRole(BaseModel):
    """Layer 2: the platform's role catalog. Each role carries default skills and settings;
    tenants may override them (agents.RoleOverride)."""

    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # Skill slugs, not versions: a role follows the newest approved version of each skill.
    default_skills = ArrayField(models.SlugField(max_length=64), default=list, blank=True)
    default_settings = models.JSONField(
        default=dict, blank=True, validators=[JSONSchemaValidator("apps.skills.json_schemas.ROLE_DEFAULT_SETTINGS")]
    )

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key
