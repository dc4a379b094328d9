"""Agent channels: write-only secrets, type-specific settings, limits, verification, audit."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.agents.models import AgentChannel
from apps.audit.models import AuditLog
from tests.api.agent_factories import (
    NOT_FOUND_ELSEWHERE,
    READERS,
    SLACK_APP_TOKEN,
    SLACK_BOT_TOKEN,
    TELEGRAM_TOKEN,
    WRITERS,
    WRONG_SCOPES,
    agent_path,
    make_agent,
    make_channel,
    matrix_agent,
    matrix_channel,
    suspended_tenant_test,
)
from tests.api.matrix import Row, matrix_test, named_path

pytestmark = pytest.mark.django_db

SIGNING_SECRET = "0123456789abcdef0123456789abcdef"


def send(client, method: str, path: str, body: dict | None = None, **headers):
    return client.generic(method, path, data=json.dumps(body) if body is not None else None,
                          content_type="application/json", **headers)


def error(response) -> dict:
    return response.json()["error"]


def channel_path(suffix: str = ""):
    def path(ctx) -> str:
        channel = matrix_channel(ctx)
        return f"/api/v1/agents/{channel.agent_id}/channels/{channel.pk}{suffix}"

    return named_path(f"agents/{{id}}/channels/{{channelId}}{suffix}", path)


ROWS = [
    Row("GET", agent_path("/channels"), allowed=READERS, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("POST", agent_path("/channels"), allowed=WRITERS, ok=201, body={"type": "web", "name": "Web chat"},
        refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("PATCH", channel_path(), allowed=WRITERS, body={"name": "Renamed"}, refused=NOT_FOUND_ELSEWHERE,
        extra_callers=WRONG_SCOPES),
    Row("DELETE", channel_path(), allowed=WRITERS, ok=204, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("POST", channel_path("/verify"), allowed=WRITERS, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
]

test_matrix = matrix_test(ROWS)
test_suspended_tenant = suspended_tenant_test(ROWS)


@pytest.fixture
def admin(callers):
    return callers["tenant_admin"]


@pytest.fixture
def agent(callers, tenant_a):
    return matrix_agent(callers)


def channels_url(agent) -> str:
    return f"/api/v1/agents/{agent.pk}/channels"


def slack_body(**overrides) -> dict:
    return {"type": "slack", "name": "Sales Slack",
            "config": {"mode": "socket", "teamId": "T0123ABC", "dmPolicy": "pairing", "allowFrom": ["U_ONE"]},
            "secrets": {"botToken": SLACK_BOT_TOKEN, "appToken": SLACK_APP_TOKEN}, **overrides}


# --- Create and read ------------------------------------------------------------------------------


def test_create_shows_hints_never_secrets(admin, agent, tenant_a):
    response = send(admin, "POST", channels_url(agent), slack_body())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["enabled"] is True and body["agentId"] == str(agent.pk)
    assert body["secretsSet"] == ["appToken", "botToken"]
    assert body["secretHints"] == {"appToken": "…cdef", "botToken": "…UvWx"}
    assert body["config"] == {"mode": "socket", "teamId": "T0123ABC", "dmPolicy": "pairing", "allowFrom": ["U_ONE"]}
    assert "secrets" not in body
    assert SLACK_BOT_TOKEN.encode() not in response.content and SLACK_APP_TOKEN.encode() not in response.content

    with tenant_context(tenant_a):
        stored = AgentChannel.objects.get(pk=body["id"])
        assert stored.config == {"mode": "socket", "team_id": "T0123ABC", "dm_policy": "pairing",
                                 "allow_from": ["U_ONE"]}
        assert stored.secrets == {"bot_token": SLACK_BOT_TOKEN, "app_token": SLACK_APP_TOKEN}
        with connection.cursor() as cursor:  # encrypted at rest
            cursor.execute("SELECT secrets FROM agents_agentchannel WHERE id = %s", [stored.pk])
            assert SLACK_BOT_TOKEN not in cursor.fetchone()[0]


def test_lists_and_agent_views_never_show_secrets(admin, agent, tenant_a):
    make_channel(tenant_a, agent, "Slack")
    make_channel(tenant_a, agent, "Telegram", channel_type="telegram", secrets={"bot_token": TELEGRAM_TOKEN})
    for path in (channels_url(agent), f"/api/v1/agents/{agent.pk}", "/api/v1/agents",
                 f"/api/v1/agents/{agent.pk}/config"):
        response = admin.get(path)
        assert response.status_code == 200
        for secret in (SLACK_BOT_TOKEN, SLACK_APP_TOKEN, TELEGRAM_TOKEN):
            assert secret.encode() not in response.content, path
    listed = admin.get(channels_url(agent)).json()
    assert [c["name"] for c in listed["data"]] == ["Slack", "Telegram"]
    assert listed["data"][1]["secretHints"] == {"botToken": "…sawQ"}


@pytest.mark.parametrize(("body", "field"), [
    (slack_body(type="carrier-pigeon"), "type"),
    (slack_body(config={"dmPolicy": "sometimes"}), "config"),
    (slack_body(config={"colour": "blue"}), "config"),
    (slack_body(config="socket"), "config"),
    (slack_body(secrets={"password": "hunter2-hunter2"}), "secrets"),
    (slack_body(secrets={"botToken": "short"}), "secrets.botToken"),
    ({"type": "telegram", "name": "TG", "config": {"webhookUrl": "http://insecure.example/hook"}}, "config"),
    ({"type": "web", "name": "Web", "secrets": {"botToken": SLACK_BOT_TOKEN}}, "secrets"),
    ({"type": "web"}, "name"),
    (slack_body(status="connected"), "status"),
])
def test_create_validation_errors(admin, agent, body, field):
    response = send(admin, "POST", channels_url(agent), body)
    assert response.status_code == 400, response.content
    assert field in error(response)["details"], error(response)
    assert SLACK_BOT_TOKEN.encode() not in response.content


@pytest.mark.parametrize("origin", ["", "www.acme.example", "https://acme example", "https://[acme"])
def test_urls_in_settings_must_be_uris(admin, agent, origin):
    """`"format": "uri"` in a channel type's schema is enforced (it was silently skipped, so a PATCH
    stored `allowedOrigins: [""]` and answered with a channel its own documented schema refuses)."""
    created = send(admin, "POST", channels_url(agent), {"type": "web", "name": "Web",
                                                        "config": {"allowedOrigins": [origin]}})
    assert created.status_code == 400 and "config" in error(created)["details"], created.content
    channel_id = send(admin, "POST", channels_url(agent), {"type": "web", "name": "Web", "config": {
        "allowedOrigins": ["https://www.acme.example"]}}).json()["id"]
    changed = send(admin, "PATCH", f"{channels_url(agent)}/{channel_id}",
                   {"config": {"allowedOrigins": ["https://www.acme.example", origin]}})
    assert changed.status_code == 400 and "config" in error(changed)["details"], changed.content
    telegram = send(admin, "POST", channels_url(agent), {"type": "telegram", "name": "TG",
                                                         "config": {"webhookUrl": f"https://{origin} x"}})
    assert telegram.status_code == 400 and "config" in error(telegram)["details"], telegram.content


@pytest.mark.parametrize("origins", [
    ["https://app.example.com"],
    ["http://localhost:3000", "http://127.0.0.1:8000", "http://[::1]:5173", "https://chat.acme.example:8443"],
])
def test_allowed_origins_accept_browser_origins(admin, agent, origins):
    created = send(admin, "POST", channels_url(agent), {"type": "web", "name": "Web",
                                                        "config": {"allowedOrigins": origins}})
    assert created.status_code == 201, created.content
    assert created.json()["config"] == {"allowedOrigins": origins}  # stored as sent, not rewritten


@pytest.mark.parametrize("origin", [
    "javascript:alert(1)",
    "ftp://files.example.com",
    "https://a.example/path",
    "https://a.example?q",
    "https://a.example#top",
    "https://app.example.com/",  # a trailing slash is refused, not normalised: browsers never send one
    "https://App.Example.com",  # browsers send the host lowercase
    "https://user@app.example.com",
    "https://app.example.com:99999",
    "https://app.example.com\n",
    "*",
])
def test_allowed_origins_refuse_anything_but_a_browser_origin(admin, agent, origin):
    """`allowedOrigins` are compared with a browser's `Origin` header: `scheme://host[:port]`, http(s),
    nothing after. Anything else is a 400 on `config` that says what is expected."""
    created = send(admin, "POST", channels_url(agent), {"type": "web", "name": "Web",
                                                        "config": {"allowedOrigins": [origin]}})
    assert created.status_code == 400, created.content
    assert error(created)["code"] == "VALIDATION_ERROR"
    [message] = [m for m in error(created)["details"]["config"] if "(rule: pattern)" in m]
    assert message.startswith("allowed_origins/0: ") and "is not a browser origin" in message, message
    assert "e.g. https://app.example.com" in message
    channel_id = send(admin, "POST", channels_url(agent), {"type": "web", "name": "Web", "config": {
        "allowedOrigins": ["https://www.acme.example"]}}).json()["id"]
    changed = send(admin, "PATCH", f"{channels_url(agent)}/{channel_id}",
                   {"config": {"allowedOrigins": ["https://www.acme.example", origin]}})
    assert changed.status_code == 400 and "config" in error(changed)["details"], changed.content
    listed = admin.get(channels_url(agent)).json()["data"]
    assert [channel["config"] for channel in listed] == [{"allowedOrigins": ["https://www.acme.example"]}]


def test_channel_names_are_unique_per_agent(admin, agent, tenant_a):
    assert send(admin, "POST", channels_url(agent), slack_body()).status_code == 201
    clash = send(admin, "POST", channels_url(agent), slack_body())
    assert clash.status_code == 409 and error(clash)["details"] == {"field": "name"}
    other = make_agent(tenant_a, "Other")
    assert send(admin, "POST", channels_url(other), slack_body()).status_code == 201


def test_the_channel_limit_gives_409_limit_reached(admin, agent, tenant_a):
    tenant_a.resource_limits = {**tenant_a.resource_limits, "max_channels_per_agent": 1}
    tenant_a.save(update_fields=["resource_limits"])
    assert send(admin, "POST", channels_url(agent), {"type": "web", "name": "Web"}).status_code == 201
    response = send(admin, "POST", channels_url(agent), {"type": "web", "name": "Web 2"})
    assert response.status_code == 409
    assert error(response)["code"] == "LIMIT_REACHED"
    assert error(response)["details"] == {"resource": "channels", "limit": 1, "current": 1}


def test_unknown_agent_or_channel_is_404(admin, agent, tenant_a):
    missing = "00000000-0000-0000-0000-000000000000"
    assert admin.get(f"/api/v1/agents/{missing}/channels").status_code == 404
    assert send(admin, "PATCH", f"{channels_url(agent)}/{missing}", {"name": "x"}).status_code == 404
    other = make_agent(tenant_a, "Other")
    channel = make_channel(tenant_a, other)
    # A channel of another agent is not found under this agent.
    assert send(admin, "PATCH", f"{channels_url(agent)}/{channel.pk}", {"name": "x"}).status_code == 404


# --- Change ---------------------------------------------------------------------------------------


def test_patch_merges_secrets_and_a_null_removes_one(admin, agent, tenant_a):
    channel_id = send(admin, "POST", channels_url(agent), slack_body()).json()["id"]
    response = send(admin, "PATCH", f"{channels_url(agent)}/{channel_id}", {
        "config": {"mode": "http"}, "secrets": {"appToken": None, "signingSecret": SIGNING_SECRET}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["secretsSet"] == ["botToken", "signingSecret"]
    assert body["secretHints"] == {"botToken": "…UvWx", "signingSecret": "…cdef"}
    assert body["config"] == {"mode": "http"}  # config is replaced as a whole
    assert SIGNING_SECRET.encode() not in response.content
    with tenant_context(tenant_a):
        assert AgentChannel.objects.get(pk=channel_id).secrets == {"bot_token": SLACK_BOT_TOKEN,
                                                                   "signing_secret": SIGNING_SECRET}
    row = AuditLog.objects.get(action="agent.channel_updated", target_id=channel_id)
    assert row.changes["secrets_changed"] == ["app_token", "signing_secret"]
    assert SIGNING_SECRET not in json.dumps(row.changes) and SLACK_BOT_TOKEN not in json.dumps(row.changes)


def test_new_secrets_need_a_new_verification(admin, agent):
    channel_id = send(admin, "POST", channels_url(agent), slack_body()).json()["id"]
    assert admin.post(f"{channels_url(agent)}/{channel_id}/verify").json()["status"] == "connected"
    renamed = send(admin, "PATCH", f"{channels_url(agent)}/{channel_id}", {"name": "Renamed"}).json()
    assert renamed["status"] == "connected"  # a rename changes no credential
    rotated = send(admin, "PATCH", f"{channels_url(agent)}/{channel_id}",
                   {"secrets": {"botToken": SLACK_BOT_TOKEN.replace("AbC", "XyZ")}}).json()
    assert rotated["status"] == "pending" and rotated["verifiedAt"] is None


def test_disable_and_enable(admin, agent):
    channel_id = send(admin, "POST", channels_url(agent), slack_body()).json()["id"]
    url = f"{channels_url(agent)}/{channel_id}"
    disabled = send(admin, "PATCH", url, {"enabled": False}).json()
    assert (disabled["enabled"], disabled["status"]) == (False, "disabled")
    refused = admin.post(f"{url}/verify")
    assert refused.status_code == 409 and error(refused)["code"] == "INVALID_STATE"
    enabled = send(admin, "PATCH", url, {"enabled": True}).json()
    assert (enabled["enabled"], enabled["status"]) == (True, "pending")


def test_patch_refuses_type_and_unknown_secret_names(admin, agent):
    channel_id = send(admin, "POST", channels_url(agent), slack_body()).json()["id"]
    url = f"{channels_url(agent)}/{channel_id}"
    assert "type" in error(send(admin, "PATCH", url, {"type": "web"}))["details"]
    assert "secrets" in error(send(admin, "PATCH", url, {"secrets": {"webhookSecret": "abcdefghij"}}))["details"]


def test_delete_removes_the_channel(admin, agent, tenant_a):
    channel_id = send(admin, "POST", channels_url(agent), slack_body()).json()["id"]
    assert admin.delete(f"{channels_url(agent)}/{channel_id}").status_code == 204
    with tenant_context(tenant_a):
        assert not AgentChannel.objects.filter(pk=channel_id).exists()


def test_every_channel_mutation_is_audited_and_changes_the_agents_etag(admin, callers, agent):
    etags = [admin.get(f"/api/v1/agents/{agent.pk}")["ETag"]]
    channel_id = send(admin, "POST", channels_url(agent), slack_body()).json()["id"]
    etags.append(admin.get(f"/api/v1/agents/{agent.pk}")["ETag"])
    send(admin, "PATCH", f"{channels_url(agent)}/{channel_id}", {"name": "Renamed"})
    etags.append(admin.get(f"/api/v1/agents/{agent.pk}")["ETag"])
    admin.post(f"{channels_url(agent)}/{channel_id}/verify")
    etags.append(admin.get(f"/api/v1/agents/{agent.pk}")["ETag"])
    admin.delete(f"{channels_url(agent)}/{channel_id}")
    etags.append(admin.get(f"/api/v1/agents/{agent.pk}")["ETag"])
    assert len(set(etags)) == 5
    rows = AuditLog.objects.filter(target_id=channel_id).order_by("created_at")
    actions = list(rows.values_list("action", flat=True))
    assert actions == ["agent.channel_created", "agent.channel_updated", "agent.channel_verified",
                       "agent.channel_deleted"]
    assert set(AuditLog.objects.filter(target_id=channel_id).values_list("actor_user", flat=True)) == {
        callers.user("tenant_admin").pk}


def test_channel_changes_signal_the_runtime(admin, agent, tenant_a, runtime_signals,
                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        channel_id = send(admin, "POST", channels_url(agent), slack_body()).json()["id"]
        admin.delete(f"{channels_url(agent)}/{channel_id}")
    assert [(signal["sender"], signal["reason"], signal["agent_id"]) for signal in runtime_signals] == [
        (AgentChannel, "agent.channel_created", agent.pk), (AgentChannel, "agent.channel_deleted", agent.pk)]


# --- Verification ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "status", "error_text"), [
    (slack_body(), "connected", ""),
    (slack_body(config={"mode": "http"}, secrets={"botToken": SLACK_BOT_TOKEN, "signingSecret": SIGNING_SECRET}),
     "connected", ""),
    (slack_body(secrets={"botToken": SLACK_BOT_TOKEN}), "error", "appToken is not set"),
    (slack_body(secrets={"botToken": "xoxp-user-token-not-a-bot", "appToken": SLACK_APP_TOKEN}), "error",
     "botToken does not look like a Slack bot token"),
    ({"type": "telegram", "name": "TG", "secrets": {"botToken": TELEGRAM_TOKEN}}, "connected", ""),
    ({"type": "telegram", "name": "TG", "secrets": {"botToken": "12345:too-short-to-be-real"}}, "error",
     "botToken does not look like a Telegram bot token"),
    ({"type": "web", "name": "Web"}, "connected", ""),
])
def test_local_verification_checks_the_secrets_format(admin, agent, body, status, error_text, settings):
    settings.CHANNEL_VERIFIER = "local"
    channel_id = send(admin, "POST", channels_url(agent), body).json()["id"]
    response = admin.post(f"{channels_url(agent)}/{channel_id}/verify")
    assert response.status_code == 200, response.content
    verified = response.json()
    assert verified["status"] == status
    assert error_text in verified["lastError"] and bool(verified["lastError"]) == bool(error_text)
    assert (verified["verifiedAt"] is not None) == (status == "connected")
    for secret in body.get("secrets", {}).values():
        assert secret.encode() not in response.content
    row = AuditLog.objects.get(action="agent.channel_verified", target_id=channel_id)
    assert row.changes["ok"] is (status == "connected")


class FakeSlack(BaseHTTPRequestHandler):
    """Slack's auth.test: accepts exactly SLACK_BOT_TOKEN, for workspace T0123ABC."""

    def do_POST(self):
        ok = self.path == "/api/auth.test" and self.headers.get("Authorization") == f"Bearer {SLACK_BOT_TOKEN}"
        answer = {"ok": True, "team": "Acme", "team_id": "T0123ABC", "user_id": "UBOT"} if ok else \
            {"ok": False, "error": "invalid_auth"}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_slack(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSlack)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.CHANNEL_VERIFIER = "http"
    settings.SLACK_API_URL = f"http://127.0.0.1:{server.server_address[1]}/api"
    yield server
    server.shutdown()
    server.server_close()


def test_http_verification_asks_slack(admin, agent, fake_slack):
    good = send(admin, "POST", channels_url(agent), slack_body()).json()["id"]
    assert admin.post(f"{channels_url(agent)}/{good}/verify").json()["status"] == "connected"
    row = AuditLog.objects.get(action="agent.channel_verified", target_id=good)
    assert row.changes["account"] == {"team": "Acme", "team_id": "T0123ABC", "bot_user_id": "UBOT"}

    revoked = SLACK_BOT_TOKEN.replace("AbC", "ZzZ")  # well-formed, but Slack does not know it
    bad = send(admin, "POST", channels_url(agent),
               slack_body(name="Other", secrets={"botToken": revoked, "appToken": SLACK_APP_TOKEN})).json()["id"]
    response = admin.post(f"{channels_url(agent)}/{bad}/verify")
    assert response.json()["status"] == "error"
    assert response.json()["lastError"] == "Slack refused the bot token (invalid_auth)"
    assert revoked.encode() not in response.content
