"""The Docker backend without an engine (none runs on this machine): the container spec built
for a tenant, checked down to the Engine API request body docker-py would send, and the
translation of engine errors into RuntimeFailure. What needs an engine is listed in
docs/operations.md as not exercised."""

from __future__ import annotations

import io
import tarfile

import docker
import pytest
import requests
from docker.models.containers import _create_container_args
from docker.types import ContainerConfig

from apps.tenants.models import TenantRuntime
from apps.tenants.runtime import RuntimeFailure, get_backend
from apps.tenants.runtime.docker import (
    DockerBackend,
    _cpu_percent,
    _memory_mb,
    _tar,
    _uptime,
    container_spec,
)
from tests.runtime.conftest import free_port

pytestmark = pytest.mark.django_db

API_VERSION = "1.47"
SECRETS = {"OPENCLAW_GATEWAY_TOKEN": "tok-docker", "AEGIS_CH_ABC_BOT_TOKEN": "42:secret"}


@pytest.fixture
def runtime(tenant_a) -> TenantRuntime:
    return TenantRuntime(tenant=tenant_a, backend="docker", port=19321, gateway_token="tok-docker")


def engine_request(spec: dict) -> dict:
    """What docker-py would POST to /containers/create for `client.containers.create(**spec)`."""
    args = _create_container_args({**spec, "version": API_VERSION})
    args.pop("name")
    return ContainerConfig(API_VERSION, **args)


def test_the_spec_mirrors_an_openclaw_tenant_cell(tenant_a, runtime, settings):
    spec = container_spec(tenant_a, runtime, secrets_env=SECRETS)
    schema = tenant_a.schema_name
    assert spec["image"] == settings.RUNTIME_DOCKER_IMAGE == "ghcr.io/openclaw/openclaw:2026.9.6"
    assert spec["name"] == f"aegis-{schema}"
    assert spec["command"] == ["node", "openclaw.mjs", "gateway", "run", "--port", "19321", "--auth", "token",
                               "--allow-unconfigured"]
    assert "tok-docker" not in " ".join(spec["command"])
    # The starter plan's limits (tenant.resource_limits): 1 CPU, 1024 MB, 256 processes.
    assert spec["nano_cpus"] == 1_000_000_000
    assert spec["mem_limit"] == spec["memswap_limit"] == "1536m"
    assert spec["pids_limit"] == 256
    assert spec["network_mode"] == "bridge" and "network" not in spec
    assert spec["ports"] == {"19321/tcp": ("127.0.0.1", 19321)}  # the host's loopback only
    assert spec["volumes"] == {f"aegis-{schema}-state": {"bind": "/home/node/.openclaw", "mode": "rw"}}
    assert spec["read_only"] is True and "/tmp" in spec["tmpfs"]  # noqa: S108
    assert spec["security_opt"] == ["no-new-privileges:true"] and spec["cap_drop"] == ["ALL"]
    assert spec["user"] == "1000:1000"
    assert spec["labels"] == {"aegis.tenant": str(tenant_a.pk), "aegis.schema": schema, "aegis.managed-by": "aegis"}
    assert spec["environment"] == {
        "OPENCLAW_STATE_DIR": "/home/node/.openclaw/state",
        "OPENCLAW_CONFIG_PATH": "/home/node/.openclaw/openclaw.json",
        "HOME": "/home/node", "npm_config_cache": "/home/node/.openclaw/npm-cache", "NODE_ENV": "production",
        **SECRETS,
    }
    assert "/readyz" in spec["healthcheck"]["test"][-1]


def test_the_spec_is_a_valid_engine_request(tenant_a, runtime):
    body = engine_request(container_spec(tenant_a, runtime, secrets_env=SECRETS))
    host = body["HostConfig"]
    assert host["NanoCpus"] == 1_000_000_000 and host["Memory"] == 1536 * 1024 * 1024 and host["PidsLimit"] == 256
    assert host["PortBindings"] == {"19321/tcp": [{"HostIp": "127.0.0.1", "HostPort": "19321"}]}
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"] and host["Init"] is True
    assert host["NetworkMode"] == "bridge"
    assert host["Binds"] == [f"aegis-{tenant_a.schema_name}-state:/home/node/.openclaw:rw"]
    assert sorted(body["Env"]) == sorted(f"{k}={v}" for k, v in container_spec(
        tenant_a, runtime, secrets_env=SECRETS)["environment"].items())
    assert body["Healthcheck"]["Test"][0] == "CMD" and body["Healthcheck"]["StartPeriod"] == 60 * 10**9
    assert body["ExposedPorts"] == {"19321/tcp": {}}


def test_limits_and_an_internal_network_come_from_the_tenant(tenant_a, runtime):
    tenant_a.resource_limits = {"cpus": 2.5, "memory_mb": 3072, "pids_limit": 1024, "network": "internal"}
    spec = container_spec(tenant_a, runtime)
    assert spec["nano_cpus"] == 2_500_000_000 and spec["mem_limit"] == "3072m" and spec["pids_limit"] == 1024
    assert spec["network"] == f"aegis-{tenant_a.schema_name}-internal" and "network_mode" not in spec
    assert spec["environment"]["OPENCLAW_GATEWAY_TOKEN"] == "tok-docker"  # no secrets given: the token only
    body = engine_request(spec)
    assert body["HostConfig"]["NetworkMode"] == f"aegis-{tenant_a.schema_name}-internal"
    assert f"aegis-{tenant_a.schema_name}-internal" in body["NetworkingConfig"]


def test_a_tenant_without_limits_gets_openclaws_fleet_defaults(tenant_a, runtime):
    tenant_a.resource_limits = {}
    spec = container_spec(tenant_a, runtime)
    assert (spec["nano_cpus"], spec["mem_limit"], spec["pids_limit"], spec["network_mode"]) == \
        (2_000_000_000, "2048m", 512, "bridge")


@pytest.mark.parametrize("image", ["ghcr.io/openclaw/openclaw", "ghcr.io/openclaw/openclaw:latest",
                                   "localhost:5000/openclaw"])
def test_an_unpinned_image_is_refused(tenant_a, runtime, settings, image):
    settings.RUNTIME_DOCKER_IMAGE = image
    with pytest.raises(RuntimeFailure, match="must be pinned to a version tag"):
        container_spec(tenant_a, runtime)


def test_a_config_the_container_could_not_serve_is_refused(tenant_a, runtime):
    from apps.agents.openclaw.render import render_tenant_config

    config = render_tenant_config(tenant_a, runtime)
    assert config["gateway"]["bind"] == "lan"
    container_spec(tenant_a, runtime, config)
    config["gateway"]["bind"] = "loopback"  # unreachable through the published port
    with pytest.raises(RuntimeFailure, match="bind 'lan'"):
        container_spec(tenant_a, runtime, config)


def test_the_setting_selects_the_backend(settings):
    settings.RUNTIME_BACKEND = "docker"
    assert isinstance(get_backend(), DockerBackend)
    with pytest.raises(RuntimeFailure, match="unknown runtime backend 'podman'"):
        get_backend("podman")


# --- Engine errors ---------------------------------------------------------------------------------


@pytest.fixture
def no_engine(monkeypatch):
    """DOCKER_HOST pointing at a port nothing listens on: what a stopped engine looks like."""
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DOCKER_HOST", address)
    return address


@pytest.mark.parametrize("operation", ["start", "stop", "apply_config", "status", "logs", "remove", "gateway_call"])
def test_an_unreachable_engine_is_a_clear_failure(tenant_a, runtime, no_engine, operation):
    from apps.agents.openclaw.render import render_tenant_config

    backend = DockerBackend()
    config = render_tenant_config(tenant_a, runtime)
    args = {"start": (config,), "apply_config": (config,), "gateway_call": ("health",)}.get(operation, ())
    with pytest.raises(RuntimeFailure, match=f"Docker engine unreachable at {no_engine}"):
        getattr(backend, operation)(runtime, *args)


class FailingContainers:
    def __init__(self, error):
        self.error = error

    def get(self, name):
        raise self.error


class FakeClient:
    def __init__(self, error):
        self.containers = FailingContainers(error)


@pytest.mark.parametrize(("error", "message"), [
    (docker.errors.APIError("500 Server Error", explanation="layer does not exist"),
     "Docker engine refused to inspect container aegis-.*: layer does not exist"),
    (requests.exceptions.ConnectionError("Connection aborted"),
     "Docker engine unreachable at .* while trying to inspect container aegis-"),
    (docker.errors.DockerException("TLS handshake failed"), "cannot inspect container aegis-.*: TLS handshake failed"),
])
def test_engine_errors_mid_operation_become_runtime_failures(tenant_a, runtime, error, message):
    backend = DockerBackend(client_factory=lambda: FakeClient(error))
    with pytest.raises(RuntimeFailure, match=message):
        backend.status(runtime)


def test_a_missing_container_is_just_not_running(tenant_a, runtime):
    backend = DockerBackend(client_factory=lambda: FakeClient(docker.errors.NotFound("No such container")))
    status = backend.status(runtime)
    assert not status.running and status.details == {"reason": "no container"}
    assert backend.logs(runtime) == ""
    from apps.agents.openclaw.render import render_tenant_config

    # Nothing to write into: the next start creates the container with this config.
    assert backend.apply_config(runtime, render_tenant_config(tenant_a, runtime)) == "written"
    with pytest.raises(RuntimeFailure, match="invalid OpenClaw config"):
        backend.apply_config(runtime, {"gateway": {"bind": "everywhere"}})


# --- Helpers ---------------------------------------------------------------------------------------


def test_config_archives_belong_to_the_gateway_user():
    data = _tar({"openclaw.json": b"{}"}, directories=(".", "state"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {".", "state", "openclaw.json"}
    assert all(m.uid == m.gid == 1000 for m in members.values())
    assert members["openclaw.json"].mode == 0o600 and members["state"].isdir()


def test_stats_are_read_like_docker_stats_does():
    stats = {
        "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}, "system_cpu_usage": 20_000_000_000,
                      "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 10_000_000_000},
        "memory_stats": {"usage": 900 * 1024 * 1024, "stats": {"inactive_file": 100 * 1024 * 1024}},
    }
    assert _cpu_percent(stats) == 20.0
    assert _memory_mb(stats) == 800.0
    assert _cpu_percent({}) is None and _memory_mb({}) is None
    assert _uptime("0001-01-01T00:00:00Z") is None
    assert _uptime("2026-01-02T03:04:05.123456789Z") >= 0
