"""JSON Schemas for agent-level JSONB settings (stored snake_case; the API shows camelCase)."""

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CLOCK_TIME = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}

ASSISTED_USER = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "title": {"type": "string", "maxLength": 200},
        "timezone": {"type": "string", "pattern": "^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", "maxLength": 64},
        "working_hours": {
            "type": "object",
            "additionalProperties": False,
            "required": ["start", "end"],
            "properties": {
                "start": CLOCK_TIME,
                "end": CLOCK_TIME,
                "days": {"type": "array", "items": {"enum": WEEKDAYS}, "uniqueItems": True},
            },
        },
        "preferences": {"type": "object", "maxProperties": 50},
    },
}

# Non-secret settings per channel type; secrets go to AgentChannel.secrets (encrypted).
CHANNEL_CONFIG = {
    "slack": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mode": {"enum": ["socket", "http"]},
            "team_id": {"type": "string", "pattern": "^T[A-Z0-9]+$"},
            "dm_policy": {"enum": ["pairing", "allowlist", "open", "disabled"]},
            "group_policy": {"enum": ["allowlist", "open", "disabled"]},
            "allow_from": {"type": "array", "items": {"type": "string"}},
        },
    },
    "telegram": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "webhook_url": {"type": "string", "format": "uri", "pattern": "^https://"},
            "dm_policy": {"enum": ["pairing", "allowlist", "open", "disabled"]},
            "allow_from": {"type": "array", "items": {"type": "string"}},
        },
    },
    "web": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "allowed_origins": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "greeting": {"type": "string", "maxLength": 500},
        },
    },
}

# Which secret names each channel type accepts (values are strings, encrypted at rest).
CHANNEL_SECRETS = {
    "slack": ["bot_token", "app_token", "signing_secret"],
    "telegram": ["bot_token", "webhook_secret"],
    "web": [],
}
