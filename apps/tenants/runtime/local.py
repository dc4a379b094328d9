"""The `local` backend: each tenant's OpenClaw gateway as a supervised process on this host.

Per tenant, RUNTIME_DIR/<schema_name>/ (mode 0700) holds:

    openclaw.json              the rendered config (atomic writes; OpenClaw adds .bak/.last-good beside it)
    state/                     OPENCLAW_STATE_DIR: sqlite state, agent workspaces, plugin installs
    logs/openclaw.log          the gateway's own log (`logging.file`, JSON lines)
    logs/gateway.out           the process's stdout/stderr (warnings and start-up failures)
    gateway.pid                the gateway's pid (also in TenantRuntime.handle)
    secrets.fingerprint.json   HMACs of the secrets the process was started with (see needs_restart)
    cli/                       scratch state dir for `openclaw gateway call` (never the gateway's)

The gateway is started through `sh -c '... &'` in a new session: the shell exits at once, so
the gateway is re-parented to init and outlives the Celery task (and worker) that started it,
and no worker is left holding a zombie. The token reaches it as OPENCLAW_GATEWAY_TOKEN (the
config's SecretRef), never on the command line where `ps` shows it. Only an allow-list of the
host environment is passed on: the worker's own environment holds Aegis's database URL and
encryption keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
from django.conf import settings

from apps.tenants.runtime.base import (
    RuntimeBackend,
    RuntimeFailure,
    RuntimeStatus,
    needs_restart,
    probe_gateway,
    secrets_fingerprint,
)

KILL_WAIT = 5.0
START_CHECK = 1.0  # a gateway that dies this fast (bad flag, missing binary) is reported at once
GATEWAY_TITLE = "openclaw-gateway"  # the process title the pinned gateway sets for itself
# Host variables a gateway may inherit: locale, paths, proxies and CAs for its outbound calls.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
              "https_proxy", "no_proxy", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "npm_config_registry")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def atomic_write(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write via a temp file in the same folder and rename: the gateway's file watcher never sees
    a half-written config."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def tail_lines(path: Path, count: int, *, chunk: int = 65536) -> list[str]:
    """The last `count` lines of a file, reading from the end (log files grow large)."""
    if count <= 0 or not path.exists():
        return []
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        end = position = f.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            position = max(0, position - chunk)
            f.seek(position)
            data = f.read(end - position)
    return data.decode(errors="replace").splitlines()[-count:]


def format_log_line(line: str) -> str:
    """One JSON line of OpenClaw's file log as `time LEVEL [subsystem] message`."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict):
        return line
    meta = entry.get("_meta") or {}
    subsystem = ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        subsystem = json.loads(meta.get("name") or "{}").get("subsystem", "")
    message = entry.get("message")
    if message is None:
        message = " ".join(str(v) for k, v in sorted(entry.items()) if k.isdigit() and k != "0")
    prefix = f"[{subsystem}] " if subsystem else ""
    return f"{entry.get('time', '')} {meta.get('logLevelName', '')} {prefix}{message}".strip()


def _signal_group(process: psutil.Process, signum: int) -> None:
    """Signal the gateway's process group (the gateway and the children it did not move to a
    session of their own); just the process if it shares our group (a gateway started by hand)."""
    with contextlib.suppress(ProcessLookupError, PermissionError, psutil.NoSuchProcess):
        group = os.getpgid(process.pid)
        if group in (0, 1, os.getpgrp()):
            process.send_signal(signum)
        else:
            os.killpg(group, signum)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited; returns those still running. A zombie counts as
    exited: whoever adopted it (init) reaps it on its own schedule."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    return alive


class LocalProcessBackend(RuntimeBackend):
    name = "local"
    gateway_bind = "loopback"

    # --- Paths ---------------------------------------------------------------------------------

    def folder(self, runtime) -> Path:
        return Path(settings.RUNTIME_DIR) / runtime.tenant.schema_name

    def config_path(self, runtime) -> Path:
        return self.folder(runtime) / "openclaw.json"

    def state_dir(self, runtime) -> Path:
        return self.folder(runtime) / "state"

    def gateway_log_file(self, runtime) -> str:
        return str(self.folder(runtime) / "logs" / "openclaw.log")

    def _console_log(self, runtime) -> Path:
        return self.folder(runtime) / "logs" / "gateway.out"

    def _pidfile(self, runtime) -> Path:
        return self.folder(runtime) / "gateway.pid"

    def _fingerprint_file(self, runtime) -> Path:
        return self.folder(runtime) / "secrets.fingerprint.json"

    @staticmethod
    def executable() -> Path:
        return Path(settings.OPENCLAW_HOME) / "bin" / "openclaw"

    def _prepare(self, runtime) -> None:
        for path in (self.folder(runtime), self.state_dir(runtime), self.folder(runtime) / "logs",
                     self.folder(runtime) / "cli"):
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o700)

    # --- Processes -----------------------------------------------------------------------------

    def _is_ours(self, process: psutil.Process, state_dir: str) -> bool:
        """Whether `process` is (part of) this tenant's gateway: it runs with our state dir. A pid
        alone is not enough: after a crash the number may belong to something else."""
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return process.environ().get("OPENCLAW_STATE_DIR") == state_dir
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False

    def _tenant_processes(self, runtime) -> list[psutil.Process]:
        """Every live process of this tenant's gateway, helpers in their own sessions included
        (the spawn broker escapes the gateway's process group: README, Stopping)."""
        state_dir = str(self.state_dir(runtime))
        found = []
        for process in psutil.process_iter():
            if process.pid != os.getpid() and self._is_ours(process, state_dir):
                found.append(process)
        return found

    def _main_process(self, runtime) -> psutil.Process | None:
        state_dir = str(self.state_dir(runtime))
        candidates = [runtime.handle]
        with contextlib.suppress(OSError):
            candidates.append(self._pidfile(runtime).read_text().strip())
        for candidate in candidates:
            if candidate and candidate.isdigit():
                with contextlib.suppress(psutil.NoSuchProcess):
                    process = psutil.Process(int(candidate))
                    if self._is_ours(process, state_dir):
                        return process
        # Pid lost (folder restored, row edited): recognise the gateway by its title.
        for process in self._tenant_processes(runtime):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if process.name() == GATEWAY_TITLE or (process.cmdline()[:1] == [GATEWAY_TITLE]):
                    return process
        return None

    def _process_tree(self, runtime, main: psutil.Process) -> list[psutil.Process]:
        tree = {main.pid: main}
        with contextlib.suppress(psutil.NoSuchProcess):
            tree.update({child.pid: child for child in main.children(recursive=True)})
        tree.update({p.pid: p for p in self._tenant_processes(runtime)})
        return list(tree.values())

    # --- Operations ----------------------------------------------------------------------------

    def _write_config(self, runtime, config: dict) -> None:
        from apps.agents.openclaw.render import to_file_text

        self._prepare(runtime)
        atomic_write(self.config_path(runtime), to_file_text(config))

    def start(self, runtime, config: dict) -> None:
        self._validated(config)
        secrets_env = self._secrets_env(runtime)
        main = self._main_process(runtime)
        self._write_config(runtime, config)
        if main is not None:
            runtime.handle = str(main.pid)
            return
        executable = self.executable()
        if not executable.exists():
            raise RuntimeFailure(f"OpenClaw is not installed at {executable}: run `make openclaw`")
        if not runtime.port:
            raise RuntimeFailure("the runtime has no port allocated")
        if not port_is_free(runtime.port):
            raise RuntimeFailure(f"port {runtime.port} on 127.0.0.1 is already in use by another process")

        folder = self.folder(runtime)
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(secrets_env)
        env.update({
            "OPENCLAW_STATE_DIR": str(self.state_dir(runtime)),
            "OPENCLAW_CONFIG_PATH": str(self.config_path(runtime)),
            "HOME": str(folder),  # npm caches, dotfiles: per tenant, never the worker's home
        })
        console = self._console_log(runtime)
        argv = [str(executable), "gateway", "run", "--port", str(runtime.port), "--auth", "token",
                "--allow-unconfigured"]
        # The shell starts the gateway in the background and exits: `$!` is the gateway's pid.
        launcher = 'log=$1; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!'
        try:
            launched = subprocess.run(  # noqa: S603 (fixed argv; no shell interpolation of values)
                ["/bin/sh", "-c", launcher, "aegis-openclaw", str(console), *argv],
                env=env, cwd=folder, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                start_new_session=True, timeout=30, check=True,
            )
            pid = int(launched.stdout.strip())
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise RuntimeFailure(f"could not launch the OpenClaw gateway: {exc}") from exc
        self._pidfile(runtime).write_text(f"{pid}\n")
        atomic_write(self._fingerprint_file(runtime),
                     json.dumps(secrets_fingerprint(secrets_env, settings.SECRET_KEY), sort_keys=True))
        runtime.handle = str(pid)

        deadline = time.monotonic() + START_CHECK
        while time.monotonic() < deadline:
            if self._main_process(runtime) is None:
                tail = "\n".join(tail_lines(console, 15))
                runtime.handle = ""
                raise RuntimeFailure(f"the OpenClaw gateway exited right after starting:\n{tail}")
            time.sleep(0.1)

    def stop(self, runtime) -> None:
        main = self._main_process(runtime)
        if main is not None:
            _signal_group(main, signal.SIGTERM)
            # With unreachable channel APIs the gateway drains for 325 s (README, Stopping).
            if _wait_gone([main], settings.RUNTIME_STOP_GRACE_SECONDS):
                _signal_group(main, signal.SIGKILL)
        # Whatever is left (helpers in their own sessions, a gateway that ignored SIGTERM).
        leftovers = self._tenant_processes(runtime)
        for process in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                process.kill()
        still = _wait_gone(leftovers, KILL_WAIT)
        if still:
            raise RuntimeFailure(f"gateway processes survived SIGKILL: {sorted(p.pid for p in still)}")
        with contextlib.suppress(FileNotFoundError):
            self._pidfile(runtime).unlink()
        runtime.handle = ""

    def apply_config(self, runtime, config: dict) -> str:
        """Write the config; the running gateway hot-reloads it. If it references a secret the
        process was not started with (a new channel, a rotated token), restart instead: a
        process's environment cannot change. Returns "written", "reloaded" or "restarted"."""
        self._validated(config)
        main = self._main_process(runtime)
        if main is None:
            self._write_config(runtime, config)
            return "written"
        wanted = secrets_fingerprint(self._secrets_env(runtime), settings.SECRET_KEY)
        try:
            started_with = json.loads(self._fingerprint_file(runtime).read_text())
        except (OSError, ValueError):
            started_with = {}
        if needs_restart(started_with, wanted):
            self.stop(runtime)
            self.start(runtime, config)
            return "restarted"
        self._write_config(runtime, config)
        runtime.handle = str(main.pid)
        return "reloaded"

    def is_running(self, runtime) -> bool:
        return self._main_process(runtime) is not None

    def status(self, runtime, *, gateway_health: bool = True) -> RuntimeStatus:
        main = self._main_process(runtime)
        if main is None:
            return RuntimeStatus(running=False, healthy=False, details={"reason": "the gateway process is not running"})
        probes = probe_gateway(f"http://127.0.0.1:{runtime.port}")
        tree = self._process_tree(runtime, main)
        for process in tree:  # cpu_percent(None) measures from the previous call: prime, wait, read
            with contextlib.suppress(psutil.Error):
                process.cpu_percent(None)
        time.sleep(0.3)
        cpu = memory = 0.0
        for process in tree:
            with contextlib.suppress(psutil.Error):
                cpu += process.cpu_percent(None)
                memory += process.memory_info().rss / (1024 * 1024)
        try:
            uptime = int(time.time() - main.create_time())
        except psutil.Error:
            uptime = None
        details = {**probes, "pid": main.pid, "processes": len(tree)}
        if gateway_health and probes["live"]:
            try:
                details["gateway"] = self.gateway_call(runtime, "health")
            except RuntimeFailure as exc:
                details["gateway_error"] = str(exc)
        return RuntimeStatus(running=True, healthy=probes["serving"], cpu_percent=round(cpu, 1),
                             memory_mb=round(memory, 1), uptime_seconds=uptime, details=details)

    def gateway_call(self, runtime, method: str, params: dict | None = None, *, timeout: float = 20) -> dict:
        """`openclaw gateway call METHOD --port P --json`. The token goes in the environment
        (with --port instead of --url the CLI takes it from OPENCLAW_GATEWAY_TOKEN), and the CLI
        gets its own scratch state dir and no config file, so it never touches the gateway's."""
        cli = self.folder(runtime) / "cli"
        cli.mkdir(parents=True, exist_ok=True)
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update({"OPENCLAW_GATEWAY_TOKEN": runtime.gateway_token, "OPENCLAW_STATE_DIR": str(cli),
                    "OPENCLAW_CONFIG_PATH": str(cli / "absent.json"), "HOME": str(cli)})
        argv = [str(self.executable()), "gateway", "call", method, "--params", json.dumps(params or {}),
                "--port", str(runtime.port), "--json", "--timeout", str(int(timeout * 1000))]
        try:
            done = subprocess.run(argv, env=env, cwd=cli, stdin=subprocess.DEVNULL, capture_output=True,  # noqa: S603
                                  text=True, timeout=timeout + 15)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeFailure(f"gateway call {method} failed: {exc}") from exc
        try:
            result = json.loads(done.stdout)
        except ValueError:
            result = None
        if isinstance(result, dict) and result.get("ok") is False and "error" in result:
            error = result["error"]
            raise RuntimeFailure(f"gateway call {method} failed: {error.get('message', error)}")
        if done.returncode != 0 or not isinstance(result, dict):
            raise RuntimeFailure(f"gateway call {method} failed (exit {done.returncode}): "
                                 f"{(done.stderr or done.stdout).strip()[-500:]}")
        return result

    def logs(self, runtime, *, tail: int = 200) -> str:
        lines = [format_log_line(line) for line in tail_lines(Path(self.gateway_log_file(runtime)), tail)]
        if not lines:  # the gateway died before it opened its log: what it printed says why
            lines = tail_lines(self._console_log(runtime), tail)
        return "\n".join(lines)

    def remove(self, runtime) -> None:
        self.stop(runtime)
        folder = self.folder(runtime)
        if folder.exists():
            shutil.rmtree(folder)
