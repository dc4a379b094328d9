"""The interface every runtime backend implements. Callers (services, tasks, commands) use
only this; they never know whether a gateway is a process or a container."""

from __future__ import annotations

import abc
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

BACKENDS = {
    "local": "apps.tenants.runtime.local.LocalProcessBackend",
    "docker": "apps.tenants.runtime.docker.DockerBackend",
}


class RuntimeFailure(Exception):
    """A backend operation failed; the message is safe to show to platform admins."""


@dataclass(frozen=True)
class RuntimeStatus:
    running: bool
    healthy: bool  # the gateway answers its readiness probe
    cpu_percent: float | None = None
    memory_mb: float | None = None
    uptime_seconds: int | None = None
    details: dict[str, Any] = field(default_factory=dict)  # the gateway's own health JSON, errors


class RuntimeBackend(abc.ABC):
    """Operations on one tenant's gateway; `runtime` is its apps.tenants.models.TenantRuntime row.

    Backends read the tenant's secrets themselves (apps.agents.openclaw.render.runtime_secrets_env)
    so they never travel through a task message or a log line. Operations that change the
    process set `runtime.handle` (and `runtime.port` never); the caller saves the row.
    """

    name: str
    # `gateway.bind` in the rendered config: where the gateway listens, seen from inside its runtime.
    gateway_bind: str = "loopback"

    @abc.abstractmethod
    def gateway_log_file(self, runtime) -> str:
        """The path of the gateway's log file as the gateway sees it (`logging.file`)."""

    @abc.abstractmethod
    def start(self, runtime, config: dict) -> None:
        """Write `config` and start the gateway (idempotent: a running gateway is left running)."""

    @abc.abstractmethod
    def stop(self, runtime) -> None:
        """Stop the gateway, keeping its state (idempotent)."""

    def restart(self, runtime, config: dict) -> None:
        self.stop(runtime)
        self.start(runtime, config)

    @abc.abstractmethod
    def apply_config(self, runtime, config: dict) -> str:
        """Hand a new config to the gateway, which hot-reloads its file. Validates it again (an
        invalid file is never written) and restarts the gateway instead when the config needs a
        secret the running gateway was not started with. Returns "written" (not running),
        "reloaded" or "restarted"."""

    @abc.abstractmethod
    def status(self, runtime, *, gateway_health: bool = True) -> RuntimeStatus:
        """Process/container state, resources and probes; with `gateway_health`, also the
        gateway's own health JSON (a CLI call of a few seconds) in details["gateway"].
        `healthy` means serving: live, with readiness failing on nothing but channel accounts."""

    def is_running(self, runtime) -> bool:
        """Whether the gateway process/container runs (no probes, no health call)."""
        return self.status(runtime, gateway_health=False).running

    @abc.abstractmethod
    def logs(self, runtime, *, tail: int = 200) -> str:
        """The last lines of the gateway's log."""

    @abc.abstractmethod
    def remove(self, runtime) -> None:
        """Stop and delete everything the runtime kept (state folder or container and volume)."""

    @abc.abstractmethod
    def gateway_call(self, runtime, method: str, params: dict | None = None, *, timeout: float = 20) -> dict:
        """Call a gateway RPC method (`openclaw gateway call`), e.g. `health` or `agents.list`."""

    # --- For the backends' own use ---------------------------------------------------------------

    def _secrets_env(self, runtime) -> dict[str, str]:
        """The environment the gateway's SecretRefs resolve from, read here (see the class docstring)."""
        from apps.agents.openclaw.render import runtime_secrets_env

        return runtime_secrets_env(runtime.tenant, runtime)

    def _validated(self, config: dict) -> None:
        """Refuses an invalid config: checked again before every write, so an invalid file is never written."""
        from apps.agents.openclaw.render import validate_config

        errors = validate_config(config)
        if errors:
            raise RuntimeFailure(f"refusing an invalid OpenClaw config: {'; '.join(errors[:5])}")


# --- Helpers shared by the backends ----------------------------------------------------------------

PROBE_TIMEOUT = 2.0  # seconds; a gateway that cannot answer a probe this fast counts as not answering


def probe(url: str, *, timeout: float = PROBE_TIMEOUT) -> tuple[int | None, dict]:
    """GET a gateway probe (`/health`, `/readyz`: no auth). (status, JSON body); (None, {error}) when
    nothing answered. Probes answer 503 with a JSON body too, which is information, not an error."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http://127.0.0.1 only)
            return response.status, _json_or_text(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json_or_text(exc.read())
    except (OSError, ValueError) as exc:
        return None, {"error": f"{type(exc).__name__}: {exc}"}


def _json_or_text(body: bytes) -> dict:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {"text": body[:500].decode(errors="replace")}
    return value if isinstance(value, dict) else {"value": value}


def probe_gateway(base_url: str) -> dict[str, Any]:
    """Liveness and readiness of a gateway at `base_url` (http://host:port).

    `serving` is what "the gateway is up" means to Aegis: live, and readiness fails on nothing
    but channel accounts. A customer's broken Slack token makes `/readyz` 503 forever; that is a
    channel problem shown per channel, not a runtime outage.
    """
    live_status, _ = probe(f"{base_url}/health")
    ready_status, ready = probe(f"{base_url}/readyz")
    failing = [str(item) for item in ready.get("failing", [])] if isinstance(ready.get("failing"), list) else []
    from apps.agents.openclaw.render import RENDERED_CHANNELS

    return {
        "live": live_status == 200,
        "ready": ready_status == 200,
        "failing": failing,
        "serving": live_status == 200 and (ready_status == 200 or (
            ready_status == 503 and bool(failing) and all(item in RENDERED_CHANNELS for item in failing))),
        "readyz": ready,
    }


def secrets_fingerprint(env: dict[str, str], key: str) -> dict[str, str]:
    """Per variable, an HMAC of its value: tells whether a running gateway was started with the
    secrets a new config needs, without keeping the secrets themselves anywhere new."""
    return {name: hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest() for name, value in env.items()}


def needs_restart(started_with: dict[str, str], wanted: dict[str, str]) -> bool:
    """A new config can hot-reload unless it references a secret the process does not have (the
    environment of a running process cannot change). Secrets no longer needed are harmless."""
    return any(started_with.get(name) != digest for name, digest in wanted.items())


def get_backend(name: str | None = None) -> RuntimeBackend:
    name = name or settings.RUNTIME_BACKEND
    try:
        return import_string(BACKENDS[name])()
    except KeyError as exc:
        raise RuntimeFailure(f"unknown runtime backend {name!r}; choose one of {', '.join(BACKENDS)}") from exc
