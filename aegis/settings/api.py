"""REST API settings: DRF, JWT, OpenAPI, error shape. Imported at the end of base.py."""

from datetime import timedelta

from .base import env

API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1_048_576)  # 413 above this
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

REST_FRAMEWORK = {
    # Same output as djangorestframework_camel_case.render.CamelCaseJSONRenderer, at a fraction of
    # its cost (aegis/api/renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["aegis.api.renderers.CamelCaseJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["aegis.api.parsers.CamelCaseJSONParser"],  # NUL refused (aegis/api/parsers.py)
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "aegis.api.authentication.AccessTokenAuthentication",
        "aegis.api.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["aegis.api.permissions.AccessPolicy"],
    "DEFAULT_PAGINATION_CLASS": "aegis.api.pagination.PagePagination",
    "DEFAULT_FILTER_BACKENDS": [],
    "DEFAULT_THROTTLE_CLASSES": ["aegis.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "principal": env("API_RATE_LIMIT", default="1200/min"),
        "login_ip": env("LOGIN_RATE_LIMIT_IP", default="30/min"),
        "login_account": env("LOGIN_RATE_LIMIT_ACCOUNT", default="10/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "aegis.api.schema.AegisAutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
}

# JSON kept verbatim on the wire (skill settings and their schemas are user-defined keys).
JSON_CAMEL_CASE = {
    "JSON_UNDERSCOREIZE": {
        "ignore_fields": ("configuration", "config", "capabilities", "preferences", "payload"),
    },
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "aegis.api.errors.ApiExceptionHandler",
    "EXCEPTION_FORMATTER_CLASS": "aegis.api.errors.ApiErrorFormatter",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
}

ACCESS_TOKEN_LIFETIME = timedelta(minutes=env.int("ACCESS_TOKEN_MINUTES", default=10))
REFRESH_TOKEN_LIFETIME = timedelta(days=env.int("REFRESH_TOKEN_DAYS", default=14))
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": ACCESS_TOKEN_LIFETIME,
    "REFRESH_TOKEN_LIFETIME": REFRESH_TOKEN_LIFETIME,
    "ALGORITHM": "HS256",
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}
MFA_TOKEN_LIFETIME = timedelta(minutes=5)
LOGIN_LOCKOUT_THRESHOLD = env.int("LOGIN_LOCKOUT_THRESHOLD", default=5)
LOGIN_LOCKOUT_PERIOD = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
INVITE_LIFETIME = timedelta(days=env.int("INVITE_DAYS", default=7))
PASSWORD_RESET_TIMEOUT = 60 * 60  # seconds; Django's reset tokens expire after this
# The link in the password-reset e-mail (the web app's reset page); {uid} and {token} are filled in.
# Links in e-mails point at the web frontend; production sets these to its real URLs.
INVITE_ACCEPT_URL = env("INVITE_ACCEPT_URL", default="http://localhost:3000/accept-invite#token={token}")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Aegis <no-reply@aegis.local>")
PASSWORD_RESET_URL = env("PASSWORD_RESET_URL", default="http://localhost:3000/reset-password?uid={uid}&token={token}")

SPECTACULAR_SETTINGS = {
    "TITLE": "Aegis API",
    "DESCRIPTION": "Control plane for per-tenant OpenClaw agent runtimes. See docs/api-contract.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No call to the online validator.swagger.io: the docs work without internet access.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Stable enum names where a field name (status, role, tier) has different choice sets.
    "ENUM_NAME_OVERRIDES": {
        "ErrorCodeEnum": "aegis.api.schema.ERROR_CODE_VALUES",
        "RoleEnum": "apps.accounts.models.Role",
        "MemberRoleEnum": "apps.accounts.models.MemberRole",
        "MemberStatusEnum": "apps.accounts.models.TeamMemberStatus",
        "InviteStatusEnum": "apps.accounts.selectors.INVITE_STATUSES",
        "ApiKeyStatusEnum": "apps.accounts.selectors.API_KEY_STATUSES",
        "ChannelStatusEnum": "apps.agents.models.ChannelStatus",
        "ModelTierEnum": "apps.agents.models.ModelTier",
        # Platform console (several components have a `status`, `type` or thinking level field).
        "TenantStatusEnum": "apps.tenants.models.TenantStatus",
        "HealthStatusEnum": "apps.monitoring.models.HealthStatus",
        "AlertStatusEnum": "apps.monitoring.models.AlertStatus",
        "SkillStatusEnum": "apps.skills.models.SkillStatus",
        "ThinkingModeEnum": "apps.agents.models.ThinkingMode",
        "ChannelTypeEnum": "apps.agents.models.ChannelType",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
    ],
    # Security schemes (BearerAuth, ApiKeyAuth) come from the extensions in aegis.api.schema.
}

# Layer-0 defaults of every agent (apps/agents/resolver.py): tenants and roles override them.
PLATFORM_AGENT_DEFAULTS = {"model_tier": "balanced", "thinking_mode": "medium", "tools_profile": "messaging"}
PLATFORM_MODEL_DEFAULTS = {
    "tiers": {
        "fast": env("MODEL_TIER_FAST", default="anthropic/claude-haiku-4-5"),
        "balanced": env("MODEL_TIER_BALANCED", default="anthropic/claude-sonnet-4-5"),
        "powerful": env("MODEL_TIER_POWERFUL", default="anthropic/claude-opus-4-1"),
    },
    "fallbacks": env.list("MODEL_FALLBACKS", default=["openai/gpt-5-mini"]),
}
