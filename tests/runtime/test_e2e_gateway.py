"""End to end with a REAL OpenClaw gateway (the pinned install, local backend), through the API:

platform admin creates a tenant -> provisioning (Celery, eager here) starts its gateway and waits
for it -> a tenant admin creates an agent with a Telegram channel and a skill and activates it ->
the agent shows up in the gateway's own health JSON -> paused, it disappears -> the tenant is
suspended and the gateway process is gone, its port closed.

One gateway, about a minute (it needs ~1 GB and 10-20 s to start). Telegram rather than Slack:
Slack is an external plugin the gateway would download on first start. `make test` installs
OpenClaw first (the `openclaw` prerequisite of `test`); this test fails, never skips, without it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from aegis.api.authentication import issue_access_token
from apps.accounts.models import Role, User
from apps.accounts.services import add_member
from apps.agents.openclaw.render import account_id
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime import RuntimeFailure
from apps.tenants.runtime.local import LocalProcessBackend
from tests.api.agent_factories import make_role, make_skill
from tests.runtime.conftest import free_port, processes_under

pytestmark = [
    pytest.mark.gateway,
    # Real commits: provisioning and config applies run after commit, as in production.
    pytest.mark.django_db(transaction=True, available_apps=[*django_settings.INSTALLED_APPS]),
]

TELEGRAM_TOKEN = "123456789:AAE2eFakeTokenForTheGatewayTestOnly00"
HOT_RELOAD_TIMEOUT = 60  # a reload takes ~3-6 s, a restart 10-20 s; generous for a loaded machine


@pytest.fixture
def live_runtimes(settings, runtime_dir):
    """The real gateway from OPENCLAW_HOME, runtimes on, a private port range. runtime_dir's
    finalizer kills whatever gateway process is left under it, even when the test failed."""
    executable = LocalProcessBackend.executable()
    assert executable.exists(), f"OpenClaw is not installed at {executable}: run `make openclaw`"
    settings.RUNTIME_BACKEND = "local"
    settings.TENANT_RUNTIMES_ENABLED = True
    settings.RUNTIME_HEALTH_WAIT_SECONDS = 90
    # A gateway that ran a Telegram poller without network drains for minutes; the escalation to
    # SIGKILL is the same at 5 s as at the production 15 s, and keeps the suite fast.
    settings.RUNTIME_STOP_GRACE_SECONDS = 5
    base = free_port()
    settings.RUNTIME_PORT_RANGE = (base, base + 100)
    return runtime_dir


def client_for(user: User, *, mfa: bool = False) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_access_token(user, mfa_verified=mfa)}")
    return client


def post(client: APIClient, path: str, body: dict | None = None):
    return client.post(path, data=json.dumps(body or {}), content_type="application/json")


def gateway_health(runtime: TenantRuntime) -> dict | None:
    """The gateway's own health JSON, probed live (`gateway health` is a cached snapshot ~1 min old)."""
    try:
        return LocalProcessBackend().gateway_call(runtime, "health", {"probe": True}, timeout=15)
    except RuntimeFailure:
        return None  # restarting, or not answering yet


def wait_for_health(runtime: TenantRuntime, predicate, what: str) -> dict:
    deadline = time.monotonic() + HOT_RELOAD_TIMEOUT
    health = None
    while time.monotonic() < deadline:
        health = gateway_health(runtime)
        if health is not None and predicate(health):
            return health
        time.sleep(0.5)
    pytest.fail(f"the gateway never showed {what} within {HOT_RELOAD_TIMEOUT} s; last health: {health}\n"
                f"{LocalProcessBackend().logs(runtime, tail=30)}")


def agent_ids(health: dict) -> set[str]:
    return {agent["agentId"] for agent in health.get("agents", [])}


def telegram_accounts(health: dict) -> dict:
    return ((health.get("channels") or {}).get("telegram") or {}).get("accounts") or {}


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_tenant_created_through_the_api_gets_a_real_gateway_that_follows_its_agents(live_runtimes):
    started = time.monotonic()
    backend = LocalProcessBackend()
    admin = User.objects.create_user("root@aegis.example", "correct-horse-battery", name="Root",
                                     role=Role.PLATFORM_ADMIN)
    platform = client_for(admin, mfa=True)

    # 1. Create the tenant; provisioning (after commit) builds the schema and starts the gateway.
    created = post(platform, "/api/v1/platform/tenants", {"companyName": "Gateway E2E", "adminEmail": "it@e2e.example",
                                                          "slug": "gateway-e2e"})
    assert created.status_code == 202, created.content
    tenant_id = created.json()["id"]
    detail = platform.get(f"/api/v1/platform/tenants/{tenant_id}").json()
    assert detail["status"] == "active", detail
    tenant = Tenant.objects.get(pk=tenant_id)
    runtime = TenantRuntime.objects.get(tenant=tenant)
    assert runtime.state == "running" and runtime.handle
    status = backend.status(runtime, gateway_health=False)
    assert status.running and status.healthy, status
    assert status.memory_mb > 100
    for process in processes_under(live_runtimes):  # the token is never on a command line
        assert runtime.gateway_token not in " ".join(process.cmdline())
    provisioned = time.monotonic()

    # 2. A tenant admin creates an agent with a Telegram channel and a skill, then activates it.
    make_role("support", default_settings={"tools_profile": "messaging"})
    weather = make_skill("weather", configuration={"type": "object", "properties": {"units": {"type": "string"}}})
    member = add_member(tenant=tenant, email="admin@e2e.example", password="correct-horse-battery", name="Admin",
                        role=Role.TENANT_ADMIN)
    api = client_for(member)
    agent = post(api, "/api/v1/agents", {"name": "E2E Helper", "role": "support", "description": "Runs in the e2e."})
    assert agent.status_code == 201, agent.content
    agent = agent.json()
    channel = post(api, f"/api/v1/agents/{agent['id']}/channels",
                   {"type": "telegram", "name": "Ops bot", "config": {"dmPolicy": "pairing"},
                    "secrets": {"botToken": TELEGRAM_TOKEN}})
    assert channel.status_code == 201, channel.content
    skill = post(api, f"/api/v1/agents/{agent['id']}/skills", {"skill": str(weather.pk), "config": {"units": "metric"}})
    assert skill.status_code == 201, skill.content
    resumed = post(api, f"/api/v1/agents/{agent['id']}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active", resumed.content

    # 3. The gateway runs the agent (restarted: the new bot token can only arrive in its environment).
    runtime.refresh_from_db()
    file = backend.config_path(runtime)
    # OpenClaw's own validator on the file the gateway runs, in parallel with its restart (~5 s).
    validating = subprocess.Popen(  # noqa: S603 (our pinned CLI, fixed arguments)
        [str(backend.executable()), "config", "validate", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={"PATH": "/usr/bin:/bin", "OPENCLAW_CONFIG_PATH": str(file),
                        "OPENCLAW_STATE_DIR": str(backend.folder(runtime) / "cli"),
                        "HOME": str(backend.folder(runtime) / "cli")})
    account = account_id(SimpleNamespace(pk=uuid.UUID(channel.json()["id"])))
    health = wait_for_health(runtime, lambda h: agent["key"] in agent_ids(h), f"agent {agent['key']}")
    assert account in telegram_accounts(health), health["channels"]
    agents = backend.gateway_call(runtime, "agents.list")
    listed = {a["id"]: a for a in agents["agents"]}
    assert agents["defaultId"] == agent["key"]
    assert listed[agent["key"]]["model"]["primary"] == django_settings.PLATFORM_MODEL_DEFAULTS["tiers"]["balanced"]
    config = json.loads(file.read_text())
    assert config["agents"]["entries"][agent["key"]]["skills"] == ["weather"]
    assert config["skills"]["entries"]["weather"] == {"enabled": True, "config": {"units": "metric"}}
    assert TELEGRAM_TOKEN not in file.read_text() and runtime.gateway_token not in file.read_text()
    out, err = validating.communicate(timeout=60)
    assert json.loads(out)["valid"] is True, out + err  # OpenClaw's validator agrees with ours
    applied = time.monotonic()

    # 4. Paused, the agent leaves the gateway (hot reload, same process).
    pid = runtime.handle
    paused = post(api, f"/api/v1/agents/{agent['id']}/pause")
    assert paused.status_code == 200, paused.content
    # The agent leaves at once; its bot's account is retired a few seconds later (the Telegram
    # poller gets 5 s to stop), so wait for both.
    wait_for_health(runtime, lambda h: agent["key"] not in agent_ids(h) and account not in telegram_accounts(h),
                    f"agent {agent['key']} and its Telegram account gone")
    runtime.refresh_from_db()
    assert runtime.handle == pid
    paused_at = time.monotonic()

    # 5. Suspending the tenant stops its gateway: process gone, port closed, no helper left.
    suspended = post(platform, f"/api/v1/platform/tenants/{tenant_id}/suspend", {"reason": "E2E: invoices unpaid"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended", suspended.content
    runtime.refresh_from_db()
    assert runtime.state == "stopped" and runtime.handle == ""
    assert not backend.status(runtime, gateway_health=False).running
    assert not port_open(runtime.port)
    assert processes_under(live_runtimes) == []
    print(f"\ne2e timings: provisioned {provisioned - started:.1f}s, agent live {applied - provisioned:.1f}s, "
          f"paused {paused_at - applied:.1f}s, suspended {time.monotonic() - paused_at:.1f}s")
