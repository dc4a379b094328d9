"""Runtime test fixtures: a fake `openclaw` (tests/runtime/fake_openclaw.py) in a private
OPENCLAW_HOME, a private RUNTIME_DIR, and a finalizer that kills every process any test left
running under that folder, whatever happened in the test."""

from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path

import psutil
import pytest

from apps.tenants.runtime.local import _wait_gone

FAKE = Path(__file__).with_name("fake_openclaw.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_under(folder: Path) -> list[psutil.Process]:
    """Live processes whose OPENCLAW_STATE_DIR lies inside `folder`."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE and \
                    process.environ().get("OPENCLAW_STATE_DIR", "").startswith(f"{folder}/"):
                found.append(process)
    return found


def kill_all_under(folder: Path) -> list[int]:
    processes = processes_under(folder)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    _wait_gone(processes, 10)
    return [p.pid for p in processes]


@pytest.fixture
def runtime_dir(tmp_path, settings):
    settings.RUNTIME_DIR = tmp_path / "runtimes"
    yield settings.RUNTIME_DIR
    kill_all_under(settings.RUNTIME_DIR)


@pytest.fixture
def fake_openclaw(tmp_path, settings, runtime_dir):
    """OPENCLAW_HOME with the fake CLI; `fake_openclaw.mode(name)` picks its behaviour."""
    home = tmp_path / "openclaw"
    (home / "bin").mkdir(parents=True)
    script = home / "bin" / "openclaw"
    script.write_text(f"#!{sys.executable}\n{FAKE.read_text()}")
    script.chmod(0o755)
    settings.OPENCLAW_HOME = home

    class Fake:
        path = home

        @staticmethod
        def mode(name: str) -> None:
            (home / "mode").write_text(name)

    return Fake
