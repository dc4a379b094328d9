"""The runtime boundary, faked for tests of the lifecycle, health and ops logic.

A gateway is a third-party process of about 1 GB that takes 10-20 s to start, so these tests
replace the runtime services (apps/tenants/runtime/services.py) with `FakeRuntime` behind an
autospec of the real module: a call with a name or signature the real services do not have
fails, and `runtime.api.mock_calls` lists every call in order. The fake keeps TenantRuntime
rows the way the real services do (ports, states, the token wiped on removal), so the database
side stays real. One end-to-end test with a real gateway lives with the runtime's own tests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from unittest import mock

import pytest

from apps.tenants.models import TenantRuntime
from apps.tenants.runtime import services as runtime_services
from apps.tenants.runtime.base import RuntimeFailure, RuntimeStatus

HEALTHY_DETAILS = {"live": True, "ready": True, "serving": True, "failing": [], "gateway": {"ok": True}}
_ports = itertools.count(19500)


@dataclass
class FakeRuntime:
    status: RuntimeStatus = field(default_factory=lambda: RuntimeStatus(
        running=True, healthy=True, cpu_percent=2.5, memory_mb=640.0, uptime_seconds=42, details=HEALTHY_DETAILS))
    # Exceptions to raise, per operation name, one per call, before the operation does anything.
    failures: dict[str, list[BaseException]] = field(default_factory=dict)

    def _maybe_fail(self, operation: str) -> None:
        pending = self.failures.get(operation)
        if pending:
            raise pending.pop(0)

    def ensure_runtime(self, tenant, *, actor=None, request=None):
        self._maybe_fail("ensure_runtime")
        runtime, _ = TenantRuntime.objects.get_or_create(tenant=tenant, defaults={
            "backend": "local", "port": next(_ports), "gateway_token": "fake-token"})
        if runtime.state == TenantRuntime.State.REMOVED:
            runtime.port, runtime.gateway_token, runtime.state = next(_ports), "fake-token", TenantRuntime.State.STOPPED
            runtime.save()
        return runtime

    def _set_state(self, tenant, state):
        runtime = TenantRuntime.objects.filter(tenant=tenant).first()
        if runtime is not None and runtime.state != TenantRuntime.State.REMOVED:
            runtime.state = state
            runtime.save(update_fields=["state", "updated_at"])
        return runtime

    def start_runtime(self, tenant, *, actor=None, request=None):
        self._maybe_fail("start_runtime")
        self.ensure_runtime(tenant)
        return self._set_state(tenant, TenantRuntime.State.RUNNING)

    def stop_runtime(self, tenant, *, actor=None, request=None):
        self._maybe_fail("stop_runtime")
        return self._set_state(tenant, TenantRuntime.State.STOPPED)

    def restart_runtime(self, tenant, *, actor=None, request=None):
        self._maybe_fail("restart_runtime")
        self.ensure_runtime(tenant)
        return self._set_state(tenant, TenantRuntime.State.RUNNING)

    def remove_runtime(self, tenant, *, actor=None, request=None):
        self._maybe_fail("remove_runtime")
        runtime = TenantRuntime.objects.filter(tenant=tenant).first()
        if runtime is not None:
            runtime.state, runtime.port, runtime.gateway_token = TenantRuntime.State.REMOVED, None, ""
            runtime.save()
        return runtime

    def wait_until_healthy(self, tenant, timeout=60, *, interval=0.5):
        self._maybe_fail("wait_until_healthy")
        if not self.status.healthy:
            raise RuntimeFailure(f"the gateway did not become ready within {timeout:.0f} s")
        return self.status

    def runtime_status(self, tenant, *, gateway_health=True):
        self._maybe_fail("runtime_status")
        return self.status

    def apply_runtime_config(self, tenant):
        self._maybe_fail("apply_runtime_config")
        return "reloaded"


@dataclass
class Runtime:
    api: mock.MagicMock  # autospec of apps.tenants.runtime.services, calling into `fake`
    fake: FakeRuntime

    def calls(self) -> list[tuple[str, str]]:
        """(operation, tenant slug) of every call so far, in order."""
        return [(name, call_args[0].slug) for name, call_args, _ in self.api.mock_calls if call_args]


@pytest.fixture
def runtime(settings, monkeypatch) -> Runtime:
    """Runtimes on (TENANT_RUNTIMES_ENABLED), with the runtime services faked."""
    settings.TENANT_RUNTIMES_ENABLED = True
    fake = FakeRuntime()
    api = mock.create_autospec(runtime_services, spec_set=True)
    for name in ("ensure_runtime", "start_runtime", "stop_runtime", "restart_runtime", "remove_runtime",
                 "wait_until_healthy", "runtime_status", "apply_runtime_config"):
        getattr(api, name).side_effect = getattr(fake, name)
    monkeypatch.setattr("apps.tenants.tasks.runtime_api", lambda: api)
    return Runtime(api=api, fake=fake)
