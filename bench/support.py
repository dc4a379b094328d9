"""What the benches share: the log line, databases on the server of DATABASE_URL, the environment
the production settings run with under a bench, and the uvicorn server a bench starts on loopback
(start, wait for /healthz, stop, its processes' CPU time).

Imported as `bench.support`: a bench puts the repository root on sys.path first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent

# Bench-only values (a bench database holds nothing but generated data). Fixed, so that data
# encrypted by one run (channel secrets, TOTP keys) still decrypts in the next.
BENCH_SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdefghijklmnop"
BENCH_FERNET_KEY = base64.urlsafe_b64encode(b"aegis-bench-only-fernet-key-0001").decode()


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def service_urls() -> tuple[str, str]:
    """DATABASE_URL and REDIS_URL, as `aegis.devservices exec` exports them; exits without them."""
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        sys.exit("DATABASE_URL/REDIS_URL are not set: run through `python -m aegis.devservices exec --`")
    return database_url, redis_url


# --- Databases ---------------------------------------------------------------------------------------


def database_url_with(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def connect_params(url: str, dbname: str) -> dict:
    """psycopg keyword arguments from a postgres:// URL (a unix-socket host arrives %-encoded)."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")  # by hand: .hostname lower-cases a socket path
    user, _, password = userinfo.partition(":")
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    params = {"host": unquote(host) or "localhost", "user": unquote(user) or "postgres", "dbname": dbname,
              "autocommit": True}
    if port:
        params["port"] = int(port)
    if password:
        params["password"] = unquote(password)
    return params


def admin_connection(url: str):
    """An autocommit connection to the maintenance database `postgres` of the URL's server."""
    import psycopg

    return psycopg.connect(**connect_params(url, "postgres"))


def create_database(url: str, name: str) -> None:
    from psycopg import sql

    with admin_connection(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str, name: str) -> None:
    from psycopg import sql

    with admin_connection(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def recreate_database(url: str, name: str) -> None:
    drop_database(url, name)
    create_database(url, name)


def migrate_platform(env: dict[str, str] | None = None) -> float:
    """`manage.py migrate_platform` in a subprocess, with this environment plus `env`; its seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate_platform", "--verbosity", "0"], cwd=ROOT,
                   env={**os.environ, **(env or {})}, check=True)
    return time.perf_counter() - started


# --- The environment -----------------------------------------------------------------------------------


def server_environment(settings: str, database_url: str, redis_url: str) -> dict[str, str]:
    """What a bench runs the production settings with (the bench process, migrate_platform and the
    server): bench secrets, loopback only, no SSL redirect. A bench adds its own values."""
    return {
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        # No OpenClaw gateways: the benches measure the API and the event path. Agent changes then
        # queue no runtime-config task (apps/tenants/runtime/receivers.py).
        "TENANT_RUNTIMES_ENABLED": "False",
        "SECRET_KEY": BENCH_SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": BENCH_FERNET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "ACCESS_TOKEN_MINUTES": "120",
        "EMAIL_URL": "consolemail://",
    }


# --- The server ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], port: int, workers: int, log_file, *,
                 access_log: bool = True) -> subprocess.Popen:
    """The app under uvicorn as the Dockerfile runs it (WEB_CONCURRENCY workers), on loopback, in a
    session of its own; its output goes to `log_file`."""
    command = [sys.executable, "-m", "uvicorn", "aegis.asgi:application", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--lifespan", "off",
               "--timeout-graceful-shutdown", "5"]
    if not access_log:
        command.append("--no-access-log")
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log_file,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(server: subprocess.Popen, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": "127.0.0.1"})
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode} before answering /healthz")
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
            if response.status == 200:  # (a fixed loopback URL)
                return
        time.sleep(0.2)
    raise RuntimeError(f"/healthz did not answer 200 within {timeout:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)  # uvicorn's supervisor stops its workers
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)  # our own session, started above
        server.wait(timeout=5)


def server_pids(master: int) -> list[int]:
    """The uvicorn master and its child processes (the workers)."""
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == master:
                    pids.append(int(entry.name))
    return pids


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


# --- Running and reporting -------------------------------------------------------------------------------


def run_async(coroutine):
    """Run a coroutine on uvloop when it is installed (as uvicorn runs), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
