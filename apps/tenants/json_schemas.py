"""JSON Schemas for the tenant's JSONB settings (stored snake_case; the API shows camelCase)."""

MODEL_TIERS = ["fast", "balanced", "powerful"]
THINKING_LEVELS = ["off", "minimal", "low", "medium", "high", "xhigh", "adaptive", "max", "ultra"]
MODEL_REF = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:-]*$"}

MODEL_DEFAULTS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "tiers": {
            "type": "object",
            "propertyNames": {"enum": MODEL_TIERS},
            "additionalProperties": MODEL_REF,
        },
        "fallbacks": {"type": "array", "items": MODEL_REF, "maxItems": 5},
        "thinking_default": {"enum": THINKING_LEVELS},
    },
}

RESOURCE_LIMITS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_agents": {"type": "integer", "minimum": 0, "maximum": 10000},
        "max_channels_per_agent": {"type": "integer", "minimum": 0, "maximum": 100},
        "cpus": {"type": "number", "exclusiveMinimum": 0, "maximum": 64},
        "memory_mb": {"type": "integer", "minimum": 256, "maximum": 262144},
        "pids_limit": {"type": "integer", "minimum": 64, "maximum": 65536},
        "monthly_token_budget": {"type": "integer", "minimum": 0},
        "network": {"enum": ["bridge", "internal"]},
    },
}

# What a tenant gets when its plan says nothing more specific.
PLAN_RESOURCE_LIMITS = {
    "starter": {
        "max_agents": 5,
        "max_channels_per_agent": 3,
        "cpus": 1,
        # An OpenClaw gateway's process tree measured 0.95-1.14 GB here: 1 GB would be OOM-killed.
        "memory_mb": 1536,
        "pids_limit": 256,
        "monthly_token_budget": 5_000_000,
        "network": "bridge",
    },
    "growth": {
        "max_agents": 25,
        "max_channels_per_agent": 5,
        "cpus": 2,
        "memory_mb": 2048,
        "pids_limit": 512,
        "monthly_token_budget": 50_000_000,
        "network": "bridge",
    },
    "enterprise": {
        "max_agents": 250,
        "max_channels_per_agent": 10,
        "cpus": 4,
        "memory_mb": 8192,
        "pids_limit": 1024,
        "monthly_token_budget": 500_000_000,
        "network": "bridge",
    },
}
