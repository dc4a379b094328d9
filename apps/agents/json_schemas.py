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

# A browser origin as browsers send it in the `Origin` header (RFC 6454 serialisation), which is what
# an allowed origin is compared with: `http` or `https`, `://`, a lowercase host name, IPv4 address
# or bracketed IPv6 address, an optional port 1-65535, and nothing after it: no path, query, fragment,
# user info or trailing slash (a trailing slash is refused, not normalised: the value stored is the
# value compared). The `description` is also the message of a value that does not match.
BROWSER_ORIGIN = {
    "type": "string",
    "format": "uri",
    "pattern": (
        r"^https?://"
        r"(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)"
        r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?$"
    ),
    "maxLength": 300,
    "description": "a browser origin, `scheme://host[:port]`: http or https, a lowercase host, an optional port, "
                   "and nothing after it (no path, query or trailing slash), e.g. https://app.example.com",
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
            "allowed_origins": {"type": "array", "items": BROWSER_ORIGIN},
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
