"""Channel verifiers: the offline format checks, and the HTTP verifier against local stand-ins
for Slack's auth.test and Telegram's getMe (real HTTP over loopback, no internet)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.agents.verifiers import HttpChannelVerifier, LocalChannelVerifier, get_verifier

BOT = "xoxb-1234567890-9876543210-AbCdEfGhIjKlMnOpQrStUvWx"
APP = "xapp-1-A0123456789-1234567890123-0123456789abcdef0123456789abcdef"
SIGNING = "0123456789abcdef0123456789abcdef"
TELEGRAM = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"

local = LocalChannelVerifier()


@pytest.mark.parametrize(("channel_type", "config", "secrets", "problem"), [
    ("slack", {}, {"bot_token": BOT, "app_token": APP}, None),
    ("slack", {"mode": "socket"}, {"bot_token": BOT}, "appToken is not set"),
    ("slack", {"mode": "http"}, {"bot_token": BOT, "signing_secret": SIGNING}, None),
    ("slack", {"mode": "http"}, {"bot_token": BOT}, "signingSecret is not set"),
    ("slack", {}, {"bot_token": "xoxp-1-2-user", "app_token": APP}, "botToken does not look like a Slack bot token"),
    ("slack", {}, {"bot_token": BOT, "app_token": "xapp-nope"}, "appToken does not look like a Slack app-level"),
    ("slack", {"mode": "http"}, {"bot_token": BOT, "signing_secret": "NOT-HEX-" * 4}, "signingSecret does not look"),
    ("telegram", {}, {"bot_token": TELEGRAM}, None),
    ("telegram", {}, {}, "botToken is not set"),
    ("telegram", {}, {"bot_token": TELEGRAM[:-1]}, "botToken does not look like a Telegram bot token"),
    ("telegram", {}, {"bot_token": TELEGRAM, "webhook_secret": "has spaces in it"}, "webhookSecret does not look"),
    ("web", {}, {}, None),
])
def test_local_verifier_checks_presence_and_format(channel_type, config, secrets, problem):
    result = local.verify(channel_type=channel_type, config=config, secrets=secrets)
    assert result.ok is (problem is None)
    if problem:
        assert problem in result.message
    for value in secrets.values():
        assert value not in result.message


class Provider(BaseHTTPRequestHandler):
    """Slack (POST /api/auth.test) and Telegram (GET /bot<token>/getMe) as they answer."""

    requests: list[str] = []

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        self.requests.append(self.path)
        if self.headers.get("Authorization") == f"Bearer {BOT}":
            self._answer(200, {"ok": True, "team": "Acme", "team_id": "T0123ABC", "user_id": "UBOT"})
        else:
            self._answer(200, {"ok": False, "error": "invalid_auth"})

    def do_GET(self):
        self.requests.append(self.path)
        if self.path == f"/bot{TELEGRAM}/getMe":
            self._answer(200, {"ok": True, "result": {"id": 123456789, "is_bot": True, "username": "acme_bot"}})
        else:
            self._answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    Provider.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield HttpChannelVerifier(slack_api_url=f"{base}/api", telegram_api_url=base, timeout=5)
    server.shutdown()
    server.server_close()


def test_http_verifier_accepts_what_slack_accepts(provider):
    result = provider.verify(channel_type="slack", config={"team_id": "T0123ABC"},
                             secrets={"bot_token": BOT, "app_token": APP})
    assert result.ok and result.details == {"team": "Acme", "team_id": "T0123ABC", "bot_user_id": "UBOT"}
    assert Provider.requests == ["/api/auth.test"]


def test_http_verifier_reports_slacks_refusal_and_a_workspace_mismatch(provider):
    revoked = BOT.replace("AbC", "ZzZ")
    refused = provider.verify(channel_type="slack", config={}, secrets={"bot_token": revoked, "app_token": APP})
    assert not refused.ok and refused.message == "Slack refused the bot token (invalid_auth)"
    elsewhere = provider.verify(channel_type="slack", config={"team_id": "T999"},
                                secrets={"bot_token": BOT, "app_token": APP})
    assert not elsewhere.ok and "T0123ABC" in elsewhere.message and "T999" in elsewhere.message


def test_http_verifier_asks_telegram(provider):
    good = provider.verify(channel_type="telegram", config={}, secrets={"bot_token": TELEGRAM})
    assert good.ok and good.details == {"bot_id": 123456789, "username": "acme_bot"}
    other = TELEGRAM[:-1] + "X"
    bad = provider.verify(channel_type="telegram", config={}, secrets={"bot_token": other})
    assert not bad.ok and bad.message == "Telegram refused the bot token (Unauthorized)"
    assert other not in bad.message


def test_http_verifier_does_not_send_malformed_tokens(provider):
    result = provider.verify(channel_type="telegram", config={}, secrets={"bot_token": "not-a-token"})
    assert not result.ok and Provider.requests == []


def test_an_unreachable_provider_is_an_error_that_does_not_echo_the_token():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verifier = HttpChannelVerifier(telegram_api_url=f"http://127.0.0.1:{port}", timeout=2)
    result = verifier.verify(channel_type="telegram", config={}, secrets={"bot_token": TELEGRAM})
    assert not result.ok and result.message.startswith("could not reach Telegram")
    assert TELEGRAM not in result.message


def test_the_setting_chooses_the_verifier(settings):
    settings.CHANNEL_VERIFIER = "local"
    assert type(get_verifier()) is LocalChannelVerifier
    settings.CHANNEL_VERIFIER = "http"
    settings.TELEGRAM_API_URL = "https://telegram.internal.example"
    verifier = get_verifier()
    assert isinstance(verifier, HttpChannelVerifier) and verifier.telegram_api_url == "https://telegram.internal.example"
    settings.CHANNEL_VERIFIER = "apps.agents.verifiers.LocalChannelVerifier"
    assert type(get_verifier()) is LocalChannelVerifier
    del settings.CHANNEL_VERIFIER
    assert type(get_verifier()) is LocalChannelVerifier  # the default
    with pytest.raises(ValueError, match="http"):
        HttpChannelVerifier(slack_api_url="file:///etc/passwd")
