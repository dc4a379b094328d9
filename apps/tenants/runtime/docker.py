"""The `docker` backend: each tenant's gateway as a container, through the Docker Engine API.

It mirrors OpenClaw's own "tenant cells" (`openclaw fleet create`): the official image at a
pinned tag, CPU/memory/process limits from the tenant's resource limits, egress on `bridge` or
on an `internal` network, a named volume for state, the port published on the host's loopback
only. `container_spec` is a pure function (tested without an engine); everything else talks to
the engine, and every engine error becomes a RuntimeFailure with a readable message.

NOT EXERCISED here (no Docker engine runs on the development machines): creating, starting and
stopping real containers, writing the config into the volume, exec-based CLI calls, stats, and
the `internal` network's reachability from the host. See docs/operations.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import time
from datetime import UTC, datetime

from django.conf import settings

from apps.tenants.runtime.base import (
    RuntimeBackend,
    RuntimeFailure,
    RuntimeStatus,
    needs_restart,
    probe_gateway,
    secrets_fingerprint,
)

# Paths inside the official image (USER node, uid 1000, WORKDIR /app, `node openclaw.mjs`).
GATEWAY_UID = 1000
OPENCLAW_HOME = "/home/node/.openclaw"  # the state volume is mounted here
CONFIG_PATH = f"{OPENCLAW_HOME}/openclaw.json"
STATE_DIR = f"{OPENCLAW_HOME}/state"
LOG_FILE = f"{OPENCLAW_HOME}/logs/openclaw.log"
CLI_DIR = "/tmp/aegis-cli"  # noqa: S108 (inside the container's private tmpfs)
SECOND_NS = 1_000_000_000
# OpenClaw's fleet defaults, for a tenant whose limits say nothing.
DEFAULT_LIMITS = {"cpus": 2, "memory_mb": 2048, "pids_limit": 512, "network": "bridge"}


def container_name(tenant) -> str:
    return f"aegis-{tenant.schema_name}"


def volume_name(tenant) -> str:
    return f"aegis-{tenant.schema_name}-state"


def network_name(tenant) -> str:
    # One internal network per tenant: a shared one would let tenants' gateways reach each other.
    return f"aegis-{tenant.schema_name}-internal"


def container_spec(tenant, runtime, config: dict | None = None, *, secrets_env: dict[str, str] | None = None) -> dict:
    """Keyword arguments for `client.containers.create()` for the tenant's gateway.

    `secrets_env` (apps.agents.openclaw.render.runtime_secrets_env) becomes the container's
    environment, next to the fixed paths; without it only the gateway token is set. `config`,
    when given, must agree with the container on port and bind, or the gateway would be
    unreachable.
    """
    image = settings.RUNTIME_DOCKER_IMAGE
    if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
        raise RuntimeFailure(f"RUNTIME_DOCKER_IMAGE must be pinned to a version tag, not {image!r}")
    if not runtime.port:
        raise RuntimeFailure("the runtime has no port allocated")
    port = int(runtime.port)
    if config is not None:
        gateway = config.get("gateway") or {}
        if gateway.get("port") != port or gateway.get("bind") != DockerBackend.gateway_bind:
            raise RuntimeFailure(f"the config's gateway must listen on port {port} with bind "
                                 f"{DockerBackend.gateway_bind!r} inside the container")
    limits = {**DEFAULT_LIMITS, **(tenant.resource_limits or {})}
    memory = f"{int(limits['memory_mb'])}m"
    environment = {
        "OPENCLAW_STATE_DIR": STATE_DIR,
        "OPENCLAW_CONFIG_PATH": CONFIG_PATH,
        "HOME": "/home/node",
        "npm_config_cache": f"{OPENCLAW_HOME}/npm-cache",  # the root fs is read-only
        "NODE_ENV": "production",
        **(secrets_env if secrets_env is not None else {"OPENCLAW_GATEWAY_TOKEN": runtime.gateway_token}),
    }
    ready_check = (f"fetch('http://127.0.0.1:{port}/readyz').then(r=>process.exit(r.ok?0:1))"
                   ".catch(()=>process.exit(1))")
    spec = {
        "image": image,
        "name": container_name(tenant),
        "command": ["node", "openclaw.mjs", "gateway", "run", "--port", str(port), "--auth", "token",
                    "--allow-unconfigured"],
        "user": f"{GATEWAY_UID}:{GATEWAY_UID}",
        "working_dir": "/app",
        "environment": environment,
        "labels": {"aegis.tenant": str(tenant.pk), "aegis.schema": tenant.schema_name, "aegis.managed-by": "aegis"},
        "nano_cpus": int(float(limits["cpus"]) * SECOND_NS),
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap on top: the limit is the limit
        "pids_limit": int(limits["pids_limit"]),
        "ports": {f"{port}/tcp": ("127.0.0.1", port)},
        "volumes": {volume_name(tenant): {"bind": OPENCLAW_HOME, "mode": "rw"}},
        "read_only": True,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=256m"},  # noqa: S108 (the container's own private tmpfs)
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "init": True,  # reaps the gateway's helper processes
        "stop_signal": "SIGTERM",
        "healthcheck": {"test": ["CMD", "node", "-e", ready_check], "interval": 30 * SECOND_NS,
                        "timeout": 5 * SECOND_NS, "retries": 3, "start_period": 60 * SECOND_NS},
        "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
        "restart_policy": {"Name": "unless-stopped"},  # survives an engine restart; stop() still stops it
        "detach": True,
    }
    if limits.get("network") == "internal":
        # No egress. Docker does not publish ports of containers on internal networks; Aegis
        # reaches the gateway at the container's address on that network instead.
        spec["network"] = network_name(tenant)
    else:
        spec["network_mode"] = "bridge"
    return spec


def _tar(files: dict[str, bytes], *, directories: tuple[str, ...] = ()) -> bytes:
    """A tar of `files` (name -> content) owned by the gateway's user, for put_archive."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in directories:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o700, GATEWAY_UID, GATEWAY_UID, now
            tar.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(content), 0o600, GATEWAY_UID, GATEWAY_UID, now
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class DockerBackend(RuntimeBackend):
    name = "docker"
    # Inside the container the gateway listens on all interfaces; the host publishes the port
    # on 127.0.0.1 only (container_spec), so nothing outside the host reaches it.
    gateway_bind = "lan"

    def __init__(self, client_factory=None):
        self._client_factory = client_factory

    def gateway_log_file(self, runtime) -> str:
        return LOG_FILE

    # --- Engine access -------------------------------------------------------------------------

    @staticmethod
    def _engine_address() -> str:
        return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def _client(self):
        try:
            import docker
        except ImportError as exc:  # pinned in requirements.txt; a missing install is a deploy error
            raise RuntimeFailure("the `docker` Python package is not installed") from exc
        try:
            return self._client_factory() if self._client_factory else docker.from_env(timeout=30)
        except docker.errors.DockerException as exc:
            raise RuntimeFailure(f"Docker engine unreachable at {self._engine_address()}: {exc}") from exc

    @contextlib.contextmanager
    def _engine(self, action: str, subject: str):
        """Translate engine errors into RuntimeFailure, naming what was being done to what."""
        import docker
        import requests

        try:
            yield
        except RuntimeFailure:
            raise
        except docker.errors.ImageNotFound as exc:
            raise RuntimeFailure(f"cannot {action} {subject}: image {settings.RUNTIME_DOCKER_IMAGE} not found "
                                 f"({exc.explanation or exc})") from exc
        except docker.errors.NotFound as exc:
            raise RuntimeFailure(f"cannot {action} {subject}: not found ({exc.explanation or exc})") from exc
        except docker.errors.APIError as exc:
            raise RuntimeFailure(f"Docker engine refused to {action} {subject}: {exc.explanation or exc}") from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise RuntimeFailure(f"Docker engine unreachable at {self._engine_address()} "
                                 f"while trying to {action} {subject}: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise RuntimeFailure(f"cannot {action} {subject}: {exc}") from exc

    def _container(self, client, runtime):
        import docker

        name = container_name(runtime.tenant)
        with self._engine("inspect", f"container {name}"):
            try:
                return client.containers.get(name)
            except docker.errors.NotFound:
                return None

    # --- Operations ----------------------------------------------------------------------------

    def _ensure_image_volume_network(self, client, runtime) -> None:
        import docker

        tenant = runtime.tenant
        image = settings.RUNTIME_DOCKER_IMAGE
        with self._engine("pull", f"image {image}"):
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                client.images.pull(image)
        labels = {"aegis.tenant": str(tenant.pk), "aegis.managed-by": "aegis"}
        with self._engine("create", f"volume {volume_name(tenant)}"):
            try:
                client.volumes.get(volume_name(tenant))
            except docker.errors.NotFound:
                client.volumes.create(volume_name(tenant), labels=labels)
        if (tenant.resource_limits or {}).get("network") == "internal":
            with self._engine("create", f"network {network_name(tenant)}"):
                if not client.networks.list(names=[network_name(tenant)]):
                    client.networks.create(network_name(tenant), driver="bridge", internal=True, labels=labels)

    def _write_config(self, container, config: dict, *, running: bool) -> None:
        from apps.agents.openclaw.render import to_file_text

        text = to_file_text(config).encode()
        with self._engine("write the config into", f"container {container.name}"):
            if not running:
                archive = _tar({"openclaw.json": text}, directories=(".", "state", "logs"))
                container.put_archive(OPENCLAW_HOME, archive)
                return
            # Running: write beside it, then rename inside the container, so the gateway's file
            # watcher never reads a half-written file.
            container.put_archive(OPENCLAW_HOME, _tar({".openclaw.json.aegis-tmp": text}))
            code, output = container.exec_run(["mv", "-f", f"{OPENCLAW_HOME}/.openclaw.json.aegis-tmp", CONFIG_PATH],
                                              user=f"{GATEWAY_UID}:{GATEWAY_UID}")
            if code != 0:
                raise RuntimeFailure(f"could not move the new config into place: {output!r}")

    def start(self, runtime, config: dict) -> None:
        self._validated(config)
        client = self._client()
        container = self._container(client, runtime)
        if container is not None and container.status == "running":
            self._write_config(container, config, running=True)
            runtime.handle = container.id
            return
        if container is not None:
            # Recreated on every start: environment (secrets) and limits are fixed at creation,
            # and the state lives in the volume, not the container.
            with self._engine("remove", f"container {container.name}"):
                container.remove(force=True)
        self._ensure_image_volume_network(client, runtime)
        spec = container_spec(runtime.tenant, runtime, config, secrets_env=self._secrets_env(runtime))
        with self._engine("create", f"container {spec['name']}"):
            container = client.containers.create(**spec)
        self._write_config(container, config, running=False)
        with self._engine("start", f"container {spec['name']}"):
            container.start()
        runtime.handle = container.id

    def stop(self, runtime) -> None:
        client = self._client()
        container = self._container(client, runtime)
        if container is not None and container.status in ("running", "restarting", "paused"):
            with self._engine("stop", f"container {container.name}"):
                # SIGTERM, SIGKILL after the grace period (the gateway may drain for 325 s otherwise).
                container.stop(timeout=int(settings.RUNTIME_STOP_GRACE_SECONDS))
        runtime.handle = ""

    def apply_config(self, runtime, config: dict) -> str:
        self._validated(config)
        client = self._client()
        container = self._container(client, runtime)
        if container is None:
            return "written"  # nothing to write into: the next start creates it with this config
        if container.status != "running":
            self._write_config(container, config, running=False)
            return "written"
        started_with = dict(item.split("=", 1) for item in container.attrs.get("Config", {}).get("Env") or []
                            if "=" in item)
        wanted = self._secrets_env(runtime)
        if needs_restart(secrets_fingerprint(started_with, settings.SECRET_KEY),
                         secrets_fingerprint(wanted, settings.SECRET_KEY)):
            self.stop(runtime)
            self.start(runtime, config)
            return "restarted"
        self._write_config(container, config, running=True)
        return "reloaded"

    def _base_url(self, runtime, container) -> str:
        if (runtime.tenant.resource_limits or {}).get("network") == "internal":
            networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
            address = (networks.get(network_name(runtime.tenant)) or {}).get("IPAddress")
            if address:
                return f"http://{address}:{runtime.port}"
        return f"http://127.0.0.1:{runtime.port}"

    def status(self, runtime, *, gateway_health: bool = True) -> RuntimeStatus:
        client = self._client()
        container = self._container(client, runtime)
        if container is None:
            return RuntimeStatus(running=False, healthy=False, details={"reason": "no container"})
        state = container.attrs.get("State", {})
        if not state.get("Running"):
            return RuntimeStatus(running=False, healthy=False,
                                 details={"reason": f"container {state.get('Status', 'not running')}",
                                          "exit_code": state.get("ExitCode"), "error": state.get("Error", "")})
        with self._engine("read stats of", f"container {container.name}"):
            stats = container.stats(stream=False)
        probes = probe_gateway(self._base_url(runtime, container))
        details = {**probes, "container": container.id[:12],
                   "docker_health": (state.get("Health") or {}).get("Status")}
        if gateway_health and probes["live"]:
            try:
                details["gateway"] = self.gateway_call(runtime, "health")
            except RuntimeFailure as exc:
                details["gateway_error"] = str(exc)
        return RuntimeStatus(running=True, healthy=probes["serving"], cpu_percent=_cpu_percent(stats),
                             memory_mb=_memory_mb(stats), uptime_seconds=_uptime(state.get("StartedAt")),
                             details=details)

    def gateway_call(self, runtime, method: str, params: dict | None = None, *, timeout: float = 20) -> dict:
        client = self._client()
        container = self._container(client, runtime)
        if container is None or container.status != "running":
            raise RuntimeFailure(f"gateway call {method} failed: the container is not running")
        argv = ["node", "openclaw.mjs", "gateway", "call", method, "--params", json.dumps(params or {}),
                "--port", str(runtime.port), "--json", "--timeout", str(int(timeout * 1000))]
        # The container's environment already holds OPENCLAW_GATEWAY_TOKEN; the CLI gets a
        # scratch state dir and no config file so it never touches the gateway's.
        with self._engine(f"run `gateway call {method}` in", f"container {container.name}"):
            code, (stdout, stderr) = container.exec_run(
                argv, workdir="/app", user=f"{GATEWAY_UID}:{GATEWAY_UID}", demux=True,
                environment={"OPENCLAW_STATE_DIR": CLI_DIR, "OPENCLAW_CONFIG_PATH": f"{CLI_DIR}/none.json"})
        try:
            result = json.loads(stdout or b"")
        except ValueError:
            result = None
        if isinstance(result, dict) and result.get("ok") is False and "error" in result:
            raise RuntimeFailure(f"gateway call {method} failed: {result['error'].get('message', result['error'])}")
        if code != 0 or not isinstance(result, dict):
            raise RuntimeFailure(f"gateway call {method} failed (exit {code}): "
                                 f"{(stderr or stdout or b'').decode(errors='replace')[-500:]}")
        return result

    def logs(self, runtime, *, tail: int = 200) -> str:
        from apps.tenants.runtime.local import format_log_line

        client = self._client()
        container = self._container(client, runtime)
        if container is None:
            return ""
        with self._engine("read logs of", f"container {container.name}"):
            if container.status == "running":
                code, output = container.exec_run(["tail", "-n", str(int(tail)), LOG_FILE])
                if code == 0 and output:
                    return "\n".join(format_log_line(line) for line in output.decode(errors="replace").splitlines())
            return container.logs(tail=tail).decode(errors="replace")

    def remove(self, runtime) -> None:
        import docker

        client = self._client()
        tenant = runtime.tenant
        container = self._container(client, runtime)
        if container is not None:
            self.stop(runtime)
            with self._engine("remove", f"container {container.name}"):
                container.remove(force=True)
        with self._engine("remove", f"volume {volume_name(tenant)}"), contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(volume_name(tenant)).remove(force=True)
        with self._engine("remove", f"network {network_name(tenant)}"):
            for network in client.networks.list(names=[network_name(tenant)]):
                network.remove()
        runtime.handle = ""


def _cpu_percent(stats: dict) -> float | None:
    """`docker stats`' formula: the container's share of the host's CPU time since the last sample,
    times the number of CPUs."""
    try:
        cpu, pre = stats["cpu_stats"], stats["precpu_stats"]
        container_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
        system_delta = cpu["system_cpu_usage"] - pre.get("system_cpu_usage", 0)
        cpus = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or [1])
    except (KeyError, TypeError):
        return None
    if system_delta <= 0 or container_delta < 0:
        return 0.0
    return round(container_delta / system_delta * cpus * 100, 1)


def _memory_mb(stats: dict) -> float | None:
    memory = stats.get("memory_stats") or {}
    if "usage" not in memory:
        return None
    cache = (memory.get("stats") or {}).get("inactive_file", 0)  # what `docker stats` leaves out (cgroup v2)
    return round((memory["usage"] - cache) / (1024 * 1024), 1)


def _uptime(started_at: str | None) -> int | None:
    if not started_at or started_at.startswith("0001-"):
        return None
    # The engine gives nanoseconds (2026-11-25T13:45:11.123456789Z); Python parses microseconds.
    stamp = started_at.rstrip("Z")
    if "." in stamp:
        head, fraction = stamp.split(".", 1)
        stamp = f"{head}.{fraction[:6]}"
    try:
        started = datetime.fromisoformat(stamp).replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0, int((datetime.now(UTC) - started).total_seconds()))
