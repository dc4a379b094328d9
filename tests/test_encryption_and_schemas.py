"""JSONB columns are validated against JSON Schemas kept in the code; secrets are encrypted at
rest with keys from settings, and the keys can be rotated."""

import json

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from django_otp.oath import totp

from aegis import crypto
from aegis.jsonschema import SchemaValidator, schema_errors, validate_against
from apps.accounts.models import EncryptedTOTPDevice
from apps.agents.models import Agent, AgentChannel, SkillInstallation
from apps.skills.models import AgentRole, Skill
from apps.tenants.models import Tenant
from tests.dbtools import fetchone

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def errors_of(instance, *, exclude=None) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean(exclude=exclude)
    return caught.value.message_dict


def assert_rejected(instance, field: str, *fragments: str, exclude=None) -> None:
    """full_clean fails on `field`, with a message naming each fragment (location and rule)."""
    messages = errors_of(instance, exclude=exclude)
    assert field in messages, messages
    text = " | ".join(messages[field])
    for fragment in fragments:
        assert fragment in text, text


@pytest.fixture
def agent_role(db) -> AgentRole:
    return AgentRole.objects.get_or_create(key="executive_assistant", defaults={"name": "Executive assistant"})[0]


@pytest.fixture
def agent(tenant_a, in_tenant, agent_role) -> Agent:
    with in_tenant(tenant_a):
        return Agent.objects.create(key="ea", name="EA", role=agent_role)


def new_tenant(**fields) -> Tenant:
    return Tenant(company_name="Hooli", slug="hooli", schema_name="t_hooli", admin_email="it@hooli.example",
                  **fields)


# --- JSON Schemas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ({"tiers": {"turbo": "openai/gpt-5"}}, ["tiers", "'turbo' is not one of", "(rule: enum)"]),
        ({"tiers": {"fast": "gpt-5"}}, ["tiers/fast", "(rule: pattern)"]),
        ({"fallbacks": ["a/b"] * 6}, ["fallbacks", "(rule: maxItems)"]),
        ({"thinking_default": "loud"}, ["thinking_default", "(rule: enum)"]),
        ({"temperature": 1}, ["(root)", "'temperature' was unexpected", "(rule: additionalProperties)"]),
    ],
)
def test_tenant_model_defaults_are_validated(db, value, fragments):
    assert_rejected(new_tenant(model_defaults=value), "model_defaults", *fragments)


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ({"memory_mb": 12}, ["memory_mb", "less than the minimum of 256", "(rule: minimum)"]),
        ({"cpus": 0}, ["cpus", "(rule: exclusiveMinimum)"]),
        ({"max_agents": "ten"}, ["max_agents", "(rule: type)"]),
        ({"network": "host"}, ["network", "(rule: enum)"]),
    ],
)
def test_tenant_resource_limits_are_validated(db, value, fragments):
    assert_rejected(new_tenant(resource_limits=value), "resource_limits", *fragments)


def test_valid_tenant_settings_pass(db):
    new_tenant(
        model_defaults={"tiers": {"fast": "openai/gpt-5-mini", "powerful": "anthropic/claude-opus-4"},
                        "fallbacks": ["openai/gpt-5"], "thinking_default": "medium"},
        resource_limits={"max_agents": 10, "cpus": 1.5, "memory_mb": 2048, "network": "internal"},
    ).full_clean()


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ({"email": "not-an-address"}, ["email", "(rule: format)"]),
        ({"working_hours": {"start": "25:00", "end": "18:00"}}, ["working_hours/start", "(rule: pattern)"]),
        ({"working_hours": {"start": "09:00"}}, ["working_hours", "'end' is a required property", "(rule: required)"]),
        ({"working_hours": {"start": "09:00", "end": "17:00", "days": ["mon", "funday"]}},
         ["working_hours/days/1", "(rule: enum)"]),
        ({"shoe_size": 44}, ["(root)", "(rule: additionalProperties)"]),
        ({"timezone": "Europe/Berlin; DROP"}, ["timezone", "(rule: pattern)"]),
    ],
)
def test_agent_assisted_user_is_validated(tenant_a, in_tenant, agent_role, value, fragments):
    with in_tenant(tenant_a):
        assert_rejected(Agent(key="x", name="X", role=agent_role, assisted_user=value), "assisted_user", *fragments)


def test_valid_assisted_user_passes(tenant_a, in_tenant, agent_role):
    with in_tenant(tenant_a):
        Agent(key="x", name="X", role=agent_role, assisted_user={
            "name": "Dana Scully", "email": "dana@acme.example", "title": "CEO", "timezone": "America/New_York",
            "working_hours": {"start": "08:30", "end": "18:00", "days": ["mon", "tue", "wed"]},
            "preferences": {"tone": "brief"},
        }).full_clean()


def skill(**fields) -> Skill:
    return Skill(**{"name": "Mail", "slug": "mail", "version": "1.0.0", **fields})


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ({"permissions": ["ReadEverything"]}, ["permissions/0", "(rule: pattern)"]),
        ({"permissions": ["mail:read", "mail:read"]}, ["permissions", "(rule: uniqueItems)"]),
        ({"network": "yes"}, ["network", "(rule: type)"]),
        ({"requires_secrets": ["api key"]}, ["requires_secrets/0", "(rule: pattern)"]),
        ({"root": True}, ["(root)", "(rule: additionalProperties)"]),
    ],
)
def test_skill_capabilities_are_validated(db, value, fragments):
    assert_rejected(skill(capabilities=value), "capabilities", *fragments)


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ({"type": "string"}, ["must describe an object", 'rule: "type": "object"']),
        ({"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}},
         ["not a valid JSON Schema", "metaschema"]),
        ({"type": 12}, ["not a valid JSON Schema", "metaschema"]),
        ([{"type": "object"}], ["not a valid JSON Schema"]),
    ],
)
def test_skill_configuration_must_be_a_json_schema_of_an_object(db, value, fragments):
    assert_rejected(skill(configuration=value), "configuration", *fragments)


def test_valid_skill_metadata_passes(db):
    skill(
        capabilities={"permissions": ["mail:read", "mail:send"], "tools": ["send_mail"], "network": True,
                      "requires_secrets": ["SMTP_PASSWORD"]},
        configuration={"type": "object", "properties": {"signature": {"type": "string", "maxLength": 500}},
                       "additionalProperties": False},
    ).full_clean()


@pytest.mark.parametrize(
    ("channel_type", "config", "fragments"),
    [
        ("slack", {"team_id": "acme"}, ["team_id", "(rule: pattern)"]),
        ("slack", {"mode": "webhook"}, ["mode", "(rule: enum)"]),
        ("telegram", {"webhook_url": "http://bot.acme.example/hook"}, ["webhook_url", "(rule: pattern)"]),
        ("telegram", {"team_id": "T123"}, ["(root)", "(rule: additionalProperties)"]),
        ("web", {"greeting": 42}, ["greeting", "(rule: type)"]),
        ("web", {"allowed_origins": "https://acme.example"}, ["allowed_origins", "(rule: type)"]),
        ("web", {"allowed_origins": ["https://acme.example/"]}, ["allowed_origins/0", "is not a browser origin",
                                                                "(rule: pattern)"]),
    ],
)
def test_channel_config_is_validated_per_type(tenant_a, in_tenant, agent, channel_type, config, fragments):
    with in_tenant(tenant_a):
        channel = AgentChannel(agent=agent, type=channel_type, name="main", config=config)
        assert_rejected(channel, "config", *fragments)


def test_channel_secrets_must_be_known_non_empty_strings(tenant_a, in_tenant, agent):
    with in_tenant(tenant_a):
        assert_rejected(AgentChannel(agent=agent, type="telegram", name="tg", secrets={"signing_secret": "x"}),
                        "secrets", "unknown secret(s) for telegram: signing_secret", "allowed: bot_token")
        assert_rejected(AgentChannel(agent=agent, type="slack", name="sl", secrets={"bot_token": 123}),
                        "secrets", "must be non-empty strings: bot_token")


def test_valid_channels_pass(tenant_a, in_tenant, agent):
    with in_tenant(tenant_a):
        AgentChannel(agent=agent, type="slack", name="slack", config={"mode": "socket", "team_id": "T0123ABC"},
                     secrets={"bot_token": "xoxb-1", "app_token": "xapp-1"}).full_clean()
        AgentChannel(agent=agent, type="telegram", name="tg", config={"webhook_url": "https://acme.example/tg"},
                     secrets={"bot_token": "123:abc"}).full_clean()
        AgentChannel(agent=agent, type="web", name="web", config={"allowed_origins": ["https://acme.example"]}
                     ).full_clean()


@pytest.fixture
def calendar_skill(db) -> Skill:
    return Skill.objects.create(
        name="Calendar", slug="calendar", version="2.0.0", status="approved", reviewed_at=timezone.now(),
        configuration={"type": "object", "required": ["calendar_id"], "additionalProperties": False,
                       "properties": {"calendar_id": {"type": "string", "minLength": 3},
                                      "lookahead_days": {"type": "integer", "minimum": 1, "maximum": 90}}},
    )


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ({}, ["'calendar_id' is a required property", "(rule: required)"]),
        ({"calendar_id": 7}, ["calendar_id", "(rule: type)"]),
        ({"calendar_id": "primary", "lookahead_days": 365}, ["lookahead_days", "(rule: maximum)"]),
        ({"calendar_id": "primary", "colour": "red"}, ["(rule: additionalProperties)"]),
    ],
)
def test_installation_config_is_validated_by_the_skills_own_schema(
    tenant_a, in_tenant, agent, calendar_skill, config, fragments
):
    with in_tenant(tenant_a):
        assert_rejected(SkillInstallation(skill=calendar_skill, agent=agent, config=config), "config", *fragments)
        SkillInstallation(skill=calendar_skill, agent=agent, config={"calendar_id": "primary"}).full_clean()
        SkillInstallation(skill=calendar_skill, agent=None, config={"calendar_id": "team"}).full_clean()


def test_only_approved_skills_install(tenant_a, in_tenant, agent):
    pending = Skill.objects.create(name="Beta", slug="beta", version="0.1.0")
    with in_tenant(tenant_a):
        assert_rejected(SkillInstallation(skill=pending, agent=agent), "skill", "only approved skills")


# --- Encryption at rest --------------------------------------------------------------------------------------


def raw_column(table: str, column: str, pk) -> str:
    return fetchone(f"SELECT {column} FROM {table} WHERE id = %s", [pk])[0]  # noqa: S608 (fixed names)


def test_channel_secrets_are_stored_as_ciphertext(tenant_a, in_tenant, agent):
    secrets = {"bot_token": "xoxb-very-secret-token-4242", "signing_secret": "s1gn1ng-s3cr3t"}
    with in_tenant(tenant_a):
        channel = AgentChannel.objects.create(agent=agent, type="slack", name="slack", secrets=secrets)
        stored = raw_column("agents_agentchannel", "secrets", channel.pk)
        assert stored.startswith("gAAAAA")  # a Fernet token (version byte 0x80, base64)
        assert "xoxb" not in stored and "s1gn1ng" not in stored and "bot_token" not in stored
        assert json.loads(crypto.fernet().decrypt(stored.encode())) == secrets
        assert AgentChannel.objects.get(pk=channel.pk).secrets == secrets
        assert channel.secret_hints == {"bot_token": "…4242", "signing_secret": "…cr3t"}


def test_totp_keys_are_stored_as_ciphertext(platform_admin):
    device = EncryptedTOTPDevice.objects.create(user=platform_admin, name="phone")
    stored = raw_column("accounts_encryptedtotpdevice", "key", device.pk)
    assert device.key not in stored and stored.startswith("gAAAAA")
    loaded = EncryptedTOTPDevice.objects.get(pk=device.pk)
    assert loaded.key == device.key and len(loaded.key) == 40  # 20 random bytes, hex
    # The decrypted key is the one that verifies codes.
    code = totp(bytes.fromhex(loaded.key), step=loaded.step, digits=loaded.digits)
    assert loaded.verify_token(f"{code:06d}")


def test_key_rotation(tenant_a, in_tenant, agent, platform_admin):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        device = EncryptedTOTPDevice.objects.create(user=platform_admin, name="phone")
        with in_tenant(tenant_a):
            channel = AgentChannel.objects.create(agent=agent, type="telegram", name="tg",
                                                  secrets={"bot_token": "123:old-token"})
            old_token = raw_column("agents_agentchannel", "secrets", channel.pk)
        totp_key = device.key

    # The old key already gone: unreadable, and loudly so.
    with (override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]), in_tenant(tenant_a),
          pytest.raises(ImproperlyConfigured, match="cannot be decrypted")):
        AgentChannel.objects.get(pk=channel.pk)

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        with in_tenant(tenant_a):  # new primary key, old ciphertext still reads
            assert AgentChannel.objects.get(pk=channel.pk).secrets == {"bot_token": "123:old-token"}
        rotated = crypto.reencrypt(old_token)
        assert json.loads(Fernet(NEW_KEY).decrypt(rotated.encode())) == {"bot_token": "123:old-token"}
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY).decrypt(rotated.encode())

        call_command("rotate_encryption_key", verbosity=0)

    with in_tenant(tenant_a):
        stored = raw_column("agents_agentchannel", "secrets", channel.pk)
    Fernet(NEW_KEY).decrypt(stored.encode())  # now under the new key
    Fernet(NEW_KEY).decrypt(raw_column("accounts_encryptedtotpdevice", "key", device.pk).encode())
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):  # the old key can be dropped
        assert EncryptedTOTPDevice.objects.get(pk=device.pk).key == totp_key
        with in_tenant(tenant_a):
            assert AgentChannel.objects.get(pk=channel.pk).secrets == {"bot_token": "123:old-token"}



@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("^T[A-Z0-9]+$", "T0123", True),
    ("^T[A-Z0-9]+$", "T0123\n", False),  # Python's bare `$` would accept it; JSON Schema's does not
    ("^([01][0-9]|2[0-3]):[0-5][0-9]$", "09:30\n", False),
    ("^[A-Z]{3}$", "USD", True),
    (r"^\$[0-9]+$", "$5", True),  # an escaped dollar stays a literal dollar
    ("^[$]+$", "$$", True),  # so does one inside a character class
    ("^[$]+$", "$$\n", False),
    ("[0-9]", "a1b", True),  # unanchored patterns still match anywhere, as JSON Schema says
])
def test_patterns_end_where_json_schema_says_they_end(pattern, value, matches):
    """`pattern` is ECMA-262: `$` is the end of the string, not "before a final newline" as in Python."""
    errors = schema_errors(SchemaValidator({"type": "string", "pattern": pattern}), value)
    assert (errors == []) is matches, errors


def test_a_skills_own_settings_schema_gets_the_same_pattern_rules():
    with pytest.raises(ValidationError):
        validate_against({"type": "object", "properties": {"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
                         {"currency": "EUR\n"})
    validate_against({"type": "object", "properties": {"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
                     {"currency": "EUR"})
