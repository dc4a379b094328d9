"""The local backend's process handling, against the fake CLI (tests/runtime/fake_openclaw.py):
launch in its own session with the token only in the environment, idempotent start, probes and
resources, hot reload vs restart, SIGTERM then SIGKILL, helpers in their own session, logs,
remove. The same code against the real gateway: tests/runtime/test_e2e_gateway.py."""

from __future__ import annotations

import json
import os
import socket
import stat
import time

import psutil
import pytest

from apps.agents.openclaw.render import account_id, render_tenant_config
from apps.tenants.models import TenantRuntime
from apps.tenants.runtime import RuntimeFailure, local
from apps.tenants.runtime.local import LocalProcessBackend, format_log_line, tail_lines
from tests.api.agent_factories import make_agent, make_channel
from tests.runtime.conftest import free_port, processes_under

pytestmark = pytest.mark.django_db

TOKEN = "local-backend-token-0123456789abcdef"


@pytest.fixture
def runtime(tenant_a) -> TenantRuntime:
    return TenantRuntime(tenant=tenant_a, backend="local", port=free_port(), gateway_token=TOKEN)


@pytest.fixture
def backend() -> LocalProcessBackend:
    return LocalProcessBackend()


def wait_for(predicate, timeout: float = 10, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def started_record(backend, runtime) -> dict:
    path = backend.state_dir(runtime) / "fake-start.json"
    assert wait_for(path.exists), "the fake gateway never started"
    return json.loads(path.read_text())


def start_serving(backend, runtime, config=None):
    backend.start(runtime, config or render_tenant_config(runtime.tenant, runtime))
    assert wait_for(lambda: backend.status(runtime, gateway_health=False).healthy), backend.logs(runtime)


def test_start_runs_the_gateway_in_its_own_session_with_the_token_in_its_environment(
        fake_openclaw, backend, runtime, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://aegis:secret@db/aegis")  # the worker's own secrets
    monkeypatch.setenv("FIELD_ENCRYPTION_KEYS", "not-for-gateways")
    start_serving(backend, runtime)

    pid = int(runtime.handle)
    assert backend._pidfile(runtime).read_text().strip() == str(pid)
    process = psutil.Process(pid)
    assert os.getsid(pid) != os.getsid(0) and process.ppid() != os.getpid()  # outlives the worker
    record = started_record(backend, runtime)
    assert TOKEN not in " ".join(record["argv"])  # `ps` never shows the token
    assert record["argv"][1:] == ["gateway", "run", "--port", str(runtime.port), "--auth", "token",
                                  "--allow-unconfigured"]
    env = record["env"]
    assert env["OPENCLAW_GATEWAY_TOKEN"] == TOKEN
    assert env["OPENCLAW_STATE_DIR"] == str(backend.state_dir(runtime))
    assert env["OPENCLAW_CONFIG_PATH"] == str(backend.config_path(runtime))
    assert "DATABASE_URL" not in env and "FIELD_ENCRYPTION_KEYS" not in env and "SECRET_KEY" not in env
    folder = backend.folder(runtime)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(backend.config_path(runtime).stat().st_mode) == 0o600
    assert json.loads(backend.config_path(runtime).read_text())["gateway"]["port"] == runtime.port

    backend.start(runtime, render_tenant_config(runtime.tenant, runtime))  # idempotent
    assert runtime.handle == str(pid) and psutil.pid_exists(pid)


def test_status_reports_probes_resources_and_the_gateways_own_health(fake_openclaw, backend, runtime, tenant_a):
    make_agent(tenant_a, "Ava", key="ava", status="active")
    start_serving(backend, runtime)
    status = backend.status(runtime)
    assert status.running and status.healthy
    assert status.memory_mb > 1 and status.uptime_seconds >= 0 and status.cpu_percent >= 0
    assert status.details["live"] and status.details["ready"] and status.details["processes"] >= 2
    assert status.details["gateway"] == {"ok": True, "agents": [{"agentId": "ava"}]}


def test_a_gateway_failing_only_on_a_channel_is_serving_but_not_ready(fake_openclaw, backend, runtime):
    fake_openclaw.mode("channel-failing")
    start_serving(backend, runtime)
    status = backend.status(runtime, gateway_health=False)
    assert status.healthy and not status.details["ready"] and status.details["failing"] == ["telegram"]


def test_stop_terms_the_group_and_kills_helpers_in_their_own_session(fake_openclaw, backend, runtime):
    start_serving(backend, runtime)
    pid = int(runtime.handle)
    assert wait_for(lambda: len(processes_under(backend.folder(runtime).parent)) >= 2)  # gateway + helper
    started = time.monotonic()
    backend.stop(runtime)
    assert time.monotonic() - started < 5  # SIGTERM was enough
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert processes_under(backend.folder(runtime).parent) == []
    assert runtime.handle == "" and not backend._pidfile(runtime).exists()
    assert local.port_is_free(runtime.port)
    assert not backend.status(runtime).running
    backend.stop(runtime)  # idempotent


def test_a_gateway_ignoring_sigterm_is_killed_after_the_grace_period(fake_openclaw, backend, runtime, settings):
    settings.RUNTIME_STOP_GRACE_SECONDS = 1.0
    fake_openclaw.mode("stubborn")
    start_serving(backend, runtime)
    started = time.monotonic()
    backend.stop(runtime)
    assert 1.0 <= time.monotonic() - started < 8
    assert processes_under(backend.folder(runtime).parent) == []


def test_a_gateway_that_dies_at_once_is_reported_with_its_output(fake_openclaw, backend, runtime):
    fake_openclaw.mode("crash")
    with pytest.raises(RuntimeFailure, match=r"exited right after starting(.|\n)*fake crash"):
        backend.start(runtime, render_tenant_config(runtime.tenant, runtime))
    assert runtime.handle == ""


def test_apply_config_hot_reloads_and_restarts_only_for_new_secrets(fake_openclaw, backend, runtime, tenant_a):
    ava = make_agent(tenant_a, "Ava", key="ava", status="active")
    start_serving(backend, runtime)
    pid = runtime.handle
    assert backend.gateway_call(runtime, "agents.list") == {"agents": [{"id": "ava"}]}

    make_agent(tenant_a, "Bob", key="bob", status="active")
    assert backend.apply_config(runtime, render_tenant_config(tenant_a, runtime)) == "reloaded"
    assert runtime.handle == pid
    assert backend.gateway_call(runtime, "agents.list") == {"agents": [{"id": "ava"}, {"id": "bob"}]}

    # A new channel's token can only reach a running process through a restart.
    channel = make_channel(tenant_a, ava, "Ava bot", channel_type="telegram", secrets={"bot_token": "42:NewSecret"})
    config = render_tenant_config(tenant_a, runtime)
    assert backend.apply_config(runtime, config) == "restarted"
    assert runtime.handle != pid
    assert wait_for(lambda: backend.status(runtime, gateway_health=False).healthy)
    env = started_record(backend, runtime)["env"]
    assert env[f"AEGIS_CH_{channel.pk.hex.upper()}_BOT_TOKEN"] == "42:NewSecret"
    written = json.loads(backend.config_path(runtime).read_text())
    assert account_id(channel) in written["channels"]["telegram"]["accounts"]
    assert backend.apply_config(runtime, config) == "reloaded"  # it has that secret now

    broken = json.loads(json.dumps(config))
    broken["agents"]["entries"]["ava"]["thinkingDefault"] = "extreme"
    before = backend.config_path(runtime).read_text()
    with pytest.raises(RuntimeFailure, match=r"invalid OpenClaw config.*thinkingDefault"):
        backend.apply_config(runtime, broken)
    assert backend.config_path(runtime).read_text() == before  # never written


def test_apply_config_to_a_stopped_runtime_only_writes_the_file(fake_openclaw, backend, runtime):
    assert backend.apply_config(runtime, render_tenant_config(runtime.tenant, runtime)) == "written"
    assert backend.config_path(runtime).exists() and not backend.status(runtime).running


def test_a_recycled_pid_is_not_mistaken_for_the_gateway(fake_openclaw, backend, runtime):
    runtime.handle = str(os.getpid())  # this test process: alive, but not this tenant's gateway
    assert not backend.status(runtime).running
    backend.stop(runtime)  # must not signal us
    assert runtime.handle == ""


def test_a_port_taken_by_someone_else_is_refused(fake_openclaw, backend, runtime):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", runtime.port))
        sock.listen()
        with pytest.raises(RuntimeFailure, match=f"port {runtime.port} .* already in use"):
            backend.start(runtime, render_tenant_config(runtime.tenant, runtime))


def test_gateway_calls_fail_clearly(fake_openclaw, backend, runtime):
    with pytest.raises(RuntimeFailure, match="gateway call health failed: Gateway not reachable"):
        backend.gateway_call(runtime, "health")
    start_serving(backend, runtime)
    runtime.gateway_token = "wrong"
    with pytest.raises(RuntimeFailure, match="token mismatch"):
        backend.gateway_call(runtime, "health")


def test_logs_are_the_tail_of_the_gateways_log_file(fake_openclaw, backend, runtime):
    start_serving(backend, runtime)
    assert wait_for(lambda: "http server listening" in backend.logs(runtime))
    assert backend.logs(runtime, tail=1).count("\n") == 0
    assert "INFO [gateway] http server listening" in backend.logs(runtime)


def test_logs_fall_back_to_the_console_when_the_gateway_never_logged(fake_openclaw, backend, runtime):
    fake_openclaw.mode("crash")
    with pytest.raises(RuntimeFailure):
        backend.start(runtime, render_tenant_config(runtime.tenant, runtime))
    assert "fatal: cannot start (fake crash)" in backend.logs(runtime)


def test_remove_stops_and_deletes_the_folder(fake_openclaw, backend, runtime):
    start_serving(backend, runtime)
    folder = backend.folder(runtime)
    backend.remove(runtime)
    assert not folder.exists() and processes_under(folder.parent) == []
    backend.remove(runtime)  # idempotent


def test_an_uninstalled_openclaw_is_a_clear_failure(runtime_dir, settings, backend, runtime, tmp_path):
    settings.OPENCLAW_HOME = tmp_path / "nowhere"
    with pytest.raises(RuntimeFailure, match=r"not installed .* run `make openclaw`"):
        backend.start(runtime, render_tenant_config(runtime.tenant, runtime))


def test_tail_and_formatting_helpers(tmp_path):
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {n}\n" for n in range(100_000)))
    assert tail_lines(log, 3) == ["line 99997", "line 99998", "line 99999"]
    assert tail_lines(tmp_path / "missing.log", 3) == []
    line = ('{"0":"{\\"subsystem\\":\\"reload\\"}","1":"config hot reload applied","_meta":{"logLevelName":"INFO",'
            '"name":"{\\"subsystem\\":\\"reload\\"}"},"time":"2026-11-25T13:46:05.447+00:00"}')
    assert format_log_line(line) == "2026-11-25T13:46:05.447+00:00 INFO [reload] config hot reload applied"
    assert format_log_line("plain text") == "plain text"
