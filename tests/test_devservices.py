"""aegis/devservices.py: who starts and who stops the embedded servers.

Redis alone is exercised (it starts in milliseconds); DATABASE_URL is set to a dummy so no
PostgreSQL is started. Each test has its own AEGIS_DATA_DIR, so nothing touches `.data/`.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRINT_REDIS_URL = [sys.executable, "-c", "import os; print(os.environ['REDIS_URL'])"]


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path
    # Whatever a failing test left running is stopped.
    subprocess.run([sys.executable, "-m", "aegis.devservices", "stop"], env=_env(tmp_path), cwd=ROOT,
                   capture_output=True, check=False)


def _env(data_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(AEGIS_DATA_DIR=str(data_dir), DATABASE_URL="postgres://nobody@127.0.0.1:1/unused", **extra)
    return env


def _devservices(data_dir: Path, *args: str, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aegis.devservices", *args],  # noqa: S603 (the test's own arguments)
                          env=_env(data_dir, **extra), cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)


def _answers(redis_url: str) -> bool:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_run_starts_what_is_missing_and_stops_it_afterwards(data_dir):
    result = _devservices(data_dir, "run", "--", *PRINT_REDIS_URL)

    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("redis://127.0.0.1:")
    assert "started redis" in result.stderr and "stopped redis" in result.stderr
    assert not _answers(url)
    assert not (data_dir / "managed").exists() and not any((data_dir / "clients").iterdir())


def test_run_passes_the_exit_status_through(data_dir):
    result = _devservices(data_dir, "run", "--", sys.executable, "-c", "raise SystemExit(3)")
    assert result.returncode == 3


def test_servers_started_by_hand_outlive_a_run(data_dir):
    url = _devservices(data_dir, "env").stdout.splitlines()[-1].split("=", 1)[1]
    assert _answers(url)

    result = _devservices(data_dir, "run", "--", *PRINT_REDIS_URL)
    assert result.stdout.strip() == url  # reused, not restarted
    assert "stopped" not in result.stderr
    assert _answers(url)

    _devservices(data_dir, "stop")
    assert not _answers(url)


def test_run_with_both_urls_set_starts_nothing(data_dir):
    result = _devservices(data_dir, "run", "--", *PRINT_REDIS_URL, REDIS_URL="redis://example.invalid:6379/0")
    assert result.stdout.strip() == "redis://example.invalid:6379/0"
    assert result.stderr == ""
    assert not (data_dir / "redis").exists()
