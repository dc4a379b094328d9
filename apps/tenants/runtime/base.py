"""The interface every runtime backend implements. Callers (services, tasks, commands) use
only this; they never know whether a gateway is a process or a container."""

from __future__ import annotations

import abc
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
    """Operations on one tenant's gateway; `runtime` is its apps.tenants.models.TenantRuntime row."""

    name: str

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
    def apply_config(self, runtime, config: dict) -> None:
        """Hand a new, already validated config to the gateway (it hot-reloads its file)."""

    @abc.abstractmethod
    def status(self, runtime) -> RuntimeStatus:
        """Process/container state plus the gateway's health."""

    @abc.abstractmethod
    def logs(self, runtime, *, tail: int = 200) -> str:
        """The last lines of the gateway's log."""

    @abc.abstractmethod
    def remove(self, runtime) -> None:
        """Stop and delete everything the runtime kept (state folder or container and volume)."""


def get_backend(name: str | None = None) -> RuntimeBackend:
    name = name or settings.RUNTIME_BACKEND
    try:
        return import_string(BACKENDS[name])()
    except KeyError as exc:
        raise RuntimeFailure(f"unknown runtime backend {name!r}; choose one of {', '.join(BACKENDS)}") from exc
