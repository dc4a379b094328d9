"""Channel verification: do a channel's stored secrets work?

One interface, two implementations, chosen by `settings.CHANNEL_VERIFIER`:

- `"local"` -> LocalChannelVerifier (the default when the setting is absent: development and
  tests). No network. Checks that the secrets the channel needs are present and shaped like
  real ones: Slack bot tokens `xoxb-<digits>-<digits>-<alphanumerics>`, app-level tokens
  `xapp-<digit>-<id>-<digits>-<hex>`, signing secrets (32 hex characters); Telegram bot tokens
  `<bot id digits>:<35 characters>`. Passing means "well-formed", not "accepted by Slack".
- `"http"` -> HttpChannelVerifier (production). The same checks first, then it asks the
  provider with the stored token: Slack `auth.test`, Telegram `getMe`. Passing means the
  provider accepted the token (and, for Slack, that it belongs to the configured workspace).
- any other value: the dotted path of a class implementing ChannelVerifier.

Secrets never appear in a result's message: a wrong token is described, never echoed.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

SLACK_BOT_TOKEN = re.compile(r"^xoxb-[0-9]+-[0-9]+-[A-Za-z0-9]+$")
SLACK_APP_TOKEN = re.compile(r"^xapp-[0-9]+-[A-Z0-9]+-[0-9]+-[A-Za-z0-9]+$")
SLACK_SIGNING_SECRET = re.compile(r"^[0-9a-f]{32}$")
TELEGRAM_BOT_TOKEN = re.compile(r"^[0-9]{5,12}:[A-Za-z0-9_-]{35}$")
TELEGRAM_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # Telegram's secret_token alphabet

# Secret name (as stored) -> (pattern, how a valid one looks), per channel type.
_FORMATS: dict[str, dict[str, tuple[re.Pattern, str]]] = {
    "slack": {
        "bot_token": (SLACK_BOT_TOKEN, "a Slack bot token (xoxb-...)"),
        "app_token": (SLACK_APP_TOKEN, "a Slack app-level token (xapp-...)"),
        "signing_secret": (SLACK_SIGNING_SECRET, "a Slack signing secret (32 hex characters)"),
    },
    "telegram": {
        "bot_token": (TELEGRAM_BOT_TOKEN, "a Telegram bot token (<bot id>:<35 characters>)"),
        "webhook_secret": (TELEGRAM_WEBHOOK_SECRET, "1-256 characters of A-Z, a-z, 0-9, _ and -"),
    },
}

# The API shows secret names in camelCase; messages use the names the caller knows.
_WIRE_NAMES = {"bot_token": "botToken", "app_token": "appToken", "signing_secret": "signingSecret",
               "webhook_secret": "webhookSecret"}


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    message: str = ""  # why it failed; empty when ok
    details: Mapping[str, Any] = field(default_factory=dict)  # what the provider said about the account


class ChannelVerifier(Protocol):
    def verify(self, *, channel_type: str, config: Mapping[str, Any], secrets: Mapping[str, str]) -> VerificationResult:
        ...


def required_secrets(channel_type: str, config: Mapping[str, Any]) -> list[str]:
    """The secrets a channel cannot work without (Slack's depend on its connection mode)."""
    if channel_type == "slack":
        # Socket mode (OpenClaw's default) connects out with the app token; HTTP mode receives
        # events and checks their signature with the signing secret.
        return ["bot_token", "signing_secret"] if config.get("mode") == "http" else ["bot_token", "app_token"]
    if channel_type == "telegram":
        return ["bot_token"]
    return []


class LocalChannelVerifier:
    """Checks presence and format of the secrets, offline."""

    def verify(self, *, channel_type: str, config: Mapping[str, Any], secrets: Mapping[str, str]) -> VerificationResult:
        problems = [f"{_WIRE_NAMES.get(name, name)} is not set"
                    for name in required_secrets(channel_type, config) if not secrets.get(name)]
        for name, value in sorted(secrets.items()):
            pattern, expected = _FORMATS.get(channel_type, {}).get(name, (None, ""))
            if pattern is not None and value and not pattern.match(value):
                problems.append(f"{_WIRE_NAMES.get(name, name)} does not look like {expected}")
        if problems:
            return VerificationResult(ok=False, message="; ".join(problems))
        return VerificationResult(ok=True)


class ProviderUnreachable(Exception):
    pass


class HttpChannelVerifier(LocalChannelVerifier):
    """The offline checks, then the provider's own verdict on the token."""

    def __init__(self, *, slack_api_url: str = "https://slack.com/api",
                 telegram_api_url: str = "https://api.telegram.org", timeout: float = 10.0):
        for url in (slack_api_url, telegram_api_url):
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"provider API URL must be http(s): {url!r}")
        self.slack_api_url = slack_api_url.rstrip("/")
        self.telegram_api_url = telegram_api_url.rstrip("/")
        self.timeout = timeout

    def verify(self, *, channel_type: str, config: Mapping[str, Any], secrets: Mapping[str, str]) -> VerificationResult:
        offline = super().verify(channel_type=channel_type, config=config, secrets=secrets)
        if not offline.ok:
            return offline  # no point sending a malformed token to the provider
        try:
            if channel_type == "slack":
                return self._slack(config, secrets["bot_token"])
            if channel_type == "telegram":
                return self._telegram(secrets["bot_token"])
        except ProviderUnreachable as exc:
            return VerificationResult(ok=False, message=str(exc))
        return offline  # web: nothing external to ask

    def _slack(self, config: Mapping[str, Any], bot_token: str) -> VerificationResult:
        answer = self._call("Slack", f"{self.slack_api_url}/auth.test", method="POST",
                            headers={"Authorization": f"Bearer {bot_token}",
                                     "Content-Type": "application/x-www-form-urlencoded"})
        if not answer.get("ok"):
            refusal = answer.get("error", "unknown error")
            return VerificationResult(ok=False, message=f"Slack refused the bot token ({refusal})")
        team_id = config.get("team_id")
        if team_id and answer.get("team_id") != team_id:
            return VerificationResult(ok=False, message=f"the bot token belongs to workspace {answer.get('team_id')}, "
                                                        f"not the configured teamId {team_id}")
        return VerificationResult(ok=True, details={"team": answer.get("team"), "team_id": answer.get("team_id"),
                                                    "bot_user_id": answer.get("user_id")})

    def _telegram(self, bot_token: str) -> VerificationResult:
        answer = self._call("Telegram", f"{self.telegram_api_url}/bot{bot_token}/getMe")
        if not answer.get("ok"):
            return VerificationResult(ok=False, message="Telegram refused the bot token "
                                                        f"({answer.get('description', 'unknown error')})")
        bot = answer.get("result") or {}
        return VerificationResult(ok=True, details={"bot_id": bot.get("id"), "username": bot.get("username")})

    def _call(self, provider: str, url: str, *, method: str = "GET", headers: Mapping[str, str] | None = None) -> dict:
        request = urllib.request.Request(url, method=method, headers=dict(headers or {}),  # noqa: S310 (scheme checked in __init__)
                                         data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = response.read(65536)
        except urllib.error.HTTPError as exc:
            body = exc.read(65536)  # both providers explain refusals in a JSON body (Telegram: 401)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            # The reason names the host at most; the URL (Telegram's holds the token) is not echoed.
            reason = getattr(exc, "reason", exc)
            raise ProviderUnreachable(f"could not reach {provider} ({type(reason).__name__})") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise ProviderUnreachable(f"{provider} answered with something that is not JSON") from None
        if not isinstance(answer, dict):
            raise ProviderUnreachable(f"{provider} answered with an unexpected JSON document")
        return answer


def get_verifier() -> ChannelVerifier:
    choice = getattr(settings, "CHANNEL_VERIFIER", "local")
    if choice == "local":
        return LocalChannelVerifier()
    if choice == "http":
        return HttpChannelVerifier(
            slack_api_url=getattr(settings, "SLACK_API_URL", "https://slack.com/api"),
            telegram_api_url=getattr(settings, "TELEGRAM_API_URL", "https://api.telegram.org"),
            timeout=getattr(settings, "CHANNEL_VERIFY_TIMEOUT", 10.0),
        )
    return import_string(choice)()
