"""The tenant runtime's lifecycle, for provisioning, lifecycle tasks, ops commands and the API.

Each function locks the tenant's TenantRuntime row for the duration of the backend operation
(so a start, a stop and a config apply of one tenant never interleave), records the outcome in
`state` / `last_error`, and writes an AuditLog row (actor None = the system). Backend failures
are recorded, then re-raised as RuntimeFailure.

States: stopped -> starting -> running -> stopping -> stopped; any -> error (with last_error);
removed (folder/container gone, port freed, token wiped; `ensure_runtime` revives the row).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import record
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure, RuntimeStatus, get_backend

logger = logging.getLogger(__name__)

CONFIG_INVALID_ALERT = "runtime.config_invalid"
PORT_ATTEMPTS = 20


def config_alert_key(tenant) -> str:
    return f"{CONFIG_INVALID_ALERT}:{tenant.pk}"


def new_gateway_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits; unique per tenant (one gateway, one trust boundary)


def allocate_port(*, exclude: set[int] | frozenset = frozenset()) -> int:
    """The lowest port of RUNTIME_PORT_RANGE that no runtime row holds and nothing listens on.
    The unique index on TenantRuntime.port settles races between concurrent allocations."""
    from apps.tenants.runtime.local import port_is_free

    low, high = settings.RUNTIME_PORT_RANGE
    taken = set(TenantRuntime.objects.filter(port__isnull=False).values_list("port", flat=True)) | set(exclude)
    for port in range(low, high + 1):
        if port not in taken and port_is_free(port):
            return port
    raise RuntimeFailure(f"no free port left in RUNTIME_PORT_RANGE {low}-{high}")


def _get_runtime(tenant) -> TenantRuntime | None:
    return TenantRuntime.objects.select_related("tenant").filter(tenant_id=tenant.pk).first()


def _locked(tenant) -> TenantRuntime | None:
    return TenantRuntime.objects.select_for_update().select_related("tenant").filter(tenant_id=tenant.pk).first()


def _save(runtime: TenantRuntime, *fields: str) -> None:
    runtime.save(update_fields=[*fields, "updated_at"])


def _record(action: str, runtime: TenantRuntime, *, actor=None, request=None, **changes) -> None:
    record(action, actor=actor, tenant=runtime.tenant, target=runtime, request=request, changes=changes)


def ensure_runtime(tenant: Tenant, *, actor=None, request=None) -> TenantRuntime:
    """The tenant's TenantRuntime row, created (backend from RUNTIME_BACKEND, a free port, a new
    random token) when missing, and given a port and token again after `remove_runtime`."""
    for _attempt in range(PORT_ATTEMPTS):
        try:
            with transaction.atomic():
                runtime = _locked(tenant)
                if runtime is None:
                    runtime = TenantRuntime(tenant=tenant, backend=settings.RUNTIME_BACKEND, port=allocate_port(),
                                            gateway_token=new_gateway_token(), state=TenantRuntime.State.STOPPED)
                    runtime.save(force_insert=True)
                    _record("runtime.created", runtime, actor=actor, request=request,
                            backend=runtime.backend, port=runtime.port)
                    return runtime
                if runtime.port and runtime.gateway_token:
                    return runtime
                runtime.port = runtime.port or allocate_port()
                runtime.gateway_token = runtime.gateway_token or new_gateway_token()
                runtime.state = TenantRuntime.State.STOPPED
                _save(runtime, "port", "gateway_token", "state")
                _record("runtime.recreated", runtime, actor=actor, request=request, port=runtime.port)
                return runtime
        except IntegrityError:
            # Another tenant took the same port (or this tenant's row) meanwhile: look again.
            continue
    raise RuntimeFailure("could not allocate a runtime port: too many concurrent allocations")


def _render(tenant: Tenant, runtime: TenantRuntime) -> tuple[dict, list[str]]:
    """The tenant's config and its validation errors. A database error while reading (a schema
    gone missing) becomes a RuntimeFailure; the savepoint keeps the caller's transaction usable
    so the failure can still be recorded."""
    from apps.agents.openclaw.render import render_tenant_config, validate_config

    try:
        with transaction.atomic():
            config = render_tenant_config(tenant, runtime)
    except DatabaseError as exc:
        raise RuntimeFailure(f"could not read the tenant's configuration: {exc}") from exc
    return config, validate_config(config)


def _render_validated(tenant: Tenant, runtime: TenantRuntime) -> dict:
    """Render and validate; an invalid config raises the tenant's config alert and RuntimeFailure."""
    config, errors = _render(tenant, runtime)
    if errors:
        _config_alert(tenant, errors)
        raise RuntimeFailure(f"the rendered OpenClaw config is invalid: {'; '.join(errors[:5])}")
    return config


def _config_alert(tenant: Tenant, errors: list[str]) -> None:
    from apps.monitoring.services import raise_alert

    shown = "\n".join(f"- {error}" for error in errors[:20])
    more = f"\n(and {len(errors) - 20} more)" if len(errors) > 20 else ""
    raise_alert(kind=CONFIG_INVALID_ALERT, severity="warning", tenant=tenant, dedup_key=config_alert_key(tenant),
                message=f"The OpenClaw configuration rendered for {tenant.company_name} failed validation and was "
                        f"not applied; the gateway keeps its last applied configuration.\n{shown}{more}")


def _config_valid_again(tenant: Tenant) -> None:
    from apps.monitoring.services import auto_resolve

    auto_resolve(config_alert_key(tenant))


def _fail(runtime: TenantRuntime, action: str, exc: Exception, *, actor=None, request=None) -> None:
    runtime.state, runtime.last_error = TenantRuntime.State.ERROR, str(exc)[:4000]
    _save(runtime, "state", "last_error", "handle")
    _record(action, runtime, actor=actor, request=request, error=runtime.last_error)


def _start_locked(tenant: Tenant, runtime: TenantRuntime, *, actor, request) -> None:
    from apps.agents.openclaw.render import config_hash
    from apps.tenants.runtime.local import port_is_free

    backend = get_backend(runtime.backend)
    if backend.is_running(runtime):
        _refresh_running(tenant, runtime, backend, actor=actor, request=request)
        return
    if backend.name == "local" and not port_is_free(runtime.port):
        # Something else took the port while the gateway was down: move to a free one.
        before = runtime.port
        runtime.port = allocate_port(exclude={before})
        _save(runtime, "port")
        _record("runtime.port_changed", runtime, actor=actor, request=request,
                port={"before": before, "after": runtime.port})
    runtime.state = TenantRuntime.State.STARTING
    _save(runtime, "state")
    try:
        config = _render_validated(tenant, runtime)
        backend.start(runtime, config)
    except RuntimeFailure as exc:
        _fail(runtime, "runtime.start_failed", exc, actor=actor, request=request)
        raise
    runtime.state, runtime.last_error = TenantRuntime.State.RUNNING, ""
    runtime.started_at = runtime.config_applied_at = timezone.now()
    runtime.config_hash = config_hash(config)
    _save(runtime, "state", "last_error", "handle", "started_at", "config_hash", "config_applied_at")
    _record("runtime.started", runtime, actor=actor, request=request, backend=runtime.backend, port=runtime.port,
            handle=runtime.handle, config_hash=runtime.config_hash)


def _refresh_running(tenant: Tenant, runtime: TenantRuntime, backend, *, actor, request) -> None:
    """start_runtime on a gateway that already runs: it keeps running (same process, same
    started_at) with the current config, restarted only if that config needs a secret it lacks."""
    from apps.agents.openclaw.render import config_hash

    try:
        config = _render_validated(tenant, runtime)
        how = backend.apply_config(runtime, config)
    except RuntimeFailure as exc:
        _fail(runtime, "runtime.start_failed", exc, actor=actor, request=request)
        raise
    digest, now = config_hash(config), timezone.now()
    changed = digest != runtime.config_hash
    runtime.state, runtime.last_error = TenantRuntime.State.RUNNING, ""
    if changed:
        runtime.config_hash, runtime.config_applied_at = digest, now
    if how == "restarted" or runtime.started_at is None:
        runtime.started_at = now
    _save(runtime, "state", "last_error", "handle", "config_hash", "config_applied_at", "started_at")
    if changed or how == "restarted":
        _record("runtime.config_applied", runtime, actor=actor, request=request, how=how, config_hash=digest)


class _Outcome:
    """Holds a RuntimeFailure raised inside `_committing`, to re-raise once the block committed."""

    failure: RuntimeFailure | None = None


@contextlib.contextmanager
def _committing():
    """A transaction whose RuntimeFailure is re-raised only after the commit: the `error` state,
    the audit row and any alert recorded on the way out must survive the failure they describe."""
    outcome = _Outcome()
    with transaction.atomic():
        try:
            yield outcome
        except RuntimeFailure as exc:
            outcome.failure = exc
    if outcome.failure is not None:
        raise outcome.failure


def start_runtime(tenant: Tenant, *, actor=None, request=None) -> TenantRuntime:
    """Render the tenant's config and start its gateway (already running: left running, config
    rewritten). Does not wait for it to serve: see `wait_until_healthy`."""
    ensure_runtime(tenant, actor=actor, request=request)
    with _committing():
        runtime = _locked(tenant)
        _start_locked(tenant, runtime, actor=actor, request=request)
    _config_valid_again(tenant)
    return runtime


def _stop_locked(runtime: TenantRuntime, *, actor, request, action: str = "runtime.stopped") -> None:
    before = runtime.state
    runtime.state = TenantRuntime.State.STOPPING
    _save(runtime, "state")
    try:
        get_backend(runtime.backend).stop(runtime)
    except RuntimeFailure as exc:
        _fail(runtime, "runtime.stop_failed", exc, actor=actor, request=request)
        raise
    runtime.state, runtime.last_error = TenantRuntime.State.STOPPED, ""
    _save(runtime, "state", "last_error", "handle")
    _record(action, runtime, actor=actor, request=request, state={"before": before, "after": runtime.state})


def stop_runtime(tenant: Tenant, *, actor=None, request=None) -> TenantRuntime | None:
    """Stop the gateway, keeping its state (idempotent; None when the tenant has no runtime)."""
    with _committing():
        runtime = _locked(tenant)
        if runtime is None or runtime.state == TenantRuntime.State.REMOVED:
            return runtime
        _stop_locked(runtime, actor=actor, request=request)
    return runtime


def restart_runtime(tenant: Tenant, *, actor=None, request=None) -> TenantRuntime:
    ensure_runtime(tenant, actor=actor, request=request)
    with _committing():
        runtime = _locked(tenant)
        _stop_locked(runtime, actor=actor, request=request)
        _start_locked(tenant, runtime, actor=actor, request=request)
        _record("runtime.restarted", runtime, actor=actor, request=request)
    _config_valid_again(tenant)
    return runtime


def remove_runtime(tenant: Tenant, *, actor=None, request=None) -> TenantRuntime | None:
    """Stop the gateway and delete everything it kept (folder or container and volume); the
    port is freed and the encrypted token wiped. The row stays, `removed`, for the audit trail."""
    with _committing():
        runtime = _locked(tenant)
        if runtime is None:
            return None
        try:
            get_backend(runtime.backend).remove(runtime)
        except RuntimeFailure as exc:
            _fail(runtime, "runtime.remove_failed", exc, actor=actor, request=request)
            raise
        before = runtime.state
        runtime.state, runtime.last_error, runtime.handle = TenantRuntime.State.REMOVED, "", ""
        runtime.port, runtime.gateway_token, runtime.config_hash = None, "", ""
        runtime.config_applied_at = None
        _save(runtime, "state", "last_error", "handle", "port", "gateway_token", "config_hash", "config_applied_at")
        _record("runtime.removed", runtime, actor=actor, request=request, state={"before": before, "after": "removed"})
    return runtime


def runtime_status(tenant: Tenant, *, gateway_health: bool = True) -> RuntimeStatus:
    """The runtime's live status. A gateway that is down while its row says `running` is
    recorded as `error` (it crashed or was killed outside Aegis)."""
    runtime = _get_runtime(tenant)
    if runtime is None or runtime.state == TenantRuntime.State.REMOVED:
        return RuntimeStatus(running=False, healthy=False, details={"reason": "no runtime"})
    status = get_backend(runtime.backend).status(runtime, gateway_health=gateway_health)
    if not status.running and runtime.state == TenantRuntime.State.RUNNING:
        with transaction.atomic():
            locked = _locked(tenant)
            if locked.state == TenantRuntime.State.RUNNING:
                reason = status.details.get("reason", "the gateway is not running")
                _fail(locked, "runtime.exited", RuntimeFailure(f"{reason} (exited outside Aegis's control)"))
    return status


def wait_until_healthy(tenant: Tenant, timeout: float = 60, *, interval: float = 0.5) -> RuntimeStatus:
    """Poll until the gateway serves (live, readiness failing on nothing but channel accounts).
    The pinned gateway needs 10-20 s from start on this kind of machine. On timeout, or when the
    process is gone, the runtime is marked `error` with the reason and its last log lines."""
    runtime = _get_runtime(tenant)
    if runtime is None:
        raise RuntimeFailure("the tenant has no runtime")
    backend = get_backend(runtime.backend)
    deadline = time.monotonic() + timeout
    status = backend.status(runtime, gateway_health=False)
    while not status.healthy:
        if not status.running:
            problem = "the gateway process exited while starting"
            break
        if time.monotonic() >= deadline:
            problem = f"the gateway did not become ready within {timeout:.0f} s ({status.details.get('readyz')})"
            break
        time.sleep(interval)
        status = backend.status(runtime, gateway_health=False)
    else:
        return status
    try:
        tail = backend.logs(runtime, tail=10)
    except RuntimeFailure:
        tail = ""
    with transaction.atomic():
        locked = _locked(tenant)
        _fail(locked, "runtime.unhealthy", RuntimeFailure(f"{problem}\n{tail}".strip()))
    raise RuntimeFailure(problem)


def apply_runtime_config(tenant: Tenant) -> str:
    """Re-render the tenant's config and hand it to its running gateway. Idempotent:

    - "no-runtime": the tenant has no running runtime; nothing is recorded (the next start
      renders the config anyway);
    - "invalid": validation failed; nothing is applied and a deduplicated
      runtime.config_invalid alert carries the errors;
    - "unchanged": the rendered config has the hash already applied;
    - "reloaded" / "restarted": applied (restarted when it needs a secret the process lacks).
    """
    from apps.agents.openclaw.render import config_hash

    with _committing():
        runtime = _locked(tenant)
        if runtime is None or runtime.state != TenantRuntime.State.RUNNING:
            return "no-runtime"
        config, errors = _render(tenant, runtime)
        if errors:
            _config_alert(tenant, errors)
            return "invalid"
        digest = config_hash(config)
        if digest == runtime.config_hash:
            outcome = "unchanged"
        else:
            backend = get_backend(runtime.backend)
            try:
                outcome = backend.apply_config(runtime, config)
            except RuntimeFailure as exc:
                _fail(runtime, "runtime.config_apply_failed", exc)
                raise
            before = runtime.config_hash
            runtime.config_hash, runtime.config_applied_at, runtime.last_error = digest, timezone.now(), ""
            fields = ["config_hash", "config_applied_at", "last_error", "handle"]
            if outcome == "restarted":
                runtime.started_at = runtime.config_applied_at
                fields.append("started_at")
            _save(runtime, *fields)
            _record("runtime.config_applied", runtime, how=outcome,
                    config_hash={"before": before, "after": digest})
    _config_valid_again(tenant)
    return outcome
