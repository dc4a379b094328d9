"""JSON Schemas for skill metadata and the role catalog."""

CAPABILITIES = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # What the skill may touch; shown to reviewers and tenant admins before install.
        "permissions": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z_]+:[a-z_]+$"},
            "uniqueItems": True,
        },
        "tools": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 64}, "uniqueItems": True},
        "network": {"type": "boolean"},
        "requires_secrets": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"}},
    },
}

ROLE_DEFAULT_SETTINGS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "model_tier": {"enum": ["fast", "balanced", "powerful"]},
        "thinking_mode": {"enum": ["off", "minimal", "low", "medium", "high", "xhigh", "adaptive", "max", "ultra"]},
        "tools_profile": {"enum": ["minimal", "coding", "messaging", "full"]},
        "identity": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"theme": {"type": "string", "maxLength": 200}, "emoji": {"type": "string", "maxLength": 8}},
        },
    },
}
